"""``acts.api`` over trades and bookTickers: the raw events table shows them, ``trades()`` lists trades."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import acts.api as api
from acts.core.events import BookTicker, DepthUpdate, Event, EventKind, Snapshot, Trade, marker
from acts.storage.segments import write_segments

T0 = 1_714_521_600 * 10**9  # 2024-05-01 00:00 UTC
E0 = T0 // 10**6
MIN = 60_000


def _events(symbol: str) -> list[Event]:
    return [
        marker(EventKind.CONNECT, symbol, T0),
        Snapshot(symbol, 5, (("10.50", "1.000"),), (("10.60", "3.000"),), T0 + 1),
        Trade(symbol, E0 + 2, 100, "10.55000000", "0.00100000", E0 + 1, False, T0 + 2_000_000),
        DepthUpdate(symbol, E0 + 3, 6, 6, (("10.51", "2.500"),), (), T0 + 3_000_000),
        BookTicker(symbol, 6, "10.51", "2.500", "10.60", "3.000", T0 + 3_000_001),
        # Received a minute later, traded just before the minute: T decides which range it is in.
        Trade(symbol, E0 + MIN + 5, 101, "10.6", "3", E0 + MIN - 1, True, T0 + (MIN + 5) * 1_000_000),
        Trade(symbol, E0 + MIN + 6, 102, "10.7", "0.5", E0 + MIN + 6, False, T0 + (MIN + 6) * 1_000_000),
    ]


def _history(tmp_path: Path) -> api.History:
    for symbol in ("XUSDT", "YUSDT"):
        write_segments(tmp_path, symbol, _events(symbol))
    return api.open_history(tmp_path)


def test_events_shows_trades_and_tickers_with_their_fields(tmp_path: Path) -> None:
    table = _history(tmp_path).events("XUSDT", "2024-05-01")
    assert table.schema == api.EVENTS_SCHEMA
    rows = table.to_pylist()
    trade = [r for r in rows if r["kind"] == "trade"]
    assert [(r["trade_id"], r["price"], r["qty"], r["buyer_is_maker"], r["side"]) for r in trade] == [
        (100, Decimal("10.55"), Decimal("0.001"), False, None), (101, Decimal("10.6"), Decimal("3"), True, None),
        (102, Decimal("10.7"), Decimal("0.5"), False, None)]
    assert int(trade[0]["trade_time"].timestamp() * 1000) == E0 + 1
    assert int(trade[0]["event_time"].timestamp() * 1000) == E0 + 2
    ticker = [r for r in rows if r["kind"] == "book_ticker"]
    assert [(r["side"], r["price"], r["qty"], r["final_update_id"], r["event_time"]) for r in ticker] == [
        ("bid", Decimal("10.51"), Decimal("2.5"), 6, None), ("ask", Decimal("10.6"), Decimal("3"), 6, None)]
    assert len({r["event"] for r in ticker}) == 1
    assert all(r["trade_id"] is None for r in rows if r["kind"] != "trade")


def test_trades_by_trade_time_with_the_takers_side(tmp_path: Path) -> None:
    history = _history(tmp_path)
    first = history.trades("XUSDT", "2024-05-01T00:00:00Z", "2024-05-01T00:01:00Z")
    assert first.schema == api.TRADES_SCHEMA
    assert [(r["trade_id"], r["side"], r["price"], r["qty"]) for r in first.to_pylist()] == [
        (100, "buy", Decimal("10.55"), Decimal("0.001")), (101, "sell", Decimal("10.6"), Decimal("3"))]
    later = history.trades(["X", "Y"], "2024-05-01T00:01:00Z")
    assert [(r["symbol"], r["trade_id"]) for r in later.to_pylist()] == [("XUSDT", 102), ("YUSDT", 102)]
    assert int(later.to_pylist()[0]["time"].timestamp() * 1000) == E0 + MIN + 6
