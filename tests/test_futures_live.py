"""USD-M futures recorded live through python-binance's futures REST and sockets from the local exchange:
the live minute entries equal the replay with the futures rules, and what was recorded is what was sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acts.core.events import DepthUpdate, to_wire
from acts.core.markets import Market
from acts.sinks import SqliteSink
from tests.live import run_live

SYMBOLS = ["BTCUSDT", "SHIBUSDT"]


@pytest.mark.slow
def test_futures_recording_replays_as_it_ran_live(tmp_path: Path) -> None:
    run = run_live(tmp_path, SYMBOLS, 5, SqliteSink(tmp_path / "entries.sqlite"), market=Market.USDM)
    sent = [json.loads(text) for text in run.sent]
    assert sent and all(list(m)[:7] == ["e", "E", "T", "s", "U", "u", "pu"] for m in sent)
    assert len(run.live) >= 2 * len(SYMBOLS), "several simulated minutes were recorded"
    assert sum(e["valid"] for e in run.live) >= len(SYMBOLS), "the futures rules keep the book valid"
    assert run.report.reconnects == 0
    store = run.store()
    for symbol in SYMBOLS:
        recorded = [to_wire(e) for p in store.paths(symbol) for e in store.events(p, symbol)
                    if isinstance(e, DepthUpdate)]
        mine = [{k: v for k, v in m.items() if k != "T"} for m in sent if m["s"] == symbol]  # T is not stored
        start = mine.index(recorded[0])
        assert recorded == mine[start : start + len(recorded)] and len(recorded) > 100
    assert run.live == run.replayed(SYMBOLS)
