"""Rule 8, the audit against Binance's own best bid/ask: table-driven, on the reference book and the ArrayBook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from acts.book.arraybook import ArrayBook
from acts.book.sequencer import (
    BREAKS_CHAIN,
    MAX_PENDING_TICKERS,
    Applied,
    BboChecked,
    BboMismatch,
    Crossed,
    Gap,
    Noted,
    Sequencer,
    State,
    Synced,
)
from acts.core.decimals import to_book
from acts.core.events import BookTicker, DepthUpdate, EventKind, Marker, Snapshot

S = "XUSDT"


def diff(first: int, final: int, bid: tuple[str, str] = ("1.00", "1"), ask: tuple[str, str] = ("9.00", "1"),
         ) -> DepthUpdate:
    return DepthUpdate(S, 1000 * final, first, final, (bid,), (ask,), final)


def snap(last: int) -> Snapshot:
    return Snapshot(S, last, (("0.50", "2"),), (("10.00", "2"),), 0)


def tick(u: int, bid: str = "1.00", bid_qty: str = "1", ask: str = "9.00", ask_qty: str = "1") -> BookTicker:
    return BookTicker(S, u, bid, bid_qty, ask, ask_qty, 0)


def _arrays(levels: Any) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([to_book(p) for p, _ in levels], dtype=np.int64),
            np.array([to_book(q) for _, q in levels], dtype=np.int64))


def _as_arrays(event: Any) -> Any:
    """The fast path's spelling of an event: levels as book-scale int64 arrays."""
    if isinstance(event, DepthUpdate):
        return DepthUpdate(event.symbol, event.event_time_ms, event.first_update_id, event.final_update_id,
                           _arrays(event.bids), _arrays(event.asks), event.recv_ns)
    if isinstance(event, Snapshot):
        return Snapshot(event.symbol, event.last_update_id, _arrays(event.bids), _arrays(event.asks), event.recv_ns)
    return event


#: Each engine: a fresh sequencer, and how it wants its events.
ENGINES: dict[str, tuple[Callable[[], Sequencer[Any]], Callable[[Any], Any]]] = {
    "reference": (lambda: Sequencer(), lambda e: e),
    "arraybook": (lambda: Sequencer(book=ArrayBook()), _as_arrays),
}

NO_BIDS = Snapshot(S, 9, (), (("10.00", "2"),), 0)
LIVE_AT_10 = [snap(9), diff(10, 10)]  # valid, position 10, best bid 1.00 x 1, best ask 9.00 x 1
CASES = [
    # (name, events before, the event, its outcome, state after)
    ("ticker at the position: checked now", LIVE_AT_10, tick(10), BboChecked(10), State.LIVE),
    ("ticker at the position, other bid price", LIVE_AT_10, tick(10, bid="1.01"), BboMismatch(10), State.NO_BOOK),
    ("ticker at the position, other bid qty", LIVE_AT_10, tick(10, bid_qty="1.5"), BboMismatch(10), State.NO_BOOK),
    ("ticker at the position, other ask price", LIVE_AT_10, tick(10, ask="8.99"), BboMismatch(10), State.NO_BOOK),
    ("ticker at the position, other ask qty", LIVE_AT_10, tick(10, ask_qty="2"), BboMismatch(10), State.NO_BOOK),
    ("same numbers spelled otherwise match", LIVE_AT_10, tick(10, "1.00000000", "1.000", "9", "1.0"),
     BboChecked(10), State.LIVE),
    ("ticker behind the position: unchecked", LIVE_AT_10, tick(9, bid="5.00"), Noted(), State.LIVE),
    ("ticker ahead: pending, nothing yet", LIVE_AT_10, tick(12), Noted(), State.LIVE),
    ("the diff it waited for checks it", LIVE_AT_10 + [tick(12)], diff(11, 12), BboChecked(12), State.LIVE),
    ("the diff it waited for, mismatch", LIVE_AT_10 + [tick(12, bid="2.00")], diff(11, 12), BboMismatch(12),
     State.NO_BOOK),
    ("a diff short of it: still pending", LIVE_AT_10 + [tick(12)], diff(11, 11), Applied(), State.LIVE),
    ("passed without equality: dropped unchecked", LIVE_AT_10 + [tick(12, bid="2.00")], diff(11, 13), Applied(),
     State.LIVE),
    ("no book: unchecked", [], tick(10), Noted(), State.NO_BOOK),
    ("after a gap: unchecked", LIVE_AT_10 + [diff(15, 15)], tick(15), Noted(), State.NO_BOOK),
    ("snapshot position: checked against the snapshot", [snap(9)], tick(9, "0.50", "2", "10.00", "2"),
     BboChecked(9), State.SYNCING),
    ("empty bid side vs a ticker's bid: mismatch", [NO_BIDS], tick(9, ask="10.00", ask_qty="2"), BboMismatch(9),
     State.NO_BOOK),
    ("empty bid side vs a ticker bid of qty 0: match", [NO_BIDS], tick(9, "0.00", "0.00", "10.00", "2"),
     BboChecked(9), State.SYNCING),
    ("a ticker bid of qty 0 vs a bid: mismatch", LIVE_AT_10, tick(10, bid_qty="0"), BboMismatch(10), State.NO_BOOK),
    ("a crossing diff is Crossed, not checked", LIVE_AT_10 + [tick(11)], diff(11, 11, bid=("9.50", "1")),
     Crossed(11), State.NO_BOOK),
    ("two tickers at one u, one wrong: mismatch", LIVE_AT_10 + [tick(11), tick(11, ask_qty="3")], diff(11, 11),
     BboMismatch(11), State.NO_BOOK),
    ("trades and markers change nothing", LIVE_AT_10, Marker(EventKind.GAP, S, 0), Noted(), State.LIVE),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "before", "event", "outcome", "state"), CASES, ids=[c[0] for c in CASES])
def test_rule(engine: str, name: str, before: list, event: object, outcome: object, state: State) -> None:
    make, spell = ENGINES[engine]
    seq = make()
    for earlier in before:
        seq.apply(spell(earlier))
    assert seq.apply(spell(event)) == outcome
    assert seq.state is state


@pytest.mark.parametrize("engine", ENGINES)
def test_a_mismatch_leaves_the_book_invalid_until_the_next_snapshot(engine: str) -> None:
    make, spell = ENGINES[engine]
    seq = make()
    for event in [*LIVE_AT_10, tick(11, bid="3.00")]:
        seq.apply(spell(event))
    assert seq.apply(spell(diff(11, 11))) == BboMismatch(11)
    assert isinstance(BboMismatch(11), BREAKS_CHAIN)
    assert not seq.valid and seq.bbo_wait is None
    assert seq.apply(spell(tick(12))) == Noted()  # no book: unchecked, not pending
    assert seq.bbo_wait is None
    assert seq.apply(spell(diff(12, 12))).__class__.__name__ == "Buffered"
    assert seq.apply(spell(snap(11))) == Synced(11, 1)
    assert seq.valid and seq.apply(spell(tick(12))) == BboChecked(12)


@pytest.mark.parametrize("engine", ENGINES)
def test_pending_tickers_wait_in_order_and_the_wait_is_the_smallest(engine: str) -> None:
    make, spell = ENGINES[engine]
    seq = make()
    for event in LIVE_AT_10:
        seq.apply(spell(event))
    for u in (14, 12, 16):
        assert seq.apply(spell(tick(u))) == Noted()
    assert seq.bbo_wait == 12
    assert seq.apply(spell(diff(11, 11))) == Applied() and seq.bbo_wait == 12
    assert seq.apply(spell(diff(12, 12))) == BboChecked(12) and seq.bbo_wait == 14
    assert seq.apply(spell(diff(13, 15))) == Applied() and seq.bbo_wait == 16  # 14 passed: dropped
    assert seq.apply(spell(diff(16, 16))) == BboChecked(16) and seq.bbo_wait is None


@pytest.mark.parametrize("engine", ENGINES)
def test_pending_tickers_are_bounded_the_oldest_dropped(engine: str) -> None:
    make, spell = ENGINES[engine]
    seq = make()
    for event in LIVE_AT_10:
        seq.apply(spell(event))
    seq.apply(spell(tick(11)))  # the oldest: it falls out
    for _ in range(MAX_PENDING_TICKERS):
        seq.apply(spell(tick(12)))
    assert seq.apply(spell(diff(11, 11))) == Applied()
    assert seq.apply(spell(diff(12, 12))) == BboChecked(12)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("breaker", ["gap", "restart", "snapshot reload"])
def test_pending_tickers_do_not_outlive_the_book_they_waited_for(engine: str, breaker: str) -> None:
    make, spell = ENGINES[engine]
    seq = make()
    start = [snap(9)] if breaker == "snapshot reload" else LIVE_AT_10
    for event in [*start, tick(20, bid="7.00")]:
        seq.apply(spell(event))
    assert seq.bbo_wait == 20
    if breaker == "gap":
        assert isinstance(seq.apply(spell(diff(15, 15))), Gap)
        seq.apply(spell(snap(19)))
    elif breaker == "restart":
        seq.apply(Marker(EventKind.RESTART, S, 0))
        seq.apply(spell(snap(19)))
    else:
        seq.apply(spell(snap(19)))
    assert seq.bbo_wait is None
    assert seq.apply(spell(diff(20, 20))) == Applied()  # the stale ticker is not checked


def test_the_compiled_lane_may_not_pass_a_pending_ticker() -> None:
    seq = Sequencer(book=ArrayBook())
    for event in LIVE_AT_10:
        seq.apply(_as_arrays(event))
    seq.apply(tick(12))
    seq.followed(11, None)  # short of it: fine
    with pytest.raises(AssertionError):
        seq.followed(12, None)
