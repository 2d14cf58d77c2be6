"""``ArrayBook``'s ladder (a window of price slots per side, sorted levels below it) against a plain dict
model, with tiny windows so that every move happens often: the window sliding up and down, recentring
on an emptied side, levels far below it, a finer price re-laying the book, the crossing check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acts.book.arraybook import ArrayBook, LaneRows
from acts.book.kernels import Kernel
from acts.core.decimals import BOOK_SCALE
from tests.book.test_lane_kinds import DEPTH, Group

Side = dict[int, int]


def model_apply(side: Side, levels: list[tuple[int, int]]) -> None:
    for price, qty in levels:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)


def check(book: ArrayBook, bids: Side, asks: Side) -> None:
    view = book.view()
    assert view.bids() == sorted(bids.items(), reverse=True)
    assert view.asks() == sorted(asks.items())
    assert view.bids(3) == sorted(bids.items(), reverse=True)[:3]
    assert view.asks(2) == sorted(asks.items())[:2]
    assert (view.bid_depth, view.ask_depth) == (len(bids), len(asks))
    assert view.best_bid() == (max(bids) if bids else None)
    assert view.best_ask() == (min(asks) if asks else None)
    crossed = bool(bids and asks and max(bids) >= min(asks))
    assert book.is_crossed() == view.is_crossed() == crossed


def arrays(levels: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([p for p, _ in levels], dtype=np.int64), np.array([q for _, q in levels], dtype=np.int64))


# Prices: mostly near 1000 ticks (the window's business), some far below or above, at a tick of
# 10**k book units -- a finer tick than any seen so far re-lays the book.
ticks = st.sampled_from([1, 100, 10_000])
near = st.integers(960, 1040)
far = st.integers(1, 10**6)
level = st.tuples(st.one_of(near, near, near, far), ticks, st.integers(0, 3)).map(lambda t: (t[0] * t[1], t[2]))
side_levels = st.lists(level, max_size=8)
op = st.tuples(st.sampled_from(["apply", "apply", "apply", "load"]), side_levels, side_levels)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([4, 8, 16, 64]), st.lists(op, max_size=30))
def test_apply_and_load_match_a_dict_book(window: int, ops: list) -> None:
    book, bids, asks = ArrayBook(window), {}, {}
    for kind, b, a in ops:
        if kind == "load":
            bids, asks = {}, {}
            b = [(p, q) for p, q in b if q]  # a snapshot lists levels, not removals
            a = [(p, q) for p, q in a if q]
            book.load(arrays(b), arrays(a))
        else:
            book.apply(arrays(b), arrays(a))
        model_apply(bids, b)
        model_apply(asks, a)
        check(book, bids, asks)


def diffs_group(events: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]], factor: int, first_id: int) -> Group:
    """Diffs with consecutive ids; prices given as read (times ``factor`` at the book scale)."""
    rows = [(DEPTH, 1000 + k, first_id + k, first_id + k, [(0, p, q) for p, q in b] + [(1, p, q) for p, q in a])
            for k, (b, a) in enumerate(events)]
    return Group(rows, price_factor=factor)


read_levels = st.lists(st.tuples(st.one_of(near, near, far), st.integers(0, 3)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([4, 8, 64]),
       st.lists(st.tuples(st.sampled_from([1, 100, 10**6]), st.lists(st.tuples(read_levels, read_levels), max_size=8)),
                max_size=4))
def test_the_compiled_lane_matches_a_dict_book(window: int, groups: list) -> None:
    book, bids, asks = ArrayBook(window), {}, {}
    position = 0
    for factor, events in groups:
        group = diffs_group(events, factor, position + 1)
        i = 0
        while i < len(events):
            j, position, _, crossed = book.follow_chain(group, i, position, 10**9)
            for b, a in events[i:j]:
                model_apply(bids, [(p * factor, q) for p, q in b])
                model_apply(asks, [(p * factor, q) for p, q in a])
            assert crossed == bool(bids and asks and max(bids) >= min(asks))
            if not crossed:
                assert j == len(events)
            i = j
        check(book, bids, asks)


def test_the_window_follows_a_trend_both_ways() -> None:
    # With a window of 8 slots, 50 bids climb 1000 ticks (the worst removed as the best rises), then
    # fall back (the best removed, a level added below): it slides up and down many times.
    book, bids, asks = ArrayBook(8), {}, {}
    for step in range(1900):
        if step < 1000:
            changes = [(100 + step, 1)] + ([(min(bids), 0)] if len(bids) >= 50 else [])
        else:
            changes = [(max(bids), 0), (min(bids) - 1, 2)]
        book.apply(arrays(changes), arrays([]))
        model_apply(bids, changes)
        if step % 50 == 0:
            check(book, bids, asks)
    check(book, bids, asks)


def test_removing_the_best_walks_down_and_an_emptied_side_recentres_on_the_levels_below() -> None:
    book = ArrayBook(4)
    prices = [10, 20, 1000, 1001, 1002, 1003]
    book.load(arrays([(p, 1) for p in prices]), arrays([(5000, 1)]))
    for p in (1003, 1002, 1001, 1000):  # the window empties: the best is 20, far below it
        book.apply(arrays([(p, 0)]), arrays([]))
    view = book.view()
    assert view.best_bid() == 20 and view.bids() == [(20, 1), (10, 1)]
    book.apply(arrays([(20, 0), (10, 0)]), arrays([]))
    assert view.best_bid() is None and view.bid_depth == 0 and not book.is_crossed()
    book.apply(arrays([(7000, 3)]), arrays([]))  # a bid far above the ask: crossed
    assert view.best_bid() == 7000 and book.is_crossed()


def test_a_finer_price_relays_the_book_exactly() -> None:
    book = ArrayBook(16)
    book.load(arrays([(10**6 * p, 1) for p in range(100, 120)]), arrays([(10**6 * 121, 5)]))
    book.apply(arrays([(10**6 * 119 + 1, 9)]), arrays([(10**6 * 121 - 3, 2)]))  # 1 book unit finer
    assert book.view().bids(2) == [(10**6 * 119 + 1, 9), (10**6 * 119, 1)]
    assert book.view().asks() == [(10**6 * 121 - 3, 2), (10**6 * 121, 5)]
    assert book.view().bid_depth == 21


def test_sampled_features_read_the_levels_below_the_window() -> None:
    # bias20 over a book whose top 20 levels span the window (4 slots) and the sorted levels below.
    book = ArrayBook(4)
    bid_levels = [(p, p % 7 + 1) for p in range(1000, 1040, 2)]
    ask_levels = [(p, p % 5 + 1) for p in range(1041, 1081, 2)]
    book.load(arrays(bid_levels), arrays(ask_levels))
    out = LaneRows(np.array([int(Kernel.MID), int(Kernel.BIAS), int(Kernel.BID_AMOUNT)]), np.array([0, 20, 20]), 4)
    group = diffs_group([([], []), ([], [])], 1, 1)
    assert book.sample_chain(group, 0, 0, 5, 0, 0, out)[4] == 2  # event mode: each diff closes a row
    b = sum(q for _, q in bid_levels)
    a = sum(q for _, q in ask_levels)
    assert out.values[0].tolist() == [(1038 + 1041) / (2 * 10**BOOK_SCALE), (b - a) / (b + a), b / 10**BOOK_SCALE]


@pytest.mark.parametrize("window", [0, 3])
def test_a_window_too_small_is_refused(window: int) -> None:
    with pytest.raises(ValueError, match="at least 4"):
        ArrayBook(window)


def test_a_row_group_read_at_a_finer_factor_keeps_the_unit_when_its_prices_allow() -> None:
    # A row group of mixed spellings comes at factor 1 (prices already at the book scale); its prices
    # are still whole multiples of the book's unit: the window stays dense, the levels exact.
    book = ArrayBook(8)
    book.load(arrays([(10**6 * p, 1) for p in range(100, 104)]), arrays([(10**6 * 110, 1)]))
    group = diffs_group([([(10**6 * 104, 7)], [(10**6 * 109, 2)]), ([(10**6 * 101, 0)], [])], 1, 1)
    assert book.follow_chain(group, 0, 0, 10**9) == (2, 2, 1001, False)
    assert book._unit == 10**6
    assert book.view().bids() == [(10**6 * 104, 7), (10**6 * 103, 1), (10**6 * 102, 1), (10**6 * 100, 1)]
    assert book.view().asks() == [(10**6 * 109, 2), (10**6 * 110, 1)]
    # Then a price one book unit finer: the unit shrinks, the levels stay.
    finer = diffs_group([([(10**6 * 104 + 1, 3)], [])], 1, 3)
    assert book.follow_chain(finer, 0, 2, 10**9) == (1, 3, 1000, False)
    assert book._unit == 1
    assert book.view().bids(2) == [(10**6 * 104 + 1, 3), (10**6 * 104, 7)]


def test_an_empty_snapshot_chooses_no_unit() -> None:
    book = ArrayBook(8)
    book.load(arrays([]), arrays([]))
    assert book._unit == 0 and book.view().bids() == [] and not book.is_crossed()
    group = diffs_group([([(65_000_01, 2)], [(65_000_02, 1)])], 10**6, 1)
    assert book.follow_chain(group, 0, 0, 10**9) == (1, 1, 1000, False)
    assert book._unit == 10**6
    assert book.view().best_bid() == 65_000_01 * 10**6 and book.view().best_ask() == 65_000_02 * 10**6
