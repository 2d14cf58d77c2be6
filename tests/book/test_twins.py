"""The compiled twins of ``microprice`` and ``depth<N>`` against their Python functions, bit for bit.

Random books go into an ``ArrayBook`` (tiny windows too, so the levels below the window count) and
the lane samples them (``sample_chain`` over one empty diff, event mode: one row of the book as it
is). Where the lane computes a row its values must equal the Python twins' exactly; where it cannot
(an int64 would wrap, a ratio no double holds) it must refuse the row -- Python then computes it.
Ordinary books (prices and quantities of real markets) must never be refused.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from acts.book.arraybook import ArrayBook, LaneRows
from acts.book.book import SCALE
from acts.features.builtin import CompiledFeature, default_registry
from tests.book.test_ladder import arrays, diffs_group

Levels = list[tuple[int, int]]


def lane_row(book: ArrayBook, names: list[str]) -> list[float | None] | None:
    """The lane's row of ``names`` for the book as it is (None for NaN), or None when it refuses the row."""
    features = default_registry().resolve(names)
    compiled = [f.fn for f in features if isinstance(f.fn, CompiledFeature)]
    assert len(compiled) == len(features)
    out = LaneRows(np.array([int(f.kernel) for f in compiled], dtype=np.int64),
                   np.array([f.param for f in compiled], dtype=np.int64), 1)
    rows = book.sample_chain(diffs_group([([], [])], 1, 1), 0, 0, -1, 0, 0, out)[4]
    if not rows:
        return None
    return [None if math.isnan(v) else v for v in out.values[0].tolist()]


def python_row(book: ArrayBook, names: list[str]) -> list[float | None]:
    view = book.view()
    return [f.fn(view) for f in default_registry().resolve(names)]


def same_bits(a: list[float | None], b: list[float | None]) -> bool:
    return [None if v is None else float(v).hex() for v in a] == [None if v is None else float(v).hex() for v in b]


@st.composite
def books(draw: st.DrawFn, ordinary: bool) -> tuple[int, Levels, Levels]:
    """``(window, bids, asks)`` at the book scale, uncrossed: keys around a mid, at a tick of 10**k book units.
    Ordinary: prices up to 10**7 ticks (of at most 1 unit of currency) and quantities up to 10**6 book units;
    otherwise anything an int64 holds, with quantities up to 2**62."""
    tick = draw(st.sampled_from([1, 100, 10**6, 10**8] if ordinary else [1, 10**3, 10**6, 10**10, 10**14]))
    max_key = 10**7 if ordinary else 2**62 // tick
    max_qty = 10**6 if ordinary else 2**62
    mid = draw(st.integers(2, max_key - 1))
    near = st.integers(1, max(1, mid // draw(st.sampled_from([100, 10**4, 10**6]))))
    offsets = st.lists(st.one_of(near, near, st.integers(1, mid)), max_size=12, unique=True)
    qty = st.one_of(st.integers(1, 1000), st.integers(1, max_qty))
    bids = [((mid - o) * tick, draw(qty)) for o in draw(offsets) if mid - o >= 1]
    asks = [((mid + o) * tick, draw(qty)) for o in draw(offsets) if mid + o <= max_key]
    return draw(st.sampled_from([4, 64, 1 << 14])), bids, asks


def loaded(window: int, bids: Levels, asks: Levels) -> ArrayBook:
    book = ArrayBook(window)
    book.load(arrays(bids), arrays(asks))
    return book


bands = st.one_of(st.sampled_from([1, 10, 100]), st.integers(1, 5000))


@settings(max_examples=300, deadline=None)
@given(books(ordinary=True), bands)
def test_ordinary_books_are_computed_in_the_lane_and_equal_python(book: tuple, bps: int) -> None:
    names = ["microprice", f"depth{bps}"]
    lane = lane_row(loaded(*book), names)
    assert lane is not None
    assert same_bits(lane, python_row(loaded(*book), names))


@settings(max_examples=400, deadline=None)
@given(books(ordinary=False), bands)
def test_any_book_the_lane_computes_equals_python(book: tuple, bps: int) -> None:
    names = ["microprice", f"depth{bps}"]
    lane = lane_row(loaded(*book), names)
    if lane is not None:  # refused: Python computes the row (checked end to end in tests/features)
        assert same_bits(lane, python_row(loaded(*book), names))


def test_empty_sides_and_one_level() -> None:
    one_bid, one_ask = [(99 * SCALE, 3 * SCALE)], [(101 * SCALE, SCALE)]
    names = ["microprice", "depth10", "depth300"]
    for bids, asks in [([], []), (one_bid, []), ([], one_ask)]:
        book = loaded(64, bids, asks)
        assert lane_row(book, names) == [None, None, None] == python_row(book, names)
    # One level a side: microprice leans toward the thinner ask, 10 bps of mid 100 holds neither level
    # (each is 100 bps away), 300 bps both.
    book = loaded(64, one_bid, one_ask)
    assert lane_row(book, names) == [(99 * 1 + 101 * 3) / 4, 0.0, 99 * 3 + 101 * 1] == python_row(book, names)


def test_the_band_edge_is_kept_exactly_as_python_keeps_it() -> None:
    # mid 100 (bid 99.99, ask 100.01): 2 bps of it is 0.02, so the levels at 99.98 and 100.02 sit on the edge
    # (kept: Python keeps <=), those at 99.97 and 100.03 just past it.
    p = SCALE // 100
    bids = [(9999 * p, SCALE), (9998 * p, 2 * SCALE), (9997 * p, 4 * SCALE)]
    asks = [(10001 * p, SCALE), (10002 * p, 8 * SCALE), (10003 * p, 16 * SCALE)]
    book = loaded(4, bids, asks)
    expected = (99.99 * 1 + 99.98 * 2 + 100.01 * 1 + 100.02 * 8)
    assert lane_row(book, ["depth2"]) == python_row(book, ["depth2"])
    assert math.isclose(python_row(book, ["depth2"])[0] or 0, expected)
    assert lane_row(book, ["depth1"]) == python_row(book, ["depth1"]) == [99.99 + 100.01]


def test_products_that_would_wrap_an_int64_are_refused() -> None:
    # best bid 100, ask 100.01 at 0.01 ticks; quantities of 5e10 units: key * qty ~ 5e22 book units.
    huge = 5 * 10**10 * SCALE
    book = loaded(64, [(100 * SCALE, huge)], [(10001 * SCALE // 100, huge)])
    assert lane_row(book, ["microprice"]) is None
    assert lane_row(book, ["depth10"]) is None
    assert lane_row(book, ["mid"]) is not None  # the other twins still compute
    assert python_row(book, ["microprice"])[0] == (100 + 100.01) / 2


def test_a_ratio_past_a_double_is_reduced_before_it_is_refused() -> None:
    # Bid 100, ask 100.01 (unit 0.01: keys 10000, 10001), both within 10 bps. depth10 = sum(key * qty) * 10**6
    # / SCALE**2: with both quantities 5**20 the sum, 20001 * 5**20, is odd and past 2**53, but over 10**10 it
    # reduces to 20001 * 5**10 / 2**10, which doubles hold: the lane computes it. One more unit of the ask
    # leaves a reduced numerator past 2**53 (odd part too): refused.
    q = 5**20
    for ask_qty, computed in [(q, True), (q + 1, False)]:
        book = loaded(64, [(100 * SCALE, q)], [(10001 * SCALE // 100, ask_qty)])
        assert book._unit == SCALE // 100
        total = 10000 * q + 10001 * ask_qty
        assert total > 2**53 and total % 2 == 1 or not computed
        row = lane_row(book, ["depth10"])
        assert (row is not None) == computed
        if row is not None:
            assert same_bits(row, python_row(book, ["depth10"]))


def test_a_level_whose_notional_wraps_an_int64_to_a_small_number_is_refused() -> None:
    # Unit 1 (prices ending in 2). The level at 2**33 holds 2**31: key * qty = 2**64, which an int64 wraps
    # to 0 -- a plausible, wrong total. In the window (16384 slots) or below it (4 slots: 50 keys under the
    # best), the lane must refuse; Python's exact sum is right.
    bids = [(2**33 + 50, 1), (2**33, 2**31)]
    asks = [(2**33 + 60, 1)]
    for window in (4, 1 << 14):
        book = loaded(window, bids, asks)
        assert book._unit == 1
        assert lane_row(book, ["depth10"]) is None
        assert python_row(book, ["depth10"]) == [(2 * 2**33 + 110 + 2**64) / SCALE**2]
