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

__all__ = ["ArrayBook", "ArrayBookView", "ArrayLevels", "EventColumns", "HAVE_NUMBA", "LaneRows"]

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
_DEPTH, _TRADE, _NO_KIND = int(EventKind.DEPTH), int(EventKind.TRADE), -1

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


def njit(*, cache: bool = False, nogil: bool = False) -> Any:
    """numba's ``njit``, with ``cache`` only where numba can write one; the identity without numba."""
    return _numba_njit(cache=cache and CACHE, nogil=nogil)


@njit(cache=True, nogil=True)
def _set_level(keys: np.ndarray, qtys: np.ndarray, count: int, key: int, qty: int) -> int:  # pragma: no cover
    """Set (``qty`` > 0) or remove (``qty`` == 0) the level ``key``; returns the new count."""
    # Most updates touch levels near the best, which sits at the end: gallop back from there to
    # bracket the key, then binary-search the bracket.
    lo, hi, step = count, count, 1
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
def _apply_side(keys: np.ndarray, qtys: np.ndarray, count: int, upd_prices: np.ndarray,
                upd_qtys: np.ndarray, sign: int) -> int:  # pragma: no cover - compiled
    for i in range(upd_prices.shape[0]):
        count = _set_level(keys, qtys, count, sign * upd_prices[i], upd_qtys[i])
    return count


@njit(cache=True, nogil=True)
def _apply_event(bid_keys: np.ndarray, bid_qtys: np.ndarray, bid_count: int, ask_keys: np.ndarray,
                 ask_qtys: np.ndarray, ask_count: int, bid_prices: np.ndarray, bid_sizes: np.ndarray,
                 ask_prices: np.ndarray, ask_sizes: np.ndarray) -> tuple[int, int]:  # pragma: no cover
    bid_count = _apply_side(bid_keys, bid_qtys, bid_count, bid_prices, bid_sizes, 1)
    ask_count = _apply_side(ask_keys, ask_qtys, ask_count, ask_prices, ask_sizes, -1)
    return bid_count, ask_count


@njit(cache=True, nogil=True)
def _apply_rows(bid_keys: np.ndarray, bid_qtys: np.ndarray, bid_count: int, ask_keys: np.ndarray,
                ask_qtys: np.ndarray, ask_count: int, side: np.ndarray, price: np.ndarray, qty: np.ndarray,
                price_factor: int, qty_factor: int, start: int, end: int) -> tuple[int, int, bool]:  # pragma: no cover
    """Apply level rows ``start:end`` (scaled as read); ``(bid count, ask count, crossed)`` after them."""
    for r in range(start, end):
        if side[r] == _BID:
            bid_count = _set_level(bid_keys, bid_qtys, bid_count, price[r] * price_factor, qty[r] * qty_factor)
        elif side[r] == _ASK:
            ask_count = _set_level(ask_keys, ask_qtys, ask_count, -price[r] * price_factor, qty[r] * qty_factor)
    crossed = bid_count > 0 and ask_count > 0 and bid_keys[bid_count - 1] >= -ask_keys[ask_count - 1]
    return bid_count, ask_count, crossed


@njit(cache=True, nogil=True)
def _follow_chain(bid_keys: np.ndarray, bid_qtys: np.ndarray, bid_count: int, ask_keys: np.ndarray,
                  ask_qtys: np.ndarray, ask_count: int, side: np.ndarray, price: np.ndarray, qty: np.ndarray,
                  price_factor: int, qty_factor: int, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray,
                  times: np.ndarray, firsts: np.ndarray, finals: np.ndarray, i: int, position: int, time_limit: int,
                  depth_kind: int, skip_kind: int,
                  ) -> tuple[int, int, int, int, int, bool]:  # pragma: no cover - compiled
    """The sequencer's LIVE transitions, compiled: from event ``i``, apply diffs that continue the
    chain (``U == position + 1``) and skip those already covered (``u <= position``), stopping at
    the first event that is not a diff, breaks the chain, or has ``E >= time_limit`` (it closes an
    interval), and just after a diff that leaves the book crossed. Events of ``skip_kind`` (trades,
    when no feature reads them; -1: none) are stepped over as no-ops. Returns ``(next i, position,
    E of the last applied diff or -1, bid count, ask count, crossed)``.
    """
    last_time = -1
    n = starts.shape[0]
    while i < n:
        if kinds[i] != depth_kind:
            if kinds[i] != skip_kind:
                break
            i += 1  # a trade changes no book and closes no interval
            continue
        if times[i] >= time_limit:
            break
        final = finals[i]
        if final > position:
            if firsts[i] != position + 1:
                break
            bid_count, ask_count, crossed = _apply_rows(bid_keys, bid_qtys, bid_count, ask_keys, ask_qtys,
                                                        ask_count, side, price, qty, price_factor, qty_factor,
                                                        starts[i], ends[i])
            position = final
            last_time = times[i]
            if crossed:
                return i + 1, position, last_time, bid_count, ask_count, True
        i += 1
    return i, position, last_time, bid_count, ask_count, False


_SCALE_F = float(SCALE)
#: ``Kernel`` values as plain ints, constants to the compiled code.
_MID, _BEST_BID, _BEST_ASK, _SPREAD, _BIAS, _BID_AMOUNT = (int(Kernel.MID), int(Kernel.BEST_BID), int(Kernel.BEST_ASK),
                                                           int(Kernel.SPREAD), int(Kernel.BIAS), int(Kernel.BID_AMOUNT))


@njit(cache=True, nogil=True)
def _top_sum(qtys: np.ndarray, count: int, levels: int) -> int:  # pragma: no cover - compiled
    """Summed quantity of the best ``levels`` levels (the best sits at the end); -1 past ``EXACT_LIMIT``."""
    total = 0
    for j in range(count - 1, max(count - levels, 0) - 1, -1):
        if qtys[j] > EXACT_LIMIT:  # checked before adding: no int64 wrap-around
            return -1
        total += qtys[j]
        if total > EXACT_LIMIT:
            return -1
    return total


@njit(cache=True, nogil=True)
def _features(bid_keys: np.ndarray, bid_qtys: np.ndarray, bid_count: int, ask_keys: np.ndarray,
              ask_qtys: np.ndarray, ask_count: int, codes: np.ndarray, params: np.ndarray,
              out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """The ``kernels.Kernel`` features of the book into ``out`` (NaN: undefined, Python's None); False when
    one of them cannot be computed exactly here (then ``out`` is garbage and Python computes the row)."""
    nan = np.nan
    bid = bid_keys[bid_count - 1] if bid_count else 0
    ask = -ask_keys[ask_count - 1] if ask_count else 0
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
        else:  # a family over the top N levels
            b = _top_sum(bid_qtys, bid_count, params[f])
            a = _top_sum(ask_qtys, ask_count, params[f])
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
def _sample_chain(bid_keys: np.ndarray, bid_qtys: np.ndarray, bid_count: int, ask_keys: np.ndarray,
                  ask_qtys: np.ndarray, ask_count: int, side: np.ndarray, price: np.ndarray, qty: np.ndarray,
                  price_factor: int, qty_factor: int, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray,
                  times: np.ndarray, firsts: np.ndarray, finals: np.ndarray, recv: np.ndarray, i: int,
                  position: int, last_time: int, open_start: int, interval: int, depth_kind: int, skip_kind: int,
                  codes: np.ndarray, params: np.ndarray, out_time: np.ndarray, out_stop: np.ndarray,
                  out_last: np.ndarray, out_recv: np.ndarray, out_values: np.ndarray,
                  ) -> tuple[int, int, int, int, int, int, int, bool]:  # pragma: no cover - compiled
    """``_follow_chain`` that also closes intervals itself: a diff that continues the chain (or is
    already covered) and whose ``E`` is past the open interval (every diff, with ``interval`` 0:
    event mode) closes it -- the row is sampled first, into ``out_*`` at the next free index, then
    the diff is applied, as ``MinuteSampler.apply`` does. Such a row is valid: the book was LIVE and
    the closing diff kept the chain. Stops where ``_follow_chain`` stops, when the output is full,
    or before a closing diff whose features cannot be computed exactly here. Returns ``(next i,
    position, last E or -1, open interval start, bid count, ask count, rows, crossed)``.
    """
    n = starts.shape[0]
    rows = 0
    capacity = out_time.shape[0]
    limit = open_start + interval
    while i < n:
        if kinds[i] != depth_kind:
            if kinds[i] != skip_kind:
                break
            i += 1
            continue
        final = finals[i]
        ahead = final > position
        if ahead and firsts[i] != position + 1:
            break
        if interval == 0 or times[i] >= limit:
            if rows == capacity:
                break
            if not _features(bid_keys, bid_qtys, bid_count, ask_keys, ask_qtys, ask_count, codes, params,
                             out_values[rows]):
                break
            out_time[rows] = open_start
            out_last[rows] = last_time
            out_recv[rows] = recv[i]
            open_start = times[i] if interval == 0 else times[i] - times[i] % interval
            out_stop[rows] = open_start
            rows += 1
            limit = open_start + interval
        if ahead:
            bid_count, ask_count, crossed = _apply_rows(bid_keys, bid_qtys, bid_count, ask_keys, ask_qtys,
                                                        ask_count, side, price, qty, price_factor, qty_factor,
                                                        starts[i], ends[i])
            position = final
            last_time = times[i]
            if crossed:
                return i + 1, position, last_time, open_start, bid_count, ask_count, rows, True
        i += 1
    return i, position, last_time, open_start, bid_count, ask_count, rows, False


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


class _Side:
    __slots__ = ("keys", "qtys", "count", "negate")

    def __init__(self, negate: bool, capacity: int = 1024) -> None:
        self.keys = np.empty(capacity, dtype=np.int64)
        self.qtys = np.empty(capacity, dtype=np.int64)
        self.count = 0
        self.negate = negate

    def reserve(self, extra: int) -> None:
        needed = self.count + extra
        if needed > len(self.keys):
            size = max(needed, 2 * len(self.keys))
            # Copy only the live levels: np.resize would fill the whole new size (a row group's worth).
            keys, qtys = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
            keys[: self.count] = self.keys[: self.count]
            qtys[: self.count] = self.qtys[: self.count]
            self.keys, self.qtys = keys, qtys

    def top(self, n: int | None) -> list[tuple[int, int]]:
        count = self.count if n is None else min(n, self.count)
        if not count:
            return []
        keys = self.keys[self.count - count : self.count][::-1]
        prices = (-keys if self.negate else keys).tolist()  # Python ints: features multiply exactly
        return list(zip(prices, self.qtys[self.count - count : self.count][::-1].tolist(), strict=True))

    def best(self) -> int | None:
        if not self.count:
            return None
        key = int(self.keys[self.count - 1])
        return -key if self.negate else key


class ArrayBook:
    """``Book`` for integer-array levels: ``apply((bid_prices, bid_qtys), (ask_prices, ask_qtys))``.
    A ``BookLike[ArrayLevels]``."""

    __slots__ = ("_bids", "_asks")

    def __init__(self) -> None:
        self._bids = _Side(negate=False)
        self._asks = _Side(negate=True)

    def clear(self) -> None:
        self._bids.count = 0
        self._asks.count = 0

    def apply(self, bids: ArrayLevels, asks: ArrayLevels) -> None:
        b, a = self._bids, self._asks
        b.reserve(len(bids[0]))
        a.reserve(len(asks[0]))
        b.count, a.count = _apply_event(b.keys, b.qtys, b.count, a.keys, a.qtys, a.count, bids[0], bids[1],
                                        asks[0], asks[1])

    def follow_chain(self, group: EventColumns, i: int, position: int, time_limit: int,
                     skip_trades: bool = False) -> tuple[int, int, int, bool]:
        """Run ``_follow_chain`` over ``group`` from event ``i``: ``(next i, position, last E or -1, crossed)``.

        It stops at any event other than a diff (a bookTicker always: Python audits it), except trades
        with ``skip_trades`` (no feature reads them), which it steps over."""
        b, a = self._bids, self._asks
        rows = len(group.side) - int(group.starts[i])
        b.reserve(rows)
        a.reserve(rows)
        i, position, last_time, b.count, a.count, crossed = _follow_chain(
            b.keys, b.qtys, b.count, a.keys, a.qtys, a.count, group.side, group.price, group.qty,
            group.price_factor, group.qty_factor, group.starts,
            group.ends, group.kinds, group.times, group.firsts, group.finals, i, position, time_limit,
            _DEPTH, _TRADE if skip_trades else _NO_KIND)
        return i, position, last_time, crossed

    def sample_chain(self, group: EventColumns, i: int, position: int, last_time: int, open_start: int,
                     interval: int, out: LaneRows, skip_trades: bool = False) -> tuple[int, int, int, int, int, bool]:
        """Run ``_sample_chain`` over ``group`` from event ``i``: ``(next i, position, last E or -1,
        open interval start, rows written into out, crossed)``; ``skip_trades`` as in ``follow_chain``."""
        b, a = self._bids, self._asks
        rows = len(group.side) - int(group.starts[i])
        b.reserve(rows)
        a.reserve(rows)
        i, position, last_time, open_start, b.count, a.count, written, crossed = _sample_chain(
            b.keys, b.qtys, b.count, a.keys, a.qtys, a.count, group.side, group.price, group.qty,
            group.price_factor, group.qty_factor, group.starts, group.ends, group.kinds, group.times,
            group.firsts, group.finals, group.recv, i, position, last_time, open_start, interval,
            _DEPTH, _TRADE if skip_trades else _NO_KIND, out.codes, out.params, out.time, out.stop, out.last,
            out.recv, out.values)
        return i, position, last_time, open_start, written, crossed

    def is_crossed(self) -> bool:
        b, a = self._bids, self._asks
        return bool(b.count and a.count and b.keys[b.count - 1] >= -a.keys[a.count - 1])

    def load(self, bids: ArrayLevels, asks: ArrayLevels) -> None:
        self.clear()
        self.apply(bids, asks)

    def view(self) -> ArrayBookView:
        return ArrayBookView(self._bids, self._asks)


class ArrayBookView:
    """The ``BookView`` interface over an ``ArrayBook``."""

    __slots__ = ("_bids", "_asks")
    scale = SCALE

    def __init__(self, bids: _Side, asks: _Side) -> None:
        self._bids = bids
        self._asks = asks

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        return self._bids.top(n)

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        return self._asks.top(n)

    @property
    def bid_depth(self) -> int:
        return self._bids.count

    @property
    def ask_depth(self) -> int:
        return self._asks.count

    def best_bid(self) -> int | None:
        return self._bids.best()

    def best_ask(self) -> int | None:
        return self._asks.best()

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask
