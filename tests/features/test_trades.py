"""Trade features: proved by the trade-id chain, emitted only when both the book and the trade part closed."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from acts.core.errors import UnknownFeatureError
from acts.core.events import DepthUpdate, DisconnectReason, Event, EventKind, Marker, Snapshot, Trade, marker
from acts.core.timeunits import MINUTE_MS
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, MinuteRow, MinuteSampler
from acts.features.trades import TRADE_GRACE_MS

SYMBOL = "BTCUSDT"
TRADES = ["trade_count", "buy_volume", "sell_volume", "vwap", "last_price", "trade_imbalance"]
NS = 1_000_000
LATENCY_MS = 50


class Stream:
    """Depth diffs continuing the chain from a snapshot, and trades, in the order they are added."""

    def __init__(self) -> None:
        self.events: list[Event] = [Snapshot(SYMBOL, 100, (("10.00", "1.0"),), (("12.00", "1.0"),), 0)]
        self.u = 100

    def diff(self, e_ms: int, bid_qty: str = "2.0") -> Stream:
        self.u += 1
        self.events.append(DepthUpdate(SYMBOL, e_ms, self.u, self.u, (("10.00", bid_qty),), (),
                                       (e_ms + LATENCY_MS) * NS))
        return self

    def trade(self, trade_id: int, t_ms: int, price: str = "11.00", qty: str = "1.0", buy: bool = True,
              recv_ms: int | None = None) -> Stream:
        recv = (t_ms + LATENCY_MS if recv_ms is None else recv_ms) * NS
        self.events.append(Trade(SYMBOL, t_ms, trade_id, price, qty, t_ms, not buy, recv))
        return self

    def restart(self, recv_ms: int) -> Stream:
        self.events.append(Marker(EventKind.RESTART, SYMBOL, recv_ms * NS))
        return self

    def disconnect(self, recv_ms: int, reason: str = DisconnectReason.SHUTDOWN) -> Stream:
        self.events.append(marker(EventKind.DISCONNECT, SYMBOL, recv_ms * NS, reason=reason))
        return self


def fold(events: Sequence[Event], names: Sequence[str], interval_ms: int = 1000) -> list[tuple[int, MinuteRow]]:
    """Every row with the index of the event whose ``apply`` returned it."""
    sampler = MinuteSampler(SYMBOL, default_registry().resolve(names), interval_ms=interval_ms)
    return [(i, row) for i, event in enumerate(events) for row in sampler.apply(event)[0]]


def trade_part(row: MinuteRow) -> dict[str, object]:
    return dict(zip(TRADES, row.values[1:], strict=True))


def by_minute(rows: list[tuple[int, MinuteRow]]) -> dict[int, MinuteRow]:
    return {row.minute_ms: row for _, row in rows}


NULL = dict.fromkeys(TRADES)


def test_an_interval_proven_by_the_next_consecutive_trade_has_exact_values() -> None:
    s = Stream().trade(1, 500).diff(600)
    s.trade(2, 1200, "10.00", "1.0", buy=True).diff(1300).trade(3, 1500, "12.00", "3.0", buy=False)
    s.diff(2100).trade(4, 2200)
    rows = fold(s.events, ["mid", *TRADES])
    got = by_minute(rows)
    # Interval 0 holds the first trade seen: nothing proves no trade came before it.
    assert trade_part(got[0]) == NULL and got[0].values[0] == 11.0 and got[0].valid
    assert trade_part(got[1000]) == {"trade_count": 2.0, "buy_volume": 1.0, "sell_volume": 3.0, "vwap": 11.5,
                                     "last_price": 12.0, "trade_imbalance": -0.5}
    # Row 1000's book part closed at diff 2100 (index 7); its trade part only at trade 4 (index 8).
    assert [i for i, row in rows if row.minute_ms == 1000] == [len(s.events) - 1]


def test_a_trade_that_arrives_before_the_closing_diff_lets_the_diff_emit_the_row() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200).trade(3, 2050, recv_ms=2060).diff(2100)
    rows = fold(s.events, ["mid", *TRADES])
    (index,) = [i for i, row in rows if row.minute_ms == 1000]
    assert index == len(s.events) - 1  # the closing diff
    assert trade_part(by_minute(rows)[1000])["trade_count"] == 1.0


def test_an_id_jump_nulls_every_interval_the_missing_trades_may_lie_in() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200).diff(1300).trade(4, 2500).diff(2600)
    s.trade(5, 3200).diff(3300).trade(6, 4100).diff(4200).trade(7, 5100).diff(5200)
    got = by_minute(fold(s.events, ["mid", *TRADES]))
    assert trade_part(got[1000]) == NULL and trade_part(got[2000]) == NULL  # trade 3 was in one of them
    assert trade_part(got[3000])["trade_count"] == 1.0  # anchored by trade 4, closed by consecutive trade 6
    assert trade_part(got[4000])["trade_count"] == 1.0
    assert all(row.valid for row in got.values())  # the book is untouched by a trade gap


def test_a_quiet_interval_is_valid_with_zero_counts_once_the_next_consecutive_trade_proves_it() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200, "13.00").diff(1300).diff(2100).diff(3100).trade(3, 3500)
    s.diff(4100)
    got = by_minute(fold(s.events, ["mid", *TRADES]))
    assert trade_part(got[2000]) == {"trade_count": 0.0, "buy_volume": 0.0, "sell_volume": 0.0, "vwap": None,
                                     "last_price": 13.0, "trade_imbalance": None}


def test_an_interval_not_proven_within_the_grace_is_null_and_stays_null() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200).diff(1300).trade(3, 2050).diff(2100)
    for e in range(3000, 9600, 500):
        s.diff(e)
    s.trade(4, 9900).diff(11_000).trade(5, 11_100)  # consecutive, but later than the grace of 2000 and 3000
    rows = fold(s.events, ["mid", *TRADES])
    got = by_minute(rows)
    assert trade_part(got[1000])["trade_count"] == 1.0  # proven by trade 3
    assert trade_part(got[2000]) == NULL and trade_part(got[3000]) == NULL
    # Row 2000 came out at the first event received 5 s after its end, not at a trade.
    (index,) = [i for i, row in rows if row.minute_ms == 2000]
    assert s.events[index].recv_ns >= (3000 + TRADE_GRACE_MS) * NS > s.events[index - 1].recv_ns
    # Trade 4 (received 9.95 s) proves 4000..8000 within their grace: quiet, valid.
    assert trade_part(got[4000]) == trade_part(got[8000]) == {
        "trade_count": 0.0, "buy_volume": 0.0, "sell_volume": 0.0, "vwap": None, "last_price": 11.0,
        "trade_imbalance": None}
    assert trade_part(got[9000])["trade_count"] == 1.0  # proven by trade 5


def test_a_restart_forgets_the_chain() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200).diff(1300).restart(1800)
    s.trade(3, 2100).diff(2200).trade(4, 3200).diff(3300).trade(5, 4200).diff(4300)
    got = by_minute(fold(s.events, ["mid", *TRADES]))
    # 1000: the restart cut it (book invalid) and no anchor survives; 2000 holds the new process's first trade.
    assert trade_part(got[1000]) == NULL and not got[1000].valid
    assert trade_part(got[2000]) == NULL
    assert trade_part(got[3000])["trade_count"] == 1.0


@pytest.mark.parametrize("interval_ms", [1000, EVERY_EVENT])
def test_a_clean_stop_lets_the_rows_waiting_for_their_trade_proof_out_with_null_trade_features(
        interval_ms: int) -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200).diff(1300).trade(3, 2050).diff(2100)
    s.diff(3100)  # the last row whose book part closed waits: no trade after trade 3
    waiting = fold(s.events, ["mid", *TRADES], interval_ms)
    s.disconnect(3300)
    rows = fold(s.events, ["mid", *TRADES], interval_ms)
    stopped = rows[len(waiting):]
    assert rows[:len(waiting)] == waiting  # what came out before the stop is unchanged
    last = 2000 if interval_ms else 2100
    # Out at the stop's marker: the book's values and proof, the trade part null (nothing can prove it now).
    assert [(i, row.minute_ms) for i, row in stopped] == [(len(s.events) - 1, last)]
    ((_, row),) = stopped
    assert row.valid and row.values[0] == 11.0 and trade_part(row) == NULL
    assert trade_part(by_minute(rows)[1000 if interval_ms else 1300])["trade_count"] == 1.0  # proven as ever
    # The open interval (or the last diff's row) is not a row yet, stop or no stop.
    assert max(by_minute(rows)) == last
    # A stalled feed's DISCONNECT is no stop: the recorder reconnects and the next trades may prove it.
    s.events[-1] = marker(EventKind.DISCONNECT, SYMBOL, 3300 * NS, reason=DisconnectReason.STALE_FEED)
    assert fold(s.events, ["mid", *TRADES], interval_ms) == waiting


def test_after_a_clean_stop_the_chain_starts_afresh() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200).diff(1300).disconnect(1400)
    s.trade(3, 2100).diff(2200).trade(4, 3200).diff(3300).trade(5, 4200).diff(4300)
    got = by_minute(fold(s.events, ["mid", *TRADES]))
    # Trade 3 follows trade 2 by id, but across a stop: nothing says no trade came between (as a restart).
    assert trade_part(got[1000]) == NULL and trade_part(got[2000]) == NULL
    assert trade_part(got[3000])["trade_count"] == 1.0


def test_duplicates_are_ignored_and_a_late_trade_is_not_counted() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 1200).trade(2, 1200).diff(1300).trade(3, 2200).diff(2300)
    s.trade(4, 1900).trade(5, 3100).diff(3200)  # 4's interval closed already (T ran backwards)
    got = by_minute(fold(s.events, ["mid", *TRADES]))
    assert trade_part(got[1000])["trade_count"] == 1.0
    assert trade_part(got[2000])["trade_count"] == 1.0


def streams() -> list[Stream]:
    a = Stream().trade(1, 500).diff(600).trade(2, 1200).diff(1300).trade(4, 2500).diff(2600).diff(9000)
    a.trade(5, 9100).diff(10_100).trade(6, 10_200).diff(11_100)
    b = Stream().trade(1, 500).diff(600).restart(700).diff(1300).trade(2, 1400).diff(2400).trade(3, 2500)
    b.diff(61_000).trade(4, 61_500).diff(62_000)
    return [a, b]


@pytest.mark.parametrize("stream", streams())
@pytest.mark.parametrize("interval_ms", [1000, MINUTE_MS])
def test_trade_features_change_nothing_of_the_book_part(stream: Stream, interval_ms: int) -> None:
    with_trades = fold(stream.events, ["mid", *TRADES, "bias5"], interval_ms)
    book_only = fold(stream.events, ["mid", "bias5"], interval_ms)
    got = [(row.minute_ms, row.valid, row.last_book_update_ms, row.values[0], row.values[-1])
           for _, row in with_trades]
    want = [(row.minute_ms, row.valid, row.last_book_update_ms, *row.values) for _, row in book_only]
    assert got == want[:len(got)]  # the last rows may still wait for their trade part
    assert [row.minute_ms for _, row in with_trades] == sorted({row.minute_ms for _, row in with_trades})


@pytest.mark.parametrize("stream", streams())
def test_without_trade_features_trades_change_nothing(stream: Stream) -> None:
    no_trades = [event for event in stream.events if not isinstance(event, Trade)]
    assert [row for _, row in fold(stream.events, ["mid"])] == [row for _, row in fold(no_trades, ["mid"])]
    # ... and each row comes out at the same diff as before.
    assert len(fold(stream.events, ["mid"])) == len(fold(no_trades, ["mid"]))


def test_event_mode_rows_hold_the_trades_received_since_the_previous_diff() -> None:
    s = Stream().trade(1, 500).diff(600)  # row A: its window holds trade 1, not anchored
    s.trade(2, 700, "10.00", "1.0", buy=True).trade(3, 800, "12.00", "3.0", buy=False).diff(900)  # B
    s.trade(4, 1000).diff(1100)  # C: proven or not by the next trade, which jumps
    s.trade(6, 1200).diff(1300)  # D: holds the jump
    s.trade(7, 1400).diff(1500)  # E
    s.diff(1600).trade(8, 1700)  # F holds no trade; trade 8 proves E and F
    rows = fold(s.events, ["mid", *TRADES], EVERY_EVENT)
    got = {row.minute_ms: (i, row) for i, row in rows}
    assert sorted(got) == [600, 900, 1100, 1300, 1500]  # F's row waits for the next diff, as ever
    assert trade_part(got[600][1]) == NULL
    assert trade_part(got[900][1]) == {"trade_count": 2.0, "buy_volume": 1.0, "sell_volume": 3.0, "vwap": 11.5,
                                       "last_price": 12.0, "trade_imbalance": -0.5}
    assert trade_part(got[1100][1]) == NULL and trade_part(got[1300][1]) == NULL
    assert trade_part(got[1500][1])["trade_count"] == 1.0
    # E's row: the book part closed at diff F, the trade part only at trade 8 (the last event).
    assert got[1500][0] == len(s.events) - 1 and got[1300][0] == s.events.index(s.events[-3])
    book_only = fold(s.events, ["mid"], EVERY_EVENT)
    assert [row.values[0] for _, row in rows] == [row.values[0] for _, row in book_only]


def test_event_mode_windows_close_null_after_the_grace_and_at_a_restart() -> None:
    s = Stream().trade(1, 500).diff(600).trade(2, 700).diff(800)
    s.diff(800 + TRADE_GRACE_MS)  # no trade for 5 s: B's window (trade 2) is not proven in time
    s.trade(3, 6000).diff(6100).trade(4, 6200).diff(6300).restart(6400).trade(5, 6500).diff(6600)
    got = by_minute(fold(s.events, ["mid", *TRADES], EVERY_EVENT))
    assert trade_part(got[800]) == NULL
    assert trade_part(got[800 + TRADE_GRACE_MS])["trade_count"] == 0.0  # quiet, proven by trade 3 in time
    assert trade_part(got[6100])["trade_count"] == 1.0  # trade 3, proven by trade 4
    assert trade_part(got[6300]) == NULL  # the restart came before the trade that would prove it


def test_trade_features_are_registered_with_their_rule() -> None:
    docs = default_registry().docs()
    assert all("trade-id chain" in docs[name] for name in TRADES)
    with pytest.raises(UnknownFeatureError, match="trade_count"):
        default_registry().resolve(["trade_cnt"])
