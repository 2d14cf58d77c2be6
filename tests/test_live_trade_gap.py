"""A trade gap on the local exchange (``skip_trades``), recorded live: one GAP marker saying ``"stream":
"trade"`` in the segments, counted by ``acts verify`` as a trade gap and never as a depth gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acts.core.events import EventKind, Marker, Trade
from acts.core.symbols import StreamKind
from acts.features.builtin import default_registry
from acts.replayer.replay import Engine, replay
from acts.replayer.verify import verify
from acts.sinks import SqliteSink
from tests.live import NAMES, run_live

SYMBOL = "BTCUSDT"
TRADE_NAMES = ["trade_count", "buy_volume", "sell_volume", "vwap", "last_price", "trade_imbalance"]


@pytest.mark.slow
def test_a_live_trade_gap_is_a_trade_gap_marker_and_not_a_depth_gap(tmp_path: Path) -> None:
    extra = default_registry().resolve(TRADE_NAMES)
    run = run_live(tmp_path, [SYMBOL], 6, SqliteSink(tmp_path / "entries.sqlite"),
                   streams=(StreamKind.DEPTH, StreamKind.TRADE), faults=("skip_trades:BTCUSDT:2",), extra=extra)
    store = run.store()
    events = [e for p in store.paths(SYMBOL) for e in store.events(p, SYMBOL)]
    trades = [e for e in events if isinstance(e, Trade)]
    jumps = [(a.trade_id + 1, b.trade_id) for a, b in zip(trades, trades[1:], strict=False)
             if b.trade_id != a.trade_id + 1]
    assert len(jumps) == 1 and jumps[0][1] - jumps[0][0] == 2  # the two skipped trades
    gaps = [json.loads(e.detail) for e in events if isinstance(e, Marker) and e.kind is EventKind.GAP]
    trade_gaps = [g for g in gaps if g.get("stream") == "trade"]
    depth_gaps = [g for g in gaps if "stream" not in g]
    assert trade_gaps == [{"stream": "trade", "expected": jumps[0][0], "got": jumps[0][1]}]

    hours = verify(tmp_path, [SYMBOL]).hours
    assert sum(h.trade_gaps for h in hours) == 1
    assert sum(h.gaps for h in hours) == len(depth_gaps)  # depth gaps are the depth chain's, as before
    # Replay ignores the marker: the live rows (trade features included) are both engines' rows.
    assert run.live == run.replayed([SYMBOL])
    features = default_registry().resolve([*NAMES, *TRADE_NAMES])
    fast, python = (list(replay(store, [SYMBOL], features, 0, engine=e)) for e in (Engine.FAST, Engine.PYTHON))
    assert fast == python and fast
