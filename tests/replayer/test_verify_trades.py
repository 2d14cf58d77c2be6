"""``acts verify`` counts trades per hour of their trade time, and trade-id jumps as trade gaps."""

from __future__ import annotations

from acts.core.events import EventKind, Marker, Trade
from acts.core.timeunits import HOUR_MS
from acts.replayer.verify import VerifyReport, _SymbolVerifier

HOUR = 1_714_521_600_000  # 2024-05-01T00:00Z


def trade(trade_id: int, t_ms: int) -> Trade:
    return Trade("BTCUSDT", t_ms, trade_id, "1.00", "1.0", t_ms, False, (t_ms + 10) * 1_000_000)


def test_trades_and_trade_gaps_per_hour() -> None:
    events = [trade(1, HOUR + 5), trade(2, HOUR + 6), trade(2, HOUR + 7), trade(5, HOUR + 8),
              trade(6, HOUR + HOUR_MS - 1),
              Marker(EventKind.RESTART, "BTCUSDT", (HOUR + HOUR_MS + 5) * 1_000_000),
              trade(9, HOUR + HOUR_MS + 10), trade(10, HOUR + HOUR_MS + 20)]
    verifier = _SymbolVerifier("BTCUSDT", VerifyReport(), None, None)
    verifier.feed(events)
    first, second = (verifier.hours[k] for k in sorted(verifier.hours))
    assert (first.trades, first.trade_gaps, first.snapshots) == (4, 1, 0)  # the duplicate 2 is not counted
    # Trades 7 and 8 are missing across the restart: a gap in the data all the same.
    assert (second.trades, second.trade_gaps) == (2, 1)
