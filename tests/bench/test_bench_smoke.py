"""The benchmark runs end to end on tiny data (no timing assertions: speed lives in bench/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import main


def test_bench_prints_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    assert main(["--levels", "20000", "--depth", "200", "--capacity", "", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    for row in ("1. ACTS replay+features", "2. python-binance DepthCache", "3. bare pyarrow decode", "4. storage"):
        assert row in table
    results = json.loads(out.read_text())
    assert set(results["rates"]) >= {"acts_minute", "acts_second", "acts_event", "depthcache_minute", "bare_decode"}
    assert "sampled every second (1s)" in table and results["second_over_minute_time"] > 0
    assert results["storage"]["segments"] < results["storage"]["json"]
