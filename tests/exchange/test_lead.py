"""A sped-up local exchange never sends an ``E`` the recorder would refuse (issue 13, §2)."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from acts.core.events import MAX_EVENT_SKEW_MS
from acts.exchange.feed import GeneratorFeed, SegmentFeed
from acts.exchange.generator import STEP_MS
from acts.exchange.server import MAX_LEAD_S, LocalExchange
from acts.exchange.synthetic import synthetic_events
from tests.conftest import record
from tests.exchange.conftest import read_frames


def test_the_lead_stays_inside_the_recorders_limit() -> None:
    assert 0 < MAX_LEAD_S * 1000 < MAX_EVENT_SKEW_MS


async def test_a_fast_market_runs_no_further_ahead_than_its_lead(http: aiohttp.ClientSession) -> None:
    # 1000x with a 0.5 s lead: without the lead, 30 steps would put E ~3 s ahead of the clock within 3 ms.
    feed = GeneratorFeed(["BTCUSDT"], seed=2, start_ms=time.time_ns() // 1_000_000)
    async with LocalExchange(feed, speed=1000, max_lead_s=0.5) as ex:
        async with http.ws_connect(f"{ex.stream_url}ws/btcusdt@depth@100ms") as ws:
            frames = []
            for _ in range(30):
                got = await read_frames(ws, 1)
                frames += [(frame["E"], time.time_ns() // 1_000_000) for frame in got]
    assert len(frames) == 30
    assert max(event - received for event, received in frames) <= 500 + STEP_MS


def test_history_is_served_now_moved_by_whole_minutes(tmp_path: Path) -> None:
    record(tmp_path, list(synthetic_events(["BTCUSDT"], 2, seed=3, snapshot_every_s=60, depth=20)))
    now_ms = time.time_ns() // 1_000_000
    plain, moved = SegmentFeed(tmp_path), SegmentFeed(tmp_path, rebase_to_ms=now_ms)
    first, again = plain.step(), moved.step()
    while not first:
        first, again = plain.step(), moved.step()
    assert moved.shift_ms % 60_000 == 0
    assert [{**m, "E": m["E"] + moved.shift_ms} for m in first] == again
    assert now_ms - 60_000 - STEP_MS <= again[0]["E"] <= now_ms
