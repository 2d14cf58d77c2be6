"""The fake clock: sleeps end when fake time reaches them, by ``advance`` or by autojump, never in real time."""

from __future__ import annotations

import asyncio

import pytest

from acts.core.clock import FakeClock, SystemClock


async def test_sleepers_wake_in_deadline_order_when_time_is_advanced() -> None:
    clock = FakeClock(autojump=False)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper("b", 2.0)), asyncio.create_task(sleeper("a", 1.0))]
    await asyncio.sleep(0)
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(2.0)
    await asyncio.gather(*tasks)
    assert woke == [("a", 2.5), ("b", 2.5)]  # both due by then, the earlier deadline first
    assert clock.time_ns() == 1_700_000_000_000_000_000 + 2_500_000_000


async def test_autojump_skips_idle_time() -> None:
    clock = FakeClock()
    await clock.sleep(3600.0)
    assert clock.monotonic() == 3600.0


@pytest.mark.parametrize("clock", [FakeClock(), SystemClock()])
async def test_wait_for_times_out_and_cancels(clock: FakeClock | SystemClock) -> None:
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await clock.wait_for(never, 0.01)
    assert never.cancelled()

    async def quick() -> int:
        return 7

    assert await clock.wait_for(quick(), 10.0) == 7


async def test_wait_for_on_the_fake_clock_times_out_in_fake_time() -> None:
    clock = FakeClock()
    with pytest.raises(TimeoutError):
        await clock.wait_for(asyncio.Event().wait(), 10.0)
    assert clock.monotonic() == 10.0


def test_time_only_moves_forward() -> None:
    with pytest.raises(ValueError):
        FakeClock().advance(-1)


async def test_a_held_clock_does_not_autojump_until_released() -> None:
    clock = FakeClock()
    with clock.hold():
        sleeper = asyncio.ensure_future(clock.sleep(10))
        for _ in range(200):  # the jumper runs many rounds meanwhile (it polls in real time while held)
            await asyncio.sleep(0)
        await asyncio.sleep(0.02)
        assert clock.monotonic() == 0 and not sleeper.done()
    await sleeper
    assert clock.monotonic() == 10
