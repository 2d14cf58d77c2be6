"""A book over sorted integer arrays with a compiled update kernel -- the fast path's book.

Strategy: each side keeps ascending int64 *keys* with the best level at the END (bids: key =
price; asks: key = -price), so the common update -- a level near the top -- shifts only the few
elements after it, and an insert far from the top is a binary search plus one ``memmove``. No
dense price grid: memory is O(levels), whatever the tick size or a stray level's distance from
mid (BTC at 0.01 ticks, SHIB at 1e-8). Capacity doubles as needed. Numba compiles the kernel
when installed (extra ``fast``); without it the same code runs as plain Python, slower but
identical. Same interface as ``Book`` (``book.protocol.BookLike``/``BookView``), but levels arrive
as integer arrays already at ``BOOK_SCALE`` (``ArrayLevels``, from ``storage.columnar``).

The compiled lane lives here too: ``_follow_chain`` (apply chain-continuing diffs up to an interval's
end) and ``_sample_chain`` (the same, closing intervals and sampling the ``book.kernels`` features
on the way, for ``replayer.replay``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, TypeAlias

import numpy as np

from acts.book.book import SCALE
from acts.book.kernels import EXACT_LIMIT, Kernel
from acts.core.events import EventKind, Side

__all__ = ["ArrayBook", "ArrayBookView", "ArrayLevels", "EventColumns", "HAVE_NUMBA", "LANE_PENDING", "LaneRows",
           "MISMATCH", "MISMATCH_ROW", "NO_MISMATCH"]

#: One side's levels for ``ArrayBook``: ``(prices, quantities)``, int64 arrays at ``BOOK_SCALE``.
#: ``storage.columnar`` spells the same type (``storage`` and ``book`` share a floor and never import
#: each other).
ArrayLevels: TypeAlias = tuple[np.ndarray, np.ndarray]


class EventColumns(Protocol):
    """What the compiled lane reads: decoded events as columns (``acts.storage.columnar.RowGroup``).

    Event ``i`` owns level rows ``starts[i]:ends[i]``; a row's side is a ``Side`` (0 bid, 1 ask) or -1 (none);
    its price at the book scale is ``price[r] * price_factor`` (likewise ``qty``)."""

    starts: np.ndarray
    ends: np.ndarray
    kinds: np.ndarray
    times: np.ndarray
    recv: np.ndarray
    firsts: np.ndarray
    finals: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    price_factor: int
    qty_factor: int

#: ``Side`` values as plain ints: the compiled kernel reads them as constants.
_BID, _ASK = int(Side.BID), int(Side.ASK)
#: Event kinds the lane tells apart (``_NO_KIND``: no kind is skipped).
_DEPTH, _TRADE, _TICKER, _NO_KIND = int(EventKind.DEPTH), int(EventKind.TRADE), int(EventKind.BOOK_TICKER), -1

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    HAVE_NUMBA = False


def _numba_njit(**kwargs: Any) -> Any:
    """``numba.njit(**kwargs)``; without numba, the identity (the kernels run as plain Python)."""
    return numba.njit(**kwargs) if HAVE_NUMBA else (lambda fn: fn)


def _probe() -> int:  # pragma: no cover - compiled
    return 0


def _cache_usable() -> bool:
    """Whether numba can cache this file's kernels; if not, says so once (a warning) and compiles without.

    Numba refuses ``cache=True`` outright (a RuntimeError at decoration, i.e. at import) when no
    cache folder it knows is writable -- a read-only install, a locked-down home. A cache only
    saves compile time, so its absence must not stop a replay. Probed once, with a function of
    this file: numba picks the cache folder per source file.
    """
    if not HAVE_NUMBA:
        return False
    try:
        _numba_njit(cache=True)(_probe)
    except (RuntimeError, OSError) as exc:
        logging.getLogger("acts").warning(
            "numba cannot write its cache (%s); compiling without a cache, so each run compiles again. "
            "Set NUMBA_CACHE_DIR to a writable folder to keep one.", exc)
        return False
    return True


#: Whether the kernels below are cached on disk (see ``_cache_usable``).
CACHE = _cache_usable()


def njit(*, cache: bool = False, nogil: bool = False, inline: bool = False) -> Any:
    """numba's ``njit``, with ``cache`` only where numba can write one; the identity without numba.
    ``inline``: compiled into each compiled caller, so that no call passes arrays (numba counts
    references to each array passed: a per-event helper cost ~1 ns per level update)."""
    return _numba_njit(cache=cache and CACHE, nogil=nogil, inline="always" if inline else "never")


# Strategy: a price-indexed ladder per side, the sorted arrays behind it.
# A side's levels are *keys* in book-wide price units (bids: key = price / unit; asks: key = -price / unit),
# so that the best level is always the largest key. The levels near the best live in a window: a dense
# array of quantities (0: no level), slot = key - base, whose best slot is tracked -- setting a level is
# one store, removing the best a short walk down to the next one. Levels below the window (far from the
# top) live in sorted arrays (``_set_level``), whose top end is next to the window. No level is ever above
# the window: a better price slides it up (its lowest slots' levels are appended to the sorted arrays, in
# order), and a best that falls into the window's lowest quarter slides it down (the sorted arrays' top
# levels move back in). Both moves keep the best at three quarters of the window. Exact: only integers,
# and every level is in one place. ``unit`` is the largest power of ten dividing every price seen since
# the last clear (a row group's factor, normally the symbol's tick or finer); a finer price re-lays the
# book. Memory stays O(levels + window), whatever the tick or a stray level's distance from the top.

#: Slots in a side's window (8 bytes each): the levels within this many units of the best are O(1).
WINDOW = 1 << 14
#: A side's state, one small int64 array: window base key, best slot (-1: window empty), levels in
#: the window, levels in the sorted arrays below it.
_BASE, _BEST, _IN_WINDOW, _BELOW = 0, 1, 2, 3

#: How far ``_set_level`` walks back one level at a time before it gallops: the walk costs one
#: well-predicted branch a level, a binary search an unpredictable one per halving.
_WALK = 16


@njit(cache=True, nogil=True)
def _set_level(keys: np.ndarray, qtys: np.ndarray, count: int, key: int, qty: int) -> int:  # pragma: no cover
    """Set (``qty`` > 0) or remove (``qty`` == 0) the level ``key`` of ascending sorted arrays; returns
    the new count."""
    # The levels set here sit just below the window, at the arrays' end: walk back from there, then
    # (far down) gallop to bracket the key and binary-search the bracket.
    lo = count
    stop = max(count - _WALK, 0)
    while lo > stop and keys[lo - 1] >= key:
        lo -= 1
    if lo == stop and lo > 0 and keys[lo - 1] >= key:
        hi, step = lo, 1
        while lo > 0 and keys[lo - 1] >= key:
            hi = lo
            lo = max(lo - step, 0)
            step *= 2
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] < key:
                lo = mid + 1
            else:
                hi = mid
    found = lo < count and keys[lo] == key
    if qty == 0:
        if found:
            for j in range(lo, count - 1):  # explicit loops: no temporary arrays
                keys[j] = keys[j + 1]
                qtys[j] = qtys[j + 1]
            count -= 1
    elif found:
        qtys[lo] = qty
    else:
        for j in range(count, lo, -1):
            keys[j] = keys[j - 1]
            qtys[j] = qtys[j - 1]
        keys[lo] = key
        qtys[lo] = qty
        count += 1
    return count


@njit(cache=True, nogil=True)
def _pull(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray) -> None:  # pragma: no cover
    """Move the sorted arrays' levels at or above the window base into the window."""
    base, below = st[_BASE], st[_BELOW]
    while below > 0 and keys[below - 1] >= base:
        below -= 1
        slot = keys[below] - base
        win[slot] = qtys[below]
        st[_IN_WINDOW] += 1
        if slot > st[_BEST]:
            st[_BEST] = slot
    st[_BELOW] = below


@njit(cache=True, nogil=True)
def _recenter(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray,
              top: int) -> None:  # pragma: no cover - compiled
    """An empty window placed with ``top`` (no level above it) at three quarters, filled from below."""
    w = win.shape[0]
    st[_BASE] = top - (w - w // 4)
    st[_BEST] = -1
    _pull(st, win, keys, qtys)


@njit(cache=True, nogil=True)
def _slide_up(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray,
              delta: int) -> None:  # pragma: no cover - compiled
    """Move the window up by ``delta`` slots; the levels of its lowest ``delta`` slots go to the top
    end of the sorted arrays (in order: they are above every level there)."""
    w = win.shape[0]
    base, below = st[_BASE], st[_BELOW]
    for j in range(min(delta, w)):
        if win[j] != 0:
            keys[below] = base + j
            qtys[below] = win[j]
            below += 1
            st[_IN_WINDOW] -= 1
            win[j] = 0
    if delta < w:
        for j in range(w - delta):  # forward: each slot is read before it is written
            win[j] = win[j + delta]
        win[w - delta :] = 0
    st[_BELOW] = below
    st[_BASE] = base + delta
    st[_BEST] = st[_BEST] - delta if st[_IN_WINDOW] else -1


@njit(cache=True, nogil=True)
def _slide_down(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray) -> None:  # pragma: no cover
    """Move the window down so that its best (in its lowest quarter) sits at three quarters again."""
    w = win.shape[0]
    delta = (w - w // 4) - st[_BEST]
    for j in range(w - 1, delta - 1, -1):  # backward: each slot is read before it is written
        win[j] = win[j - delta]
    win[:delta] = 0
    st[_BASE] -= delta
    st[_BEST] += delta
    _pull(st, win, keys, qtys)


@njit(cache=True, nogil=True)
def _ladder_set(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray, key: int,
                qty: int) -> None:  # pragma: no cover - compiled
    """Set (``qty`` > 0) or remove (``qty`` == 0) the level ``key`` of one side."""
    w = win.shape[0]
    if st[_IN_WINDOW] == 0 and qty != 0:  # nothing to keep in place: put the window around the new top
        top = key
        if st[_BELOW] > 0 and keys[st[_BELOW] - 1] > top:
            top = keys[st[_BELOW] - 1]
        _recenter(st, win, keys, qtys, top)
    slot = key - st[_BASE]
    if slot >= w:
        if qty == 0:
            return  # no level above the window: nothing to remove
        _slide_up(st, win, keys, qtys, slot - (w - w // 4))
        slot = w - w // 4
    elif slot < 0:
        st[_BELOW] = _set_level(keys, qtys, st[_BELOW], key, qty)
        return
    # Branch-light: whether a level is set, added or removed is data-dependent, so counts and the
    # best move by arithmetic and selects; only removing the best (rare) branches.
    old = win[slot]
    win[slot] = qty
    best = st[_BEST]
    st[_IN_WINDOW] += (qty != 0) - (old != 0)
    st[_BEST] = slot if qty != 0 and slot > best else best
    if slot == best and qty == 0:
        best = slot - 1
        while best >= 0 and win[best] == 0:
            best -= 1
        st[_BEST] = best
        if best < 0:
            if st[_BELOW] > 0:
                _recenter(st, win, keys, qtys, keys[st[_BELOW] - 1])
        elif best < w // 4:
            _slide_down(st, win, keys, qtys)


@njit(cache=True, nogil=True, inline=True)
def _best_key(st: np.ndarray, keys: np.ndarray) -> int:  # pragma: no cover - compiled
    """The side's best key; only meaningful when it has a level."""
    if st[_IN_WINDOW]:
        return st[_BASE] + st[_BEST]
    return keys[st[_BELOW] - 1]


@njit(cache=True, nogil=True, inline=True)
def _best_qty(st: np.ndarray, win: np.ndarray, qtys: np.ndarray) -> int:  # pragma: no cover - compiled
    """The side's best level's quantity; only meaningful when it has a level."""
    if st[_IN_WINDOW]:
        return win[st[_BEST]]
    return qtys[st[_BELOW] - 1]


@njit(cache=True, nogil=True, inline=True)
def _crossed(bid_st: np.ndarray, bid_keys: np.ndarray, ask_st: np.ndarray,
             ask_keys: np.ndarray) -> bool:  # pragma: no cover - compiled
    if not (bid_st[_IN_WINDOW] + bid_st[_BELOW]) or not (ask_st[_IN_WINDOW] + ask_st[_BELOW]):
        return False
    return _best_key(bid_st, bid_keys) >= -_best_key(ask_st, ask_keys)


@njit(cache=True, nogil=True)
def _apply_side(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray, upd_keys: np.ndarray,
                upd_qtys: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in range(upd_keys.shape[0]):
        _ladder_set(st, win, keys, qtys, upd_keys[i], upd_qtys[i])


@njit(cache=True, nogil=True, inline=True)
def _apply_rows(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
                ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray,
                side: np.ndarray, price: np.ndarray, qty: np.ndarray, ratio: int, qty_factor: int, start: int,
                end: int) -> bool:  # pragma: no cover - compiled
    """Apply level rows ``start:end`` (a row's key: its price read times ``ratio``); crossed after them?"""
    # The common case -- a level inside a non-empty window, not removing the best -- is written out
    # here once per side, without calls or array variables: in numba each of those costs reference
    # counts on the arrays, which made a level update 4-5x slower. Everything else: ``_ladder_set``.
    w = bid_win.shape[0]
    for r in range(start, end):
        q = qty[r] * qty_factor
        if side[r] == _BID:
            key = price[r] * ratio
            slot = key - bid_st[_BASE]
            best = bid_st[_BEST]
            if slot < 0 or slot >= w or bid_st[_IN_WINDOW] == 0 or (slot == best and q == 0):
                _ladder_set(bid_st, bid_win, bid_keys, bid_qtys, key, q)
            else:
                old = bid_win[slot]
                bid_win[slot] = q
                bid_st[_IN_WINDOW] += (q != 0) - (old != 0)
                bid_st[_BEST] = slot if q != 0 and slot > best else best
        elif side[r] == _ASK:
            key = -price[r] * ratio
            slot = key - ask_st[_BASE]
            best = ask_st[_BEST]
            if slot < 0 or slot >= w or ask_st[_IN_WINDOW] == 0 or (slot == best and q == 0):
                _ladder_set(ask_st, ask_win, ask_keys, ask_qtys, key, q)
            else:
                old = ask_win[slot]
                ask_win[slot] = q
                ask_st[_IN_WINDOW] += (q != 0) - (old != 0)
                ask_st[_BEST] = slot if q != 0 and slot > best else best
    return _crossed(bid_st, bid_keys, ask_st, ask_keys)


#: What the lane does with a bookTicker at or before the position (``_ticker_step``): rule 8 drops it
#: unchecked, it checked equal, or the sequencer must see it (it does not match: ``BboMismatch``).
_TICKER_DROPPED, _TICKER_CHECKED, _TICKER_STOP = 0, 1, 2
#: How a lane run ended with respect to the bookTickers that waited for its last diff (``ArrayBook.ticker_mismatch``):
#: none mismatched; one did after a diff that closed no row; one did after a diff that closed the row the lane
#: left in its output slot ``rows`` (not counted in ``rows``: the sampler's rule makes it invalid).
NO_MISMATCH, MISMATCH, MISMATCH_ROW = 0, 1, 2
#: bookTickers the lane keeps waiting for diffs at once; one more stops it. Far below
#: ``sequencer.MAX_PENDING_TICKERS``: handed to the sequencer, none of them is dropped there for room.
LANE_PENDING = 512


@njit(cache=True, nogil=True, inline=True)
def _side_matches(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray, key: int,
                  qty: int) -> bool:  # pragma: no cover - compiled
    """Rule 8's check of one side: the best level is ``(key, qty)``; a ticker quantity of zero (an empty
    ticker side) matches only an empty side."""
    if not (st[_IN_WINDOW] + st[_BELOW]):
        return qty == 0
    return qty != 0 and _best_key(st, keys) == key and _best_qty(st, win, qtys) == qty


@njit(cache=True, nogil=True, inline=True)
def _ticker_matches(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
                    ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray,
                    price: np.ndarray, qty: np.ndarray, ratio: int, qty_factor: int, start: int,
                    end: int) -> bool:  # pragma: no cover - compiled
    """The bookTicker whose rows are ``start:end`` (best bid, then best ask) equals the book's best levels
    (keys as ``_apply_rows`` makes them: exact, every price of the group is a multiple of the unit)."""
    return (end - start == 2
            and _side_matches(bid_st, bid_win, bid_keys, bid_qtys, price[start] * ratio, qty[start] * qty_factor)
            and _side_matches(ask_st, ask_win, ask_keys, ask_qtys, -price[start + 1] * ratio,
                              qty[start + 1] * qty_factor))


@njit(cache=True, nogil=True, inline=True)
def _ticker_step(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
                 ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray,
                 price: np.ndarray, qty: np.ndarray, ratio: int, qty_factor: int, start: int, end: int, update_id: int,
                 position: int) -> int:  # pragma: no cover - compiled
    """``Sequencer.apply_ticker`` on a LIVE book for a bookTicker with ``u`` <= the position (rows
    ``start:end``): before it, dropped unchecked; at it, compared with the best levels."""
    if update_id < position:
        return _TICKER_DROPPED
    if _ticker_matches(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, price, qty, ratio,
                       qty_factor, start, end):
        return _TICKER_CHECKED
    return _TICKER_STOP  # a mismatch: the sequencer invalidates the book (``BboMismatch``)


@njit(cache=True, nogil=True, inline=True)
def _settle_waiting(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
                    ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray,
                    price: np.ndarray, qty: np.ndarray, ratio: int, qty_factor: int, starts: np.ndarray,
                    ends: np.ndarray, finals: np.ndarray, waiting: np.ndarray, count: int,
                    final: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """``Sequencer._settle_tickers`` after the diff ending at ``final`` was applied, for the bookTickers waiting
    in rows ``waiting[:count]`` (in arrival order): those at ``final`` are compared, those before it dropped,
    the others kept (moved to the front, in order). Returns ``(kept, -1 none was due / 1 all due equal: one
    BboChecked, whatever their number / 0 one due differs: BboMismatch)``."""
    kept, due = 0, 0
    for w in range(count):
        k = waiting[w]
        if finals[k] > final:
            waiting[kept] = k
            kept += 1
        elif finals[k] == final:
            if not _ticker_matches(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, price,
                                   qty, ratio, qty_factor, starts[k], ends[k]):
                return 0, 0  # the sequencer invalidates the book: the rest are dropped with it
            due += 1
    return kept, (1 if due else -1)


@njit(cache=True, nogil=True)
def _follow_chain(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
                  ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray,
                  side: np.ndarray, price: np.ndarray, qty: np.ndarray, ratio: int, qty_factor: int,
                  starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray, times: np.ndarray, firsts: np.ndarray,
                  finals: np.ndarray, i: int, position: int, time_limit: int, depth_kind: int, skip_kind: int,
                  ticker_kind: int, waiting: np.ndarray,
                  ) -> tuple[int, int, int, bool, int, int, int]:  # pragma: no cover - compiled
    """The sequencer's LIVE transitions, compiled: from event ``i``, apply diffs that continue the
    chain (``U == position + 1``) and skip those already covered (``u <= position``), stopping at
    the first event that is not a diff, breaks the chain, or has ``E >= time_limit`` (it closes an
    interval), and just after a diff that leaves the book crossed. Events of ``skip_kind`` (trades,
    when no feature reads them; -1: none) are stepped over as no-ops. bookTickers of ``ticker_kind``
    (-1: none, they stop the lane) get the sequencer's rule 8 (see ``ArrayBook.follow_chain``); up to
    ``len(waiting)`` may wait for a diff, their rows kept in ``waiting``. Returns ``(next i, position, E
    of the last applied diff or -1, crossed, rule 8 checks, ticker mismatch, tickers still waiting)``.
    """
    last_time = -1
    checked = 0
    # Strategy: bookTickers waiting for a diff are their rows in ``waiting[:pending]``, in arrival order, as
    # the sequencer's pending deque would hold them; whichever are left when the lane stops, the caller
    # hands to the sequencer (in order: the same deque), before the event the lane stopped at.
    pending = 0
    n = starts.shape[0]
    while i < n:
        kind = kinds[i]
        if kind != depth_kind:
            if kind == skip_kind:
                i += 1  # a trade changes no book and closes no interval
                continue
            if kind != ticker_kind:
                break
            if finals[i] > position:  # it waits for the diff that reaches its u
                if pending == waiting.shape[0]:
                    break
                waiting[pending] = i
                pending += 1
            else:
                step = _ticker_step(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, price,
                                    qty, ratio, qty_factor, starts[i], ends[i], finals[i], position)
                if step == _TICKER_STOP:
                    break
                checked += step == _TICKER_CHECKED
            i += 1
            continue
        if times[i] >= time_limit:
            break
        final = finals[i]
        if final > position:
            if firsts[i] != position + 1:
                break
            crossed = _apply_rows(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, side,
                                  price, qty, ratio, qty_factor, starts[i], ends[i])
            position = final
            last_time = times[i]
            if crossed:  # the sequencer's Crossed invalidates the book: waiting tickers are dropped unchecked
                return i + 1, position, last_time, True, checked, NO_MISMATCH, 0
            if pending:
                pending, settled = _settle_waiting(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys,
                                                   ask_qtys, price, qty, ratio, qty_factor, starts, ends, finals,
                                                   waiting, pending, final)
                if settled == 0:
                    return i + 1, position, last_time, False, checked, MISMATCH, 0
                checked += settled == 1
        i += 1
    return i, position, last_time, False, checked, NO_MISMATCH, pending


_SCALE_F = float(SCALE)
#: ``Kernel`` values as plain ints, constants to the compiled code.
_MID, _BEST_BID, _BEST_ASK, _SPREAD, _BIAS, _BID_AMOUNT = (int(Kernel.MID), int(Kernel.BEST_BID), int(Kernel.BEST_ASK),
                                                           int(Kernel.SPREAD), int(Kernel.BIAS), int(Kernel.BID_AMOUNT))
_MICROPRICE, _DEPTH_BAND = int(Kernel.MICROPRICE), int(Kernel.DEPTH)
#: The largest int64: a product of two non-negative ints is checked against it before it is formed.
_INT64_MAX = 2**63 - 1
#: ``_band_notional`` keeps each ``key * qty`` and the running total at most this: their sum never wraps.
_NOTIONAL_CAP = 2**61
#: ``SCALE`` squared: ``depth`` divides the summed ``price * qty`` (both at the book scale) by it.
_SCALE2 = SCALE * SCALE


@njit(cache=True, nogil=True)
def _top_sum(st: np.ndarray, win: np.ndarray, qtys: np.ndarray, levels: int) -> int:  # pragma: no cover - compiled
    """Summed quantity of the best ``levels`` levels; -1 past ``EXACT_LIMIT``."""
    total = 0
    left = levels
    slot = st[_BEST]
    while left > 0 and slot >= 0:  # the window, best first, skipping empty slots
        q = win[slot]
        if q != 0:
            if q > EXACT_LIMIT:  # checked before adding: no int64 wrap-around
                return -1
            total += q
            if total > EXACT_LIMIT:
                return -1
            left -= 1
        slot -= 1
    j = st[_BELOW] - 1
    while left > 0 and j >= 0:  # then the sorted arrays, from their top
        if qtys[j] > EXACT_LIMIT:
            return -1
        total += qtys[j]
        if total > EXACT_LIMIT:
            return -1
        left -= 1
        j -= 1
    return total


@njit(cache=True, nogil=True, inline=True)
def _mul(a: int, b: int) -> int:  # pragma: no cover - compiled
    """``a * b`` for non-negative ints; -1 where it would wrap an int64."""
    if a != 0 and b > _INT64_MAX // a:
        return -1
    return a * b


@njit(cache=True, nogil=True, inline=True)
def _fits_double(x: int) -> bool:  # pragma: no cover - compiled
    """Whether the non-negative int ``x`` converts to float64 exactly: odd part below 2**53."""
    while x > EXACT_LIMIT and x & 1 == 0:
        x >>= 1
    return x <= EXACT_LIMIT


@njit(cache=True, nogil=True)
def _quotient(n: int, d: int) -> tuple[bool, float]:  # pragma: no cover - compiled
    """``n / d`` (non-negative ints, ``d`` > 0) correctly rounded, as Python's ``int / int``: one float
    division of exact operands is. Reduced to lowest terms first when they do not fit a double (the
    ratio, hence its rounding, is the same); ``(False, 0.0)`` when even those do not."""
    if not (_fits_double(n) and _fits_double(d)):
        a, b = n, d
        while b:  # Euclid: the gcd
            a, b = b, a % b
        n //= a
        d //= a
        if not (_fits_double(n) and _fits_double(d)):
            return False, 0.0
    return True, float(n) / float(d)


@njit(cache=True, nogil=True)
def _microprice(bid_key: int, bid_qty: int, ask_key: int, ask_qty: int,
                unit: int) -> tuple[bool, float]:  # pragma: no cover - compiled
    """``features.builtin.microprice`` from the best keys (``ask_key`` as a positive price / unit):
    ``(bid * ask_qty + ask * bid_qty) / ((bid_qty + ask_qty) * SCALE)``, with prices = key * unit and
    the common power of ten of ``unit`` and ``SCALE`` cancelled. ``(False, 0.0)``: an int64 would wrap, or
    the ratio fits no double (``_quotient``)."""
    a = _mul(bid_key, ask_qty)
    b = _mul(ask_key, bid_qty)
    if a < 0 or b < 0 or a > _INT64_MAX - b or bid_qty > _INT64_MAX - ask_qty:
        return False, 0.0
    n, d = a + b, bid_qty + ask_qty
    if unit >= SCALE:
        n = _mul(n, unit // SCALE)
    else:
        d = _mul(d, SCALE // unit)
    if n < 0 or d < 0:
        return False, 0.0
    return _quotient(n, d)


@njit(cache=True, nogil=True)
def _band_notional(st: np.ndarray, win: np.ndarray, keys: np.ndarray, qtys: np.ndarray, sign: int, edge: int,
                   top: int) -> int:  # pragma: no cover - compiled
    """Sum of ``|key| * qty`` over a side's levels from its best down to key ``edge`` (inclusive; keys
    signed as stored, so every kept key is >= ``edge``), whose ``|key|`` are at most ``top``; -1 when
    that could wrap an int64 (checked against ``_NOTIONAL_CAP``)."""
    max_qty = _NOTIONAL_CAP // max(top, 1)  # then each |key| * qty <= the cap
    total = 0
    base = st[_BASE]
    slot = st[_BEST]
    while slot >= 0 and base + slot >= edge:  # the window, best first (an empty slot holds 0)
        q = win[slot]
        if q > max_qty:
            return -1
        total += sign * (base + slot) * q
        if total > _NOTIONAL_CAP:
            return -1
        slot -= 1
    if slot >= 0:
        return total  # the band ends inside the window: no sorted level is in it
    j = st[_BELOW] - 1
    while j >= 0 and keys[j] >= edge:  # then the sorted arrays, from their top
        if qtys[j] > max_qty:
            return -1
        total += sign * keys[j] * qtys[j]
        if total > _NOTIONAL_CAP:
            return -1
        j -= 1
    return total


#: Keys at most this (prices below ~1.15e18 book units) keep ``_depth``'s band arithmetic inside int64.
_DEPTH_KEY_LIMIT = 2**60


@njit(cache=True, nogil=True)
def _depth(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
           ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray, bid_key: int,
           ask_key: int, unit: int, bps: int) -> tuple[bool, float]:  # pragma: no cover - compiled
    """``features.builtin.depth(bps)`` from the best keys (``ask_key`` as a positive price / unit).

    Python keeps a bid while ``(mid2 - 2 * price) * 10000 <= bps * mid2`` (asks: ``2 * price - mid2``),
    ``mid2`` = bid + ask. Dividing by ``unit`` changes no comparison, and for an integer ``x``,
    ``x * 10000 <= y`` exactly when ``x <= y // 10000``: so a bid key is kept from ``ceil((m2 - lim) / 2)``
    up and an ask key up to ``floor((m2 + lim) / 2)``, with ``m2`` the keys' sum and ``lim = bps * m2 //
    10000`` -- the same levels, in integers that cannot wrap below ``_DEPTH_KEY_LIMIT``."""
    if bid_key > _DEPTH_KEY_LIMIT or ask_key > _DEPTH_KEY_LIMIT or bps < 0:
        return False, 0.0
    m2 = bid_key + ask_key
    spread = _mul(bps, m2)
    if spread < 0:
        return False, 0.0
    lim = spread // 10_000
    bid_edge = (m2 - lim + 1) // 2
    ask_top = (m2 + lim) // 2
    b = _band_notional(bid_st, bid_win, bid_keys, bid_qtys, 1, bid_edge, max(bid_key, bid_edge))
    a = _band_notional(ask_st, ask_win, ask_keys, ask_qtys, -1, -ask_top, max(ask_key, ask_top))
    if b < 0 or a < 0:
        return False, 0.0
    # sum(price * qty) / SCALE**2 = (b + a) * unit / SCALE**2, the common power of ten cancelled.
    if unit >= _SCALE2:
        n, d = _mul(a + b, unit // _SCALE2), 1
    else:
        n, d = a + b, _SCALE2 // unit
    if n < 0:
        return False, 0.0
    return _quotient(n, d)


@njit(cache=True, nogil=True)
def _features(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
              ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray, unit: int,
              codes: np.ndarray, params: np.ndarray, out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """The ``kernels.Kernel`` features of the book into ``out`` (NaN: undefined, Python's None); False when
    one of them cannot be computed exactly here (then ``out`` is garbage and Python computes the row)."""
    nan = np.nan
    bid_count = bid_st[_IN_WINDOW] + bid_st[_BELOW]
    ask_count = ask_st[_IN_WINDOW] + ask_st[_BELOW]
    # Prices from keys: key * unit never wraps (every price fits int64 at the book scale).
    bid_key = _best_key(bid_st, bid_keys) if bid_count else 0
    ask_key = -_best_key(ask_st, ask_keys) if ask_count else 0  # a positive price / unit
    bid, ask = bid_key * unit, ask_key * unit
    both = bid_count > 0 and ask_count > 0
    for f in range(codes.shape[0]):
        code = codes[f]
        if code == _MID:
            if not both:
                out[f] = nan
            elif bid + ask > EXACT_LIMIT:
                return False
            else:
                out[f] = float(bid + ask) / (2 * _SCALE_F)
        elif code == _BEST_BID or code == _BEST_ASK:
            count, price = (bid_count, bid) if code == _BEST_BID else (ask_count, ask)
            if not count:
                out[f] = nan
            elif price > EXACT_LIMIT:
                return False
            else:
                out[f] = float(price) / _SCALE_F
        elif code == _SPREAD:
            if not both:
                out[f] = nan
            elif ask > EXACT_LIMIT or bid > EXACT_LIMIT:
                return False
            else:
                out[f] = float(ask - bid) / _SCALE_F
        elif code == _MICROPRICE or code == _DEPTH_BAND:
            if not both:
                out[f] = nan
                continue
            if code == _MICROPRICE:
                ok, value = _microprice(bid_key, _best_qty(bid_st, bid_win, bid_qtys), ask_key,
                                        _best_qty(ask_st, ask_win, ask_qtys), unit)
            else:
                ok, value = _depth(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, bid_key,
                                   ask_key, unit, params[f])
            if not ok:
                return False
            out[f] = value
        else:  # a family over the top N levels
            b = _top_sum(bid_st, bid_win, bid_qtys, params[f])
            a = _top_sum(ask_st, ask_win, ask_qtys, params[f])
            if b < 0 or a < 0 or a + b > EXACT_LIMIT:
                return False
            if code == _BIAS:
                out[f] = nan if a + b == 0 else float(b - a) / float(b + a)
            elif code == _BID_AMOUNT:
                out[f] = float(b) / _SCALE_F if bid_count else nan
            else:  # Kernel.ASK_AMOUNT
                out[f] = float(a) / _SCALE_F if ask_count else nan
    return True


@njit(cache=True, nogil=True)
def _sample_chain(bid_st: np.ndarray, bid_win: np.ndarray, bid_keys: np.ndarray, bid_qtys: np.ndarray,
                  ask_st: np.ndarray, ask_win: np.ndarray, ask_keys: np.ndarray, ask_qtys: np.ndarray, unit: int,
                  side: np.ndarray, price: np.ndarray, qty: np.ndarray, ratio: int, qty_factor: int,
                  starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray, times: np.ndarray, firsts: np.ndarray,
                  finals: np.ndarray, recv: np.ndarray, i: int, position: int, last_time: int, open_start: int,
                  interval: int, depth_kind: int, skip_kind: int, ticker_kind: int, waiting: np.ndarray,
                  codes: np.ndarray, params: np.ndarray, out_time: np.ndarray, out_stop: np.ndarray,
                  out_last: np.ndarray, out_recv: np.ndarray, out_values: np.ndarray,
                  ) -> tuple[int, int, int, int, int, bool, int, int, int]:  # pragma: no cover - compiled
    """``_follow_chain`` that also closes intervals itself: a diff that continues the chain (or is
    already covered) and whose ``E`` is past the open interval (every diff, with ``interval`` 0:
    event mode) closes it -- the row is sampled first, into ``out_*`` at the next free index, then
    the diff is applied, as ``MinuteSampler.apply`` does. Such a row is valid: the book was LIVE and
    the closing diff kept the chain -- unless a bookTicker waiting for that diff then mismatches
    (``MISMATCH_ROW``: the row is left in slot ``rows``, uncounted). Stops where ``_follow_chain`` stops
    (and steps over ``skip_kind`` and audits ``ticker_kind`` alike), when the output is full, or before a
    closing diff whose features cannot be computed exactly here. A bookTicker closes no interval
    (``MinuteSampler.apply``). Returns ``(next i, position, last E or -1, open interval start, rows,
    crossed, rule 8 checks, ticker mismatch, tickers still waiting)``.
    """
    n = starts.shape[0]
    rows = 0
    checked = 0
    pending = 0  # waiting bookTickers: see ``_follow_chain``
    capacity = out_time.shape[0]
    limit = open_start + interval
    while i < n:
        kind = kinds[i]
        if kind != depth_kind:
            if kind == skip_kind:
                i += 1
                continue
            if kind != ticker_kind:
                break
            if finals[i] > position:
                if pending == waiting.shape[0]:
                    break
                waiting[pending] = i
                pending += 1
            else:
                step = _ticker_step(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, price,
                                    qty, ratio, qty_factor, starts[i], ends[i], finals[i], position)
                if step == _TICKER_STOP:
                    break
                checked += step == _TICKER_CHECKED
            i += 1
            continue
        final = finals[i]
        ahead = final > position
        if ahead and firsts[i] != position + 1:
            break
        closes = interval == 0 or times[i] >= limit
        if closes:
            if rows == capacity:
                break
            if not _features(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, unit, codes,
                             params, out_values[rows]):
                break
            out_time[rows] = open_start
            out_last[rows] = last_time
            out_recv[rows] = recv[i]
            open_start = times[i] if interval == 0 else times[i] - times[i] % interval
            out_stop[rows] = open_start
            rows += 1
            limit = open_start + interval
        if ahead:
            crossed = _apply_rows(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys, ask_qtys, side,
                                  price, qty, ratio, qty_factor, starts[i], ends[i])
            position = final
            last_time = times[i]
            if crossed:
                return i + 1, position, last_time, open_start, rows, True, checked, NO_MISMATCH, 0
            if pending:
                pending, settled = _settle_waiting(bid_st, bid_win, bid_keys, bid_qtys, ask_st, ask_win, ask_keys,
                                                   ask_qtys, price, qty, ratio, qty_factor, starts, ends, finals,
                                                   waiting, pending, final)
                if settled == 0:
                    if closes:
                        return i + 1, position, last_time, open_start, rows - 1, False, checked, MISMATCH_ROW, 0
                    return i + 1, position, last_time, open_start, rows, False, checked, MISMATCH, 0
                checked += settled == 1
        i += 1
    return i, position, last_time, open_start, rows, False, checked, NO_MISMATCH, pending


class LaneRows:
    """Rows the compiled lane closed, as columns: ``time`` (interval start), ``stop`` (start of the
    interval the closing diff opened: rows in between carry this one), ``last`` (E of the last diff
    applied, -1 for none), ``recv`` (closing diff's receive time), ``values`` (one column per
    feature, NaN for undefined). Each row is valid (see ``_sample_chain``). Reused from call to
    call: read before the next."""

    __slots__ = ("time", "stop", "last", "recv", "values", "codes", "params")

    def __init__(self, codes: np.ndarray, params: np.ndarray, capacity: int = 4096) -> None:
        self.codes = codes
        self.params = params
        self.time = np.empty(capacity, dtype=np.int64)
        self.stop = np.empty(capacity, dtype=np.int64)
        self.last = np.empty(capacity, dtype=np.int64)
        self.recv = np.empty(capacity, dtype=np.int64)
        self.values = np.empty((capacity, len(codes)), dtype=np.float64)


#: Powers of ten a unit can be (int64): the largest dividing every price is the book's unit.
_POW10 = [10**k for k in range(19)]


def _unit_of(prices: np.ndarray, limit: int) -> int:
    """The largest power of ten, at most ``limit``, that divides every price."""
    unit = limit
    while unit > 1 and prices.size and np.any(prices % unit):
        unit //= 10
    return unit


class _Side:
    """One side: window state ``st``, window ``win``, and the sorted levels below it (``keys``/``qtys``,
    ascending, ``st[_BELOW]`` of them). ``sign``: +1 bids, -1 asks (key = sign * price / unit)."""

    __slots__ = ("st", "win", "keys", "qtys", "sign")

    def __init__(self, sign: int, window: int, capacity: int = 1024) -> None:
        self.st = np.array([0, -1, 0, 0], dtype=np.int64)
        self.win = np.zeros(window, dtype=np.int64)
        self.keys = np.empty(capacity, dtype=np.int64)
        self.qtys = np.empty(capacity, dtype=np.int64)
        self.sign = sign

    @property
    def count(self) -> int:
        return int(self.st[_IN_WINDOW] + self.st[_BELOW])

    def clear(self) -> None:
        if self.st[_IN_WINDOW]:
            self.win[:] = 0
        self.st[:] = (0, -1, 0, 0)

    def reserve(self, extra: int) -> None:
        """Room below the window for every level the side could then hold."""
        needed = self.count + extra
        if needed > len(self.keys):
            size = max(needed, 2 * len(self.keys))
            below = int(self.st[_BELOW])
            # Copy only the live levels: np.resize would fill the whole new size (a row group's worth).
            keys, qtys = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
            keys[:below] = self.keys[:below]
            qtys[:below] = self.qtys[:below]
            self.keys, self.qtys = keys, qtys

    def levels(self, unit: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` (None: all) levels, best first: ``(prices, qtys)`` at the book scale."""
        best = int(self.st[_BEST])
        slots = np.flatnonzero(self.win[: best + 1])[::-1] if best >= 0 else np.empty(0, dtype=np.int64)
        below = int(self.st[_BELOW])
        keys = np.concatenate([slots + self.st[_BASE], self.keys[:below][::-1]])
        qtys = np.concatenate([self.win[slots], self.qtys[:below][::-1]])
        if n is not None:
            keys, qtys = keys[:n], qtys[:n]
        return self.sign * keys * unit, qtys

    def top(self, unit: int, n: int | None) -> list[tuple[int, int]]:
        prices, qtys = self.levels(unit, n)
        # Python ints: features multiply exactly.
        return list(zip(prices.tolist(), qtys.tolist(), strict=True))

    def best(self, unit: int) -> int | None:
        if not self.count:
            return None
        return self.sign * int(_best_key(self.st, self.keys)) * unit

    def apply(self, prices: np.ndarray, qtys: np.ndarray, unit: int) -> None:
        """Set the levels in turn (book-scale prices, each a multiple of ``unit``)."""
        if not len(prices):
            return
        keys = self.sign * (np.asarray(prices, dtype=np.int64) // unit)
        # Worst first (a stable sort keeps a repeated price's last quantity last): levels that end
        # below the window are appended there, never inserted one by one at the front.
        order = np.argsort(keys, kind="stable")
        _apply_side(self.st, self.win, self.keys, self.qtys, keys[order], np.asarray(qtys, dtype=np.int64)[order])


class ArrayBook:
    """``Book`` for integer-array levels: ``apply((bid_prices, bid_qtys), (ask_prices, ask_qtys))``.
    A ``BookLike[ArrayLevels]``. ``window``: slots of each side's ladder (see the strategy above)."""

    __slots__ = ("_bids", "_asks", "_unit", "_divided", "tickers_checked", "ticker_mismatch", "_waiting",
                 "tickers_waiting")

    def __init__(self, window: int = WINDOW) -> None:
        if window < 4:
            raise ValueError(f"window {window}: at least 4 slots")
        self._bids = _Side(1, window)
        self._asks = _Side(-1, window)
        self._unit = 0  # none yet: the first prices choose it
        #: A fine row group's prices as read, the unit, and the prices as keys (see ``_fit_group``).
        self._divided: tuple[np.ndarray, int, np.ndarray] | None = None
        #: What the last ``follow_chain``/``sample_chain`` found of bookTickers (``check_tickers``): the
        #: ``BboChecked`` outcomes the sequencer did not give, and ``NO_MISMATCH``, or ``MISMATCH``/``MISMATCH_ROW``:
        #: after its last diff a waiting ticker differs, the sequencer must give ``BboMismatch`` (``mismatched``).
        self.tickers_checked = 0
        self.ticker_mismatch = NO_MISMATCH
        #: ... and the rows of the tickers still waiting for a diff where it stopped, in arrival order: the
        #: caller hands them to the sequencer (``apply_ticker``) before anything else.
        self.tickers_waiting: list[int] = []
        self._waiting = np.empty(LANE_PENDING, dtype=np.int64)

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._unit = 0

    def _fit(self, unit: int) -> None:
        """Make the book's unit divide ``unit`` (a power of ten), re-laying its levels if it must shrink."""
        if self._unit and self._unit % unit == 0 and self._unit != unit:
            old = self._unit
            bids, asks = self._bids.levels(old), self._asks.levels(old)
            self._bids.clear()
            self._asks.clear()
            self._unit = unit
            self._bids.apply(*bids, unit)
            self._asks.apply(*asks, unit)
        elif not self._unit:
            self._unit = unit

    def _fit_prices(self, *prices: np.ndarray) -> None:
        limit = self._unit or _POW10[-1]
        units = [_unit_of(np.asarray(p, dtype=np.int64), limit) for p in prices if len(p)]
        if units:  # no prices (an empty snapshot) choose no unit
            self._fit(min(units))

    def _fit_group(self, group: EventColumns) -> tuple[np.ndarray, int]:
        """``group``'s prices as the lane reads them and the ratio that turns them into keys, after
        fitting the book's unit to them."""
        factor = int(group.price_factor)
        unit = max(u for u in _POW10 if factor % u == 0)  # the factor's own largest power of ten
        if not self._unit or self._unit <= unit:
            self._fit(min(unit, self._unit) if self._unit else unit)
            return group.price, factor // self._unit
        # A factor finer than the book's unit (a row group whose spellings differ: factor 1): the
        # prices are often still multiples of the unit. Divided once per row group, not per row,
        # rather than shrinking the unit to the factor, which would spread the window's levels apart.
        cached = self._divided
        if cached is None or cached[0] is not group.price or cached[1] != self._unit:
            self._fit(_unit_of(group.price * factor, self._unit))
            unit = self._unit
            keys = group.price * factor // unit if unit > factor else group.price * (factor // unit)
            cached = self._divided = (group.price, unit, keys)
        return cached[2], 1

    def apply(self, bids: ArrayLevels, asks: ArrayLevels) -> None:
        b, a = self._bids, self._asks
        self._fit_prices(bids[0], asks[0])
        b.reserve(len(bids[0]))
        a.reserve(len(asks[0]))
        b.apply(bids[0], bids[1], self._unit)
        a.apply(asks[0], asks[1], self._unit)

    def _prepare(self, group: EventColumns, i: int) -> tuple[np.ndarray, int]:
        prices, ratio = self._fit_group(group)
        rows = len(group.side) - int(group.starts[i]) if len(group.starts) else 0
        self._bids.reserve(rows)
        self._asks.reserve(rows)
        return prices, ratio

    def follow_chain(self, group: EventColumns, i: int, position: int, time_limit: int,
                     skip_trades: bool = False, check_tickers: bool = False,
                     pend_limit: int = 0) -> tuple[int, int, int, bool]:
        """Run ``_follow_chain`` over ``group`` from event ``i``: ``(next i, position, last E or -1, crossed)``.

        It stops at any event other than a diff, except trades with ``skip_trades`` (no feature reads
        them), which it steps over, and with ``check_tickers`` the bookTickers (rule 8, as
        ``Sequencer.apply_ticker`` and its settling after a diff would do it, for a sequencer with no ticker
        pending): one with ``u`` passed is dropped, one at the position compared, and up to ``pend_limit``
        (at most ``LANE_PENDING``) wait for diffs, after which they are compared or dropped. Equal: counted
        in ``tickers_checked``. It stops before a ticker at the position that differs, and right after a
        diff a waiting one then differs (``ticker_mismatch``). Those still waiting where it stops are in
        ``tickers_waiting``."""
        prices, ratio = self._prepare(group, i)
        b, a = self._bids, self._asks
        i, position, last_time, crossed, self.tickers_checked, self.ticker_mismatch, waiting = _follow_chain(
            b.st, b.win, b.keys, b.qtys, a.st, a.win, a.keys, a.qtys, group.side, prices, group.qty, ratio,
            group.qty_factor, group.starts, group.ends, group.kinds, group.times, group.firsts, group.finals, i,
            position, time_limit, _DEPTH, _TRADE if skip_trades else _NO_KIND, _TICKER if check_tickers else _NO_KIND,
            self._waiting[: min(pend_limit, LANE_PENDING)])
        self.tickers_waiting = self._waiting[:waiting].tolist()
        return i, position, last_time, crossed

    def sample_chain(self, group: EventColumns, i: int, position: int, last_time: int, open_start: int,
                     interval: int, out: LaneRows, skip_trades: bool = False, check_tickers: bool = False,
                     pend_limit: int = 0) -> tuple[int, int, int, int, int, bool]:
        """Run ``_sample_chain`` over ``group`` from event ``i``: ``(next i, position, last E or -1,
        open interval start, rows written into out, crossed)``; ``skip_trades``, ``check_tickers`` and
        ``pend_limit`` as in ``follow_chain`` (``MISMATCH_ROW``: the row the mismatching diff closed is in
        ``out`` just after the rows written)."""
        prices, ratio = self._prepare(group, i)
        b, a = self._bids, self._asks
        i, position, last_time, open_start, rows, crossed, self.tickers_checked, self.ticker_mismatch, waiting = \
            _sample_chain(b.st, b.win, b.keys, b.qtys, a.st, a.win, a.keys, a.qtys, self._unit, group.side, prices,
                          group.qty, ratio, group.qty_factor, group.starts, group.ends, group.kinds, group.times,
                          group.firsts, group.finals, group.recv, i, position, last_time, open_start, interval, _DEPTH,
                          _TRADE if skip_trades else _NO_KIND, _TICKER if check_tickers else _NO_KIND,
                          self._waiting[: min(pend_limit, LANE_PENDING)], out.codes, out.params, out.time, out.stop,
                          out.last, out.recv, out.values)
        self.tickers_waiting = self._waiting[:waiting].tolist()
        return i, position, last_time, open_start, rows, crossed

    def is_crossed(self) -> bool:
        b, a = self._bids, self._asks
        return bool(_crossed(b.st, b.keys, a.st, a.keys))

    def load(self, bids: ArrayLevels, asks: ArrayLevels) -> None:
        self.clear()
        self.apply(bids, asks)

    def view(self) -> ArrayBookView:
        return ArrayBookView(self)


class ArrayBookView:
    """The ``BookView`` interface over an ``ArrayBook`` (live: it reads the book as it is now)."""

    __slots__ = ("_book",)
    scale = SCALE

    def __init__(self, book: ArrayBook) -> None:
        self._book = book

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        return self._book._bids.top(self._book._unit, n)

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        return self._book._asks.top(self._book._unit, n)

    @property
    def bid_depth(self) -> int:
        return self._book._bids.count

    @property
    def ask_depth(self) -> int:
        return self._book._asks.count

    def best_bid(self) -> int | None:
        return self._book._bids.best(self._book._unit)

    def best_ask(self) -> int | None:
        return self._book._asks.best(self._book._unit)

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask
