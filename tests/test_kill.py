"""kill -9 the real recorder, over and over: journals recover, nothing is lost beyond a second, nothing doubles."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
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
JOURNAL_HEADER_BYTES = 16


def _recorder(data_dir: Path, rest: str, stream: str, *extra: str) -> subprocess.Popen[bytes]:
    code = "from acts.cli import app_main; app_main()"
    args = [sys.executable, "-c", code, "record", "BTC", "ETH", "--data-dir", str(data_dir), "--rest-url", rest,
            "--stream-url", stream, *extra]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _recording(journal_dir: Path, since_ns: int) -> bool:
    """A recorder started after ``since_ns`` has a journal with at least one flushed frame in it."""
    return any(int(p.stem) >= since_ns and p.stat().st_size > JOURNAL_HEADER_BYTES
               for p in journal_dir.glob("*.journal") if p.stem.isdigit())


def _wait(done: Callable[[], bool], what: str, polls: int = 3000) -> None:
    """Poll ``done()`` (bounded by a count of polls, never asserted on time)."""
    for _ in range(polls):
        if done():
            return
        time.sleep(0.02)
    raise AssertionError(f"never reached: {what}")


def _kill_while_recording(data_dir: Path, ex: ExchangeThread, feed: GeneratorFeed, after_ms: int) -> int:
    """Start a recorder; once it has flushed a frame, let ``after_ms`` of the exchange's market pass and
    kill -9 it. Events, not sleeps, say when. Returns the exchange's time at the kill."""
    started = time.time_ns()
    proc = _recorder(data_dir, ex.rest_url, ex.stream_url)
    _wait(lambda: _recording(data_dir / "journal", started) or proc.poll() is not None, "a flushed journal")
    assert proc.poll() is None, "the recorder exited by itself"
    kill_at_ms = feed.generator.now_ms + after_ms
    _wait(lambda: feed.generator.now_ms >= kill_at_ms, "the exchange's kill time")
    killed_ms = feed.generator.now_ms
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return killed_ms


@pytest.mark.slow
def test_repeated_sigkill_loses_at_most_a_second_each_time(tmp_path: Path) -> None:
    rng = random.Random(2024)
    feed = GeneratorFeed(["BTCUSDT", "ETHUSDT"], seed=9, start_ms=time.time_ns() // 1_000_000)
    kills_ms: list[int] = []  # the exchange's own time at each kill
    with ExchangeThread(feed, speed=1.0) as ex:
        for _ in range(KILLS):
            kills_ms.append(_kill_while_recording(tmp_path, ex, feed, rng.randint(1200, 2500)))
        final = _recorder(tmp_path, ex.rest_url, ex.stream_url, "--duration", "2")
        assert final.wait(timeout=60) == 0

    assert list_journals(tmp_path / "journal") == []  # every journal a kill left behind was rolled
    assert verify(tmp_path, []).ok()  # no corrupt segment
    store = SegmentStore(tmp_path)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        diffs = [e for p in store.paths(symbol) for e in store.events(p, symbol) if isinstance(e, DepthUpdate)]
        keys = Counter((e.recv_ns, e.final_update_id) for e in diffs)
        assert max(keys.values()) == 1, "a journal was rolled twice into different segments"
        sent = sorted(e.event_time_ms for e in diffs)
        for killed_ms in kills_ms:
            before = [t for t in sent if t <= killed_ms]
            assert before, "the recorder had recorded something before each kill"
            # Counted in the exchange's event times (the data's own clock), not in elapsed seconds:
            # what the exchange had sent by the kill and is missing is at most a flush interval.
            lost_ms = killed_ms - before[-1]
            assert lost_ms <= FLUSH_S * 1000 + 350, f"{lost_ms} ms of the exchange's events lost at a kill"


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
            # Kill once this process has published a minute of its own, both symbols' entries (bounded wait,
            # polled): a kill between two symbols' entries of one minute would leave a valid minute in the
            # journal that live never wrote, which the downtime check below would take for invented data.
            deadline = time.monotonic() + 60
            while _published(tmp_path) < before + 2 and time.monotonic() < deadline and proc.poll() is None:
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
