"""A trade gap's GAP marker (``"stream": "trade"``) changes neither replay nor verify: both judge from the ids.

The same events are folded with and without the marker the recorder writes after the trade that jumped."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from acts.core.events import DepthUpdate, Event, EventKind, Marker, Snapshot, Trade
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, MinuteSampler
from acts.replayer.verify import VerifyReport, _SymbolVerifier

SYMBOL = "BTCUSDT"
NS = 1_000_000
T0 = 1_714_521_600_000  # 2024-05-01T00:00Z
NAMES = ["mid", "trade_count", "buy_volume", "vwap", "last_price"]
JUMP_ID = 40  # the trade after 11 is 40


def _events(with_marker: bool) -> list[Event]:
    """A synced book, a diff and a trade every 300 ms for 30 s; trades 12..39 lost at the 10th second."""
    events: list[Event] = [Snapshot(SYMBOL, 100, (("10.00", "1.0"),), (("12.00", "1.0"),), T0 * NS)]
    trade_id, u = 0, 100
    for step in range(100):
        ms = T0 + 50 + 300 * step
        u += 1
        events.append(DepthUpdate(SYMBOL, ms, u, u, (("10.00", f"{1 + step % 3}.0"),), (), (ms + 20) * NS))
        trade_id = JUMP_ID if trade_id == 11 else trade_id + 1
        trade = Trade(SYMBOL, ms + 5, trade_id, "11.00", "0.5", ms + 5, step % 2 == 0, (ms + 25) * NS)
        events.append(trade)
        if trade_id == JUMP_ID and with_marker:  # what the recorder journals, at the trade's receive time
            detail = '{"expected":12,"got":40,"stream":"trade"}'
            events.append(Marker(EventKind.GAP, SYMBOL, trade.recv_ns, detail))
    return events


@pytest.mark.parametrize("interval_ms", [1000, EVERY_EVENT])
def test_replay_rows_are_the_same_with_the_trade_gap_marker(interval_ms: int) -> None:
    def rows(events: list[Event]) -> list[object]:
        sampler = MinuteSampler(SYMBOL, default_registry().resolve(NAMES), interval_ms=interval_ms)
        return [row for event in events for row in sampler.apply(event)[0]]

    plain, marked = rows(_events(False)), rows(_events(True))
    assert marked == plain
    # The rows around the jump do lose their trade features (from the ids, not from the marker).
    counts = [row.values[1] for row in plain]
    assert None in counts and any(c is not None for c in counts)


def test_verify_counts_the_trade_gap_once_and_no_depth_gap() -> None:
    def hours(events: list[Event]) -> list[dict[str, object]]:
        verifier = _SymbolVerifier(SYMBOL, VerifyReport(), None, None)
        verifier.feed(events)
        return [asdict(verifier.hours[k]) for k in sorted(verifier.hours)]

    plain, marked = hours(_events(False)), hours(_events(True))
    ((hour,),) = [plain]
    assert (hour["gaps"], hour["missing_ids"], hour["trade_gaps"], hour["trades"]) == (0, 0, 1, 100)
    assert marked == [dict(hour, events=hour["events"] + 1)]  # the marker is one more event recorded, no more
