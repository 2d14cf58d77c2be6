"""The compiled lane meets trade (kind 7) and bookTicker (kind 8) rows, built by hand as a reader would
give them: it stops at both by default, steps over trades only when asked, and hands a bookTicker
back unless asked to audit it (that audit: ``test_lane_tickers``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from acts.book.arraybook import ArrayBook, LaneRows
from acts.book.book import SCALE
from acts.book.kernels import Kernel
from acts.core.events import EventKind

DEPTH, TRADE, TICKER, SNAPSHOT = int(EventKind.DEPTH), int(EventKind.TRADE), int(EventKind.BOOK_TICKER), \
    int(EventKind.SNAPSHOT)


@dataclass
class Group:
    """``EventColumns`` built by hand: each event is ``(kind, E, U, u, [(side, price, qty), ...])``."""

    events: list[tuple[int, int, int, int, list[tuple[int, int, int]]]]
    price_factor: int = 1
    qty_factor: int = 1
    starts: np.ndarray = field(init=False)
    ends: np.ndarray = field(init=False)
    kinds: np.ndarray = field(init=False)
    times: np.ndarray = field(init=False)
    recv: np.ndarray = field(init=False)
    firsts: np.ndarray = field(init=False)
    finals: np.ndarray = field(init=False)
    side: np.ndarray = field(init=False)
    price: np.ndarray = field(init=False)
    qty: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        counts = [len(levels) for *_, levels in self.events]
        self.ends = np.cumsum(counts, dtype=np.int64)
        self.starts = self.ends - np.array(counts, dtype=np.int64)
        self.kinds, self.times, self.firsts, self.finals = (
            np.array([e[k] for e in self.events], dtype=np.int64) for k in range(4))
        self.recv = self.times * 1_000_000
        rows = [row for *_, levels in self.events for row in levels]
        self.side = np.array([r[0] for r in rows], dtype=np.int8)
        self.price, self.qty = (np.array([r[k] for r in rows], dtype=np.int64) for k in (1, 2))


def diff(e: int, first: int, final: int, *levels: tuple[int, int, int]) -> tuple:
    return (DEPTH, e, first, final, list(levels))


def trade(e: int) -> tuple:
    # A trade owns no level rows; its E is past any limit below, so only its kind decides.
    return (TRADE, e, 0, 0, [])


def ticker(e: int) -> tuple:
    return (TICKER, e, 0, 55, [])


def seeded() -> ArrayBook:
    book = ArrayBook()
    book.load((np.array([100]), np.array([1])), (np.array([110]), np.array([2])))
    return book


EVENTS = [diff(1, 11, 11, (0, 101, 5)), trade(10**9), diff(2, 12, 12, (1, 109, 7)), ticker(3),
          diff(4, 13, 13, (0, 102, 1))]


@pytest.mark.parametrize("skip", [False, True])
def test_follow_chain_stops_at_a_trade_unless_told_to_skip_it(skip: bool) -> None:
    book = seeded()
    i, position, last, crossed = book.follow_chain(Group(EVENTS), 0, 10, 10**6, skip_trades=skip)
    view = book.view()
    if skip:
        assert (i, position, last, crossed) == (3, 12, 2, False)  # then stops at the bookTicker
        assert view.asks() == [(109, 7), (110, 2)]
    else:
        assert (i, position, last, crossed) == (1, 11, 1, False)
        assert view.asks() == [(110, 2)]
    assert view.bids() == [(101, 5), (100, 1)]


def test_follow_chain_always_stops_at_a_book_ticker() -> None:
    book = seeded()
    group = Group(EVENTS)
    assert book.follow_chain(group, 3, 12, 10**6, skip_trades=True) == (3, 12, -1, False)
    assert book.follow_chain(group, 4, 12, 10**6, skip_trades=True) == (5, 13, 4, False)
    assert book.view().bids() == [(102, 1), (100, 1)]


def test_follow_chain_default_stops_at_every_non_diff_kind() -> None:
    for kind in (TRADE, TICKER, SNAPSHOT):
        group = Group([diff(1, 11, 11, (0, 101, 5)), (kind, 2, 0, 12, []), diff(3, 12, 12, (0, 99, 1))])
        assert seeded().follow_chain(group, 0, 10, 10**6) == (1, 11, 1, False)


def test_a_skipped_trade_crosses_nothing_and_keeps_the_chain() -> None:
    # A trade between two diffs neither moves the position nor lets a chain break through.
    group = Group([trade(5), diff(6, 12, 12, (0, 101, 5))])
    assert seeded().follow_chain(group, 0, 10, 10**6, skip_trades=True) == (1, 10, -1, False)


def lane() -> LaneRows:
    return LaneRows(np.array([int(Kernel.MID), int(Kernel.BIAS)], dtype=np.int64), np.array([0, 10], dtype=np.int64),
                    16)


@pytest.mark.parametrize("skip", [False, True])
def test_sample_chain_steps_over_trades_only_when_asked(skip: bool) -> None:
    book, out = seeded(), lane()
    # Event mode (interval 0): every diff closes the row of the one before it.
    i, position, last, open_start, written, crossed = book.sample_chain(Group(EVENTS), 0, 10, 0, 0, 0, out,
                                                                        skip_trades=skip)
    if skip:
        assert (i, position, last, open_start, written, crossed) == (3, 12, 2, 2, 2, False)
        # Row 2 is the book after diff 1, sampled when diff 2 closed it: bids 101x5,100x1, asks 110x2.
        assert out.values[1].tolist() == [(101 + 110) / (2 * SCALE), (6 - 2) / (6 + 2)]
    else:
        assert (i, position, last, open_start, written, crossed) == (1, 11, 1, 1, 1, False)
    assert out.values[0].tolist() == [(100 + 110) / (2 * SCALE), (1 - 2) / (1 + 2)]


def test_sample_chain_always_stops_at_a_book_ticker() -> None:
    book, out = seeded(), lane()
    group = Group(EVENTS)
    assert book.sample_chain(group, 3, 12, 2, 2, 0, out, skip_trades=True) == (3, 12, 2, 2, 0, False)
