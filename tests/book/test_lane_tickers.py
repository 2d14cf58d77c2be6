"""The compiled lane audits bookTickers (rule 8) as ``Sequencer.apply_ticker`` and its settling would, table-
driven on hand-built columns: the book is bids 100x1, asks 110x2, at position 10."""

from __future__ import annotations

import numpy as np
import pytest

from acts.book.arraybook import MISMATCH, MISMATCH_ROW, NO_MISMATCH, ArrayBook
from tests.book.test_lane_kinds import TICKER, Group, diff, lane, seeded


def tick(u: int, bid: int = 100, bid_qty: int = 1, ask: int = 110, ask_qty: int = 2) -> tuple:
    return (TICKER, 0, 0, u, [(0, bid, bid_qty), (1, ask, ask_qty)])


D11 = diff(11, 11, 11, (0, 101, 5))  # the best bid becomes 101x5
AFTER_D11 = (101, 5, 110, 2)
D12 = diff(12, 12, 12, (1, 109, 7))

# (name, events, pend_limit, (next i, position, last E, crossed), checked, mismatch, rows left waiting)
CASES = [
    ("at the position, equal: checked", [tick(10), D11], 64, (2, 11, 11, False), 1, NO_MISMATCH, []),
    ("at the position, quantity differs: stop before", [tick(10, bid_qty=2), D11], 64, (0, 10, -1, False), 0,
     NO_MISMATCH, []),
    ("at the position, price differs: stop before", [tick(10, ask=111), D11], 64, (0, 10, -1, False), 0,
     NO_MISMATCH, []),
    ("at the position, a side empty in the ticker only: stop", [tick(10, bid_qty=0), D11], 64, (0, 10, -1, False),
     0, NO_MISMATCH, []),
    ("passed: dropped unchecked, whatever it says", [tick(9, bid=1), D11], 64, (2, 11, 11, False), 0, NO_MISMATCH,
     []),
    ("waits for the next diff, equal after it", [tick(11, *AFTER_D11), D11], 64, (2, 11, 11, False), 1, NO_MISMATCH,
     []),
    ("two wait for the same diff: one check", [tick(11, *AFTER_D11), tick(11, *AFTER_D11), D11, D12], 64,
     (4, 12, 12, False), 1, NO_MISMATCH, []),
    ("waits, differs after its diff: the run ends after it", [tick(11, 100, 1, 110, 2), D11, D12], 64,
     (2, 11, 11, False), 0, MISMATCH, []),
    ("one of two waiting differs", [tick(11, *AFTER_D11), tick(11, 101, 4, 110, 2), D11], 64, (3, 11, 11, False),
     0, MISMATCH, []),
    ("waits inside the next diff's batch: dropped", [tick(12, bid=1), diff(11, 11, 13, (0, 101, 5))], 64,
     (2, 13, 11, False), 0, NO_MISMATCH, []),
    ("waits across two diffs", [tick(10), tick(12, 101, 5, 109, 7), D11, D12], 64, (4, 12, 12, False), 2,
     NO_MISMATCH, []),
    ("waits across two diffs, differs", [tick(12), tick(11, *AFTER_D11), D11, D12], 64, (4, 12, 12, False), 1,
     MISMATCH, []),
    ("waits, the next diff breaks the chain: left waiting", [tick(11, *AFTER_D11), diff(11, 12, 12)], 64,
     (1, 10, -1, False), 0, NO_MISMATCH, [0]),
    ("waits across a covered diff", [tick(11, *AFTER_D11), diff(9, 10, 10), D11], 64, (3, 11, 11, False), 1,
     NO_MISMATCH, []),
    ("waits at the end of the columns", [D11, tick(13), tick(12)], 64, (3, 11, 11, False), 0, NO_MISMATCH, [1, 2]),
    ("waits for a diff past the interval", [tick(11, *AFTER_D11), diff(10**6, 11, 11, (0, 101, 5))], 64,
     (1, 10, -1, False), 0, NO_MISMATCH, [0]),
    ("no room to wait: stop before it", [tick(11, *AFTER_D11), D11], 0, (0, 10, -1, False), 0, NO_MISMATCH, []),
    ("more than the room: stop before the one past it", [tick(11, *AFTER_D11), tick(11, *AFTER_D11), D11], 1,
     (1, 10, -1, False), 0, NO_MISMATCH, [0]),
]


@pytest.mark.parametrize(("name", "events", "pend", "expected", "checked", "mismatch", "waiting"), CASES,
                         ids=[c[0] for c in CASES])
def test_follow_chain_audits_tickers(name: str, events: list[tuple], pend: int, expected: tuple, checked: int,
                                     mismatch: int, waiting: list[int]) -> None:
    book = seeded()
    assert book.follow_chain(Group(events), 0, 10, 10**5, check_tickers=True, pend_limit=pend) == expected
    assert (book.tickers_checked, book.ticker_mismatch, book.tickers_waiting) == (checked, mismatch, waiting)


def test_without_check_tickers_the_lane_stops_at_any_ticker() -> None:
    book = seeded()
    assert book.follow_chain(Group([tick(9), D11]), 0, 10, 10**5, pend_limit=64) == (0, 10, -1, False)


def test_an_empty_side_matches_a_ticker_side_of_quantity_zero() -> None:
    book = ArrayBook()
    book.load((np.array([], dtype=np.int64), np.array([], dtype=np.int64)), (np.array([110]), np.array([2])))
    assert book.follow_chain(Group([tick(10, 0, 0), D11]), 0, 10, 10**5, check_tickers=True)[0] == 2
    assert book.tickers_checked == 1
    assert book.follow_chain(Group([tick(11, 100, 1)]), 0, 11, 10**5, check_tickers=True)[0] == 0  # bid empty


def test_sample_chain_leaves_the_row_a_mismatch_closed_uncounted() -> None:
    book, out = seeded(), lane()
    events = [D11, tick(12, 0, 0, 0, 0), D12, diff(13, 13, 13, (0, 99, 1))]
    # Event mode: D12 closes the row of D11 (sampled valid), then the waiting ticker proves the book wrong.
    assert book.sample_chain(Group(events), 0, 10, 0, 0, 0, out, check_tickers=True, pend_limit=64) == \
        (3, 12, 12, 12, 1, False)
    assert book.ticker_mismatch == MISMATCH_ROW and book.tickers_checked == 0
    assert (out.time[1], out.stop[1], out.last[1]) == (11, 12, 11)  # the row D12 closed, for Python to invalidate


def test_sample_chain_checks_like_follow_chain() -> None:
    book, out = seeded(), lane()
    events = [tick(10), tick(11, *AFTER_D11), D11, tick(3, 0, 0), tick(11, *AFTER_D11), D12]
    assert book.sample_chain(Group(events), 0, 10, 0, 0, 1000, out, check_tickers=True, pend_limit=64) == \
        (6, 12, 12, 0, 0, False)
    assert (book.tickers_checked, book.ticker_mismatch) == (3, NO_MISMATCH)
