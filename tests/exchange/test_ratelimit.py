"""Request weights, X-MBX-USED-WEIGHT-1M, 429 then 418: the pure limiter and over HTTP with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from acts.core.timeunits import MINUTE_MS
from acts.exchange.ratelimit import Verdict, WeightLimiter, depth_weight
from acts.exchange.server import LocalExchange
from tests.exchange.conftest import FakeClock, make_feed

T0 = 1_714_521_600_000  # a minute boundary


@pytest.mark.parametrize(("limit", "weight"), [(1, 5), (100, 5), (101, 25), (500, 25), (501, 50), (1000, 50),
                                               (1001, 250), (5000, 250)])
def test_depth_weights_are_binances(limit: int, weight: int) -> None:
    assert depth_weight(limit) == weight


# (ms after T0, weight, expected verdict) in order, limit 10, ban after the 2nd early request, 120 s ban.
SCRIPT = [
    (0, 4, Verdict(200, 4)),
    (1_000, 6, Verdict(200, 10)),
    (2_000, 1, Verdict(429, 10, 58)),  # past the limit: wait for the next minute
    (3_000, 1, Verdict(429, 10, 57)),  # came back early once: told again
    (4_000, 1, Verdict(418, 10, 120, T0 + 4_000 + 120_000)),  # and again: banned
    (MINUTE_MS + 1, 1, Verdict(418, 0, 64, T0 + 124_000)),  # a new minute does not lift a ban
    (124_000, 1, Verdict(200, 1)),  # the ban is over
]


def test_limiter_script() -> None:
    limiter = WeightLimiter(limit=10, ban_after=2, ban_s=120)
    for at, weight, expected in SCRIPT:
        assert limiter.admit("ip", weight, T0 + at) == expected, at


def test_repeat_bans_double_and_clients_are_apart() -> None:
    limiter = WeightLimiter(limit=1, ban_after=1, ban_s=2, max_ban_s=5)
    now = T0
    bans = []
    for _ in range(3):
        assert limiter.admit("a", 1, now).status == 200
        assert limiter.admit("a", 1, now).status == 429
        verdict = limiter.admit("a", 1, now + 1)
        assert verdict.status == 418
        bans.append(verdict.retry_after_s)
        assert limiter.admit("b", 1, now + 1).status == 200  # another IP is not affected
        now += 10 * MINUTE_MS
    assert bans == [2, 4, 5]  # doubling, capped


def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="limit"):
        WeightLimiter(limit=0)


@pytest.fixture
async def limited(clock: FakeClock) -> AsyncIterator[LocalExchange]:
    async with LocalExchange(make_feed(), speed=20, clock=clock, weight_limit=60) as ex:
        yield ex


async def _get(http: aiohttp.ClientSession, ex: LocalExchange, path: str) -> tuple[int, dict[str, str], object]:
    async with http.get(f"{ex.rest_url}/v3/{path}") as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def test_every_answer_carries_the_used_weight(http: aiohttp.ClientSession, limited: LocalExchange,
                                                    clock: FakeClock) -> None:
    clock.wall_ns = T0 * 1_000_000
    expected = 0
    for path, weight in [("ping", 1), ("time", 1), ("exchangeInfo", 20), ("depth?symbol=BTCUSDT&limit=100", 5),
                         ("depth?symbol=BTCUSDT&limit=101", 25), ("depth?symbol=NOPE", 5)]:
        status, headers, _ = await _get(http, limited, path)
        expected += weight
        assert headers["X-MBX-USED-WEIGHT-1M"] == str(expected), path
        assert status == (400 if "NOPE" in path else 200)
    status, headers, body = await _get(http, limited, "exchangeInfo")  # 57 + 20 > 60
    assert (status, headers["Retry-After"], headers["X-MBX-USED-WEIGHT-1M"]) == (429, "60", "57")
    assert isinstance(body, dict) and body["code"] == -1003 and "60 request weight per 1 MINUTE" in body["msg"]


async def test_429_then_418_then_recovery(http: aiohttp.ClientSession, limited: LocalExchange,
                                          clock: FakeClock) -> None:
    clock.wall_ns = (T0 + 30_000) * 1_000_000
    for _ in range(12):
        assert (await _get(http, limited, "depth?symbol=ETHUSDT&limit=5"))[0] == 200
    status, headers, _ = await _get(http, limited, "ping")  # 60 used: one more is too many
    assert (status, headers["Retry-After"]) == (429, "30")
    assert (await _get(http, limited, "ping"))[0] == 429  # early once
    status, headers, body = await _get(http, limited, "ping")  # keeps knocking: banned
    assert (status, headers["Retry-After"]) == (418, "120")
    assert isinstance(body, dict) and "IP banned until" in body["msg"]
    clock.advance(60)
    status, headers, _ = await _get(http, limited, "time")
    assert (status, headers["Retry-After"]) == (418, "60")  # a new minute, still banned
    clock.advance(60)
    status, headers, body = await _get(http, limited, "time")
    assert (status, headers["X-MBX-USED-WEIGHT-1M"]) == (200, "1")
    assert body == {"serverTime": clock.wall_ns // 1_000_000}  # the injected clock
