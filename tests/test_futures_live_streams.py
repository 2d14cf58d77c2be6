"""USD-M futures trades and bookTickers recorded live through python-binance from the local futures exchange
(``--market usdm --streams depth,trade,bookTicker``: ``@aggTrade`` and ``@bookTicker``): what was sent is what was
stored, the live entries (trade features included) equal the replay, verify counts the audit, and a wrong ticker
is one mismatch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acts.core.events import BookTicker, EventKind, Marker, ResyncReason, Trade, to_wire
from acts.core.markets import Market
from acts.core.symbols import StreamKind, parse_time_ms
from acts.core.timeunits import MINUTE_MS
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT
from acts.replayer.replay import ReplayReport, replay
from acts.replayer.verify import verify
from acts.sinks import SqliteSink
from tests.live import LiveRun, run_live

TRADE_NAMES = ["trade_count", "buy_volume", "sell_volume", "vwap", "last_price", "trade_imbalance"]
SYMBOL = "BTCUSDT"


def _recorded(run: LiveRun, kind: type) -> list[Any]:
    store = run.store()
    return [e for p in store.paths(SYMBOL) for e in store.events(p, SYMBOL) if isinstance(e, kind)]


@pytest.mark.slow
def test_agg_trades_and_tickers_recorded_live_replay_as_they_were_sent(tmp_path: Path) -> None:
    extra = default_registry().resolve(TRADE_NAMES)
    run = run_live(tmp_path, [SYMBOL], 6, SqliteSink(tmp_path / "entries.sqlite"), streams=tuple(StreamKind),
                   extra=extra, market=Market.USDM)
    assert run.report.reconnects == 0
    sent = [json.loads(text) for text in run.exchange.sent_other]
    for event_type, name in ((Trade, "aggTrade"), (BookTicker, "bookTicker")):
        recorded = [to_wire(e) for e in _recorded(run, event_type)]
        # Stored losslessly but for a ticker's T (as a futures diff's T): an unbroken run of what was sent.
        mine = [{k: v for k, v in m.items() if not (name == "bookTicker" and k == "T")}
                for m in sent if m["s"] == SYMBOL and m["e"] == name]
        start = mine.index(recorded[0])
        assert recorded == mine[start : start + len(recorded)] and len(recorded) > 100, name
    trades = _recorded(run, Trade)
    assert all(t.aggregate for t in trades)
    assert run.live == run.replayed([SYMBOL])
    features = [*default_registry().resolve(["mid"]), *extra]
    rows = {engine: list(replay(run.store(), [SYMBOL], features, 0, None, engine=engine))
            for engine in ("python", "fast")}
    assert rows["fast"] == rows["python"] and any(r.valid for r in rows["python"])
    counted = [e for e in run.live if e["trade_count"] is not None]
    assert counted  # a minute with a trade before it and after it
    for entry in counted:
        minute_ms = parse_time_ms(entry["time"])
        assert entry["trade_count"] == sum(minute_ms <= t.trade_time_ms < minute_ms + MINUTE_MS for t in trades) > 0
    hours = verify(tmp_path, [SYMBOL], market=Market.USDM).hours
    assert sum(h.trades for h in hours) == len(trades) and sum(h.trade_gaps for h in hours) == 0
    # Every ticker lines up with the diff of its u: the audit checks them and finds nothing wrong.
    assert sum(h.bbo_checked for h in hours) > 20 and sum(h.bbo_mismatched for h in hours) == 0


@pytest.mark.slow
def test_a_wrong_futures_bookticker_is_one_mismatch(tmp_path: Path) -> None:
    run = run_live(tmp_path, [SYMBOL], 6, SqliteSink(tmp_path / "entries.sqlite"),
                   streams=(StreamKind.DEPTH, StreamKind.BOOK_TICKER), faults=(f"bad_ticker:{SYMBOL}",),
                   market=Market.USDM)
    reasons = [json.loads(e.detail).get("reason") for e in _recorded(run, Marker) if e.kind is EventKind.RESYNC]
    assert reasons.count(ResyncReason.BBO_MISMATCH) == 1, reasons  # the recorder saw it and asked for a snapshot
    hours = verify(tmp_path, [SYMBOL], market=Market.USDM).hours
    assert sum(h.bbo_mismatched for h in hours) == 1 and sum(h.bbo_checked for h in hours) > 20
    assert run.live == run.replayed([SYMBOL])
    # A row after every diff, by the futures rules: both engines see the one mismatch and give the same rows.
    features = default_registry().resolve(["mid", "bias5"])
    reports = {engine: ReplayReport() for engine in ("python", "fast")}
    rows = {engine: list(replay(run.store(), [SYMBOL], features, 0, None, reports[engine], engine=engine,
                                interval_ms=EVERY_EVENT)) for engine in ("python", "fast")}
    assert rows["fast"] == rows["python"] and len(rows["python"]) > 100
    assert [(r.bbo_mismatched, r.bbo_checked > 20) for r in reports.values()] == [(1, True)] * 2


@pytest.mark.slow
def test_a_lost_agg_trade_is_one_trade_gap(tmp_path: Path) -> None:
    """``skip_trades``: the aggregate ids jump once; verify counts one trade gap, live and replay agree."""
    extra = default_registry().resolve(TRADE_NAMES)
    run = run_live(tmp_path, [SYMBOL], 6, SqliteSink(tmp_path / "entries.sqlite"),
                   streams=(StreamKind.DEPTH, StreamKind.TRADE), faults=(f"skip_trades:{SYMBOL}:2",), extra=extra,
                   market=Market.USDM)
    ids = [t.trade_id for t in _recorded(run, Trade)]
    assert [b - a for a, b in zip(ids, ids[1:], strict=False) if b != a + 1] == [3]
    assert sum(h.trade_gaps for h in verify(tmp_path, [SYMBOL], market=Market.USDM).hours) == 1
    assert run.live == run.replayed([SYMBOL])


def test_record_streams_aggtrade_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acts.cli import main

    code = main(["record", "BTC", "--market", "usdm", "--data-dir", str(tmp_path / "data"), "--streams",
                 "depth,aggTrade", "--duration", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "'aggTrade' is named trade here" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()  # nothing started, nothing written
