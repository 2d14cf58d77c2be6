"""kill -9 the real recorder, over and over: journals recover, nothing is lost beyond a second, nothing doubles."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from acts.core.events import DepthUpdate
from acts.exchange.feed import GeneratorFeed
from acts.exchange.server import ExchangeThread
from acts.replayer.verify import verify
from acts.storage.journal import list_journals
from acts.storage.store import SegmentStore

ROOT = Path(__file__).resolve().parents[1]
KILLS = 20
FLUSH_S = 1.0  # the journal's default flush interval: the most a kill may lose


def _recorder(data_dir: Path, rest: str, stream: str, *extra: str) -> subprocess.Popen[bytes]:
    code = "from acts.cli import app_main; app_main()"
    args = [sys.executable, "-c", code, "record", "BTC", "ETH", "--data-dir", str(data_dir), "--rest-url", rest,
            "--stream-url", stream, *extra]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_repeated_sigkill_loses_at_most_a_second_each_time(tmp_path: Path) -> None:
    rng = random.Random(2024)
    feed = GeneratorFeed(["BTCUSDT", "ETHUSDT"], seed=9, start_ms=time.time_ns() // 1_000_000)
    kills: list[int] = []
    with ExchangeThread(feed, speed=1.0) as ex:
        for _ in range(KILLS):
            proc = _recorder(tmp_path, ex.rest_url, ex.stream_url)
            time.sleep(rng.uniform(2.5, 4.0))  # past start-up (~1.5 s) and at least one flush
            kills.append(time.time_ns())
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        final = _recorder(tmp_path, ex.rest_url, ex.stream_url, "--duration", "2")
        assert final.wait(timeout=60) == 0

    assert list_journals(tmp_path / "journal") == []  # every journal a kill left behind was rolled
    assert verify(tmp_path, []).ok()  # no corrupt segment
    store = SegmentStore(tmp_path)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        diffs = [e for p in store.paths(symbol) for e in store.events(p, symbol) if isinstance(e, DepthUpdate)]
        keys = Counter((e.recv_ns, e.final_update_id) for e in diffs)
        assert max(keys.values()) == 1, "a journal was rolled twice into different segments"
        received = sorted(e.recv_ns for e in diffs)
        for killed_at in kills:
            before = [t for t in received if t < killed_at]
            assert before, "the recorder had recorded something before each kill"
            lost_s = (killed_at - before[-1]) / 1e9
            assert lost_s <= FLUSH_S + 0.35, f"{lost_s:.2f}s of events lost at a kill"


def _published(data_dir: Path) -> int:
    from acts.sinks import SqliteSink

    path = data_dir / "entries.sqlite"
    if not path.exists():
        return 0
    sink = SqliteSink(path)
    try:
        return sink.count()
    finally:
        sink.close()


@pytest.mark.slow
def test_live_entries_equal_the_replay_across_kills_and_restarts(tmp_path: Path) -> None:
    from acts.features.builtin import default_registry
    from acts.features.entries import default_feature_names, to_entry
    from acts.replayer.replay import replay
    from acts.sinks import SqliteSink

    feed = GeneratorFeed(["BTCUSDT", "ETHUSDT"], seed=3, start_ms=time.time_ns() // 1_000_000)
    with ExchangeThread(feed, speed=20.0) as ex:  # a minute closes every 3 s
        for _ in range(3):
            before = _published(tmp_path)
            proc = _recorder(tmp_path, ex.rest_url, ex.stream_url)
            # Kill once this process has published an entry of its own (bounded wait, polled).
            deadline = time.monotonic() + 60
            while _published(tmp_path) <= before and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            # Stay down until the exchange's own clock has left the next minute too: a whole minute of downtime.
            resume_ms = (feed.generator.now_ms // 60_000 + 2) * 60_000
            while feed.generator.now_ms < resume_ms and time.monotonic() < deadline + 60:
                time.sleep(0.05)
        final = _recorder(tmp_path, ex.rest_url, ex.stream_url, "--duration", "4")
        assert final.wait(timeout=60) == 0

    sink = SqliteSink(tmp_path / "entries.sqlite")
    live = sink.read()
    sink.close()
    names = default_feature_names()
    rows = replay(SegmentStore(tmp_path), ["BTCUSDT", "ETHUSDT"], default_registry().resolve(names), 0)
    replayed = {(e["symbol"], e["minute"]): e for e in (to_entry(row, names) for row in rows)}
    assert len(live) >= 3
    for entry in live:  # every minute live wrote, field for field, across three kill -9s
        assert replayed[(entry["symbol"], entry["minute"])] == entry
    # The minutes while no recorder ran are in the replay, and invalid: nothing is invented for them.
    written = {(x["symbol"], x["minute"]) for x in live}
    downtime = [e for key, e in replayed.items() if key not in written and e["minute"] < live[-1]["minute"]]
    assert len(downtime) >= 2 * 3 and not any(e["valid"] for e in downtime)  # 3 outages x 2 symbols, at least
