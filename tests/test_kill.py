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

from exchange.feed import GeneratorFeed
from exchange.server import ExchangeThread
from recorder.events import DepthUpdate
from recorder.journal import list_journals
from replayer.store import SegmentStore
from replayer.verify import verify

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
