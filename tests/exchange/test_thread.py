"""The exchange for synchronous callers: a background thread, and the blocking ``run_exchange`` in a process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from acts.core.errors import InputError
from acts.exchange.server import ExchangeThread, run_exchange
from tests.exchange.conftest import make_feed

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_exchange_thread_serves_and_takes_faults_from_this_thread() -> None:
    with ExchangeThread(make_feed(), speed=20) as ex:
        assert ex.rest_url == f"http://127.0.0.1:{ex.port}/api" and ex.stream_url == f"ws://127.0.0.1:{ex.port}/"
        assert _get(f"{ex.rest_url}/v3/ping") == (200, {})
        fault = ex.inject("rest:503")
        assert fault.mode == "503"
        assert _get(f"{ex.rest_url}/v3/depth?symbol=BTCUSDT")[0] == 503
        assert _get(f"{ex.rest_url}/v3/depth?symbol=BTCUSDT")[0] == 200
        with pytest.raises(InputError, match="not served"):
            ex.inject("skip:XRPUSDT")
        steps = ex.call(lambda: ex.exchange.steps)
        for _ in range(1000):  # bounded poll, not a timed wait: the market moves in the background
            if ex.call(lambda: ex.exchange.steps) > steps:
                break
            time.sleep(0.005)
        assert ex.call(lambda: ex.exchange.steps) > steps
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{ex.rest_url}/v3/ping", timeout=1)  # stopped and unbound


def test_run_exchange_rejects_bad_faults_before_binding() -> None:
    with pytest.raises(InputError, match="unknown kind 'explode'"):
        run_exchange(["BTCUSDT"], 7, "127.0.0.1", 0, 1.0, ["explode@3"])


def test_run_exchange_prints_its_urls_and_stops_on_sigint() -> None:
    code = ("from acts.exchange.server import run_exchange; "
            "run_exchange(['BTCUSDT', 'ETHUSDT'], 7, '127.0.0.1', 0, 20.0, ['rest:500', 'drop@1m'])")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        rest = proc.stdout.readline().split()
        stream = proc.stdout.readline().split()
        assert rest[0] == "REST" and rest[1].startswith("http://127.0.0.1:") and rest[1].endswith("/api")
        assert stream[0] == "STREAM" and stream[1].startswith("ws://127.0.0.1:")
        assert proc.stdout.readline().strip() == "symbols BTCUSDT, ETHUSDT"
        assert proc.stdout.readline().strip() == "faults rest:500, drop@1m"
        assert _get(f"{rest[1]}/v3/depth?symbol=ETHUSDT")[0] == 500
        assert _get(f"{rest[1]}/v3/depth?symbol=ETHUSDT")[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
