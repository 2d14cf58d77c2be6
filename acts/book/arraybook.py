"""A book over sorted integer arrays with a compiled update kernel -- the fast path's book.

Strategy: each side keeps ascending int64 *keys* with the best level at the END (bids: key =
price; asks: key = -price), so the common update -- a level near the top -- shifts only the few
elements after it, and an insert far from the top is a binary search plus one ``memmove``. No
dense price grid: memory is O(levels), whatever the tick size or a stray level's distance from
mid (BTC at 0.01 ticks, SHIB at 1e-8). Capacity doubles as needed. Numba compiles the kernel
when installed (extra ``fast``); without it the same code runs as plain Python, slower but
identical. Same interface as ``Book`` (``book.protocol.BookLike``/``BookView``), but levels arrive
as integer arrays already at ``BOOK_SCALE`` (``ArrayLevels``, from ``storage.columnar``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, TypeAlias

import numpy as np

from acts.book.book import SCALE
from acts.core.events import EventKind, Side

__all__ = ["ArrayBook", "ArrayBookView", "ArrayLevels", "EventColumns", "HAVE_NUMBA"]

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
    firsts: np.ndarray
    finals: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    price_factor: int
    qty_factor: int

#: ``Side`` values as plain ints: the compiled kernel reads them as constants.
_BID, _ASK = int(Side.BID), int(Side.ASK)

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
def _follow_chain(bid_keys: np.ndarray, bid_qtys: np.ndarray, bid_count: int, ask_keys: np.ndarray,
                  ask_qtys: np.ndarray, ask_count: int, side: np.ndarray, price: np.ndarray, qty: np.ndarray,
                  price_factor: int, qty_factor: int, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray,
                  times: np.ndarray, firsts: np.ndarray, finals: np.ndarray, i: int, position: int, time_limit: int,
                  depth_kind: int) -> tuple[int, int, int, int, int, bool]:  # pragma: no cover - compiled
    """The sequencer's LIVE transitions, compiled: from event ``i``, apply diffs that continue the
    chain (``U == position + 1``) and skip those already covered (``u <= position``), stopping at
    the first event that is not a diff, breaks the chain, or has ``E >= time_limit`` (it closes an
    interval), and just after a diff that leaves the book crossed. Returns ``(next i, position,
    E of the last applied diff or -1, bid count, ask count, crossed)``.
    """
    last_time = -1
    n = starts.shape[0]
    while i < n:
        if kinds[i] != depth_kind or times[i] >= time_limit:
            break
        final = finals[i]
        if final > position:
            if firsts[i] != position + 1:
                break
            for r in range(starts[i], ends[i]):
                if side[r] == _BID:
                    bid_count = _set_level(bid_keys, bid_qtys, bid_count, price[r] * price_factor,
                                           qty[r] * qty_factor)
                elif side[r] == _ASK:
                    ask_count = _set_level(ask_keys, ask_qtys, ask_count, -price[r] * price_factor,
                                           qty[r] * qty_factor)
            position = final
            last_time = times[i]
            if bid_count and ask_count and bid_keys[bid_count - 1] >= -ask_keys[ask_count - 1]:
                return i + 1, position, last_time, bid_count, ask_count, True
        i += 1
    return i, position, last_time, bid_count, ask_count, False


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
            self.keys = np.resize(self.keys, size)
            self.qtys = np.resize(self.qtys, size)

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

    def follow_chain(self, group: EventColumns, i: int, position: int, time_limit: int) -> tuple[int, int, int, bool]:
        """Run ``_follow_chain`` over ``group`` from event ``i``: ``(next i, position, last E or -1, crossed)``."""
        b, a = self._bids, self._asks
        rows = len(group.side) - int(group.starts[i])
        b.reserve(rows)
        a.reserve(rows)
        i, position, last_time, b.count, a.count, crossed = _follow_chain(
            b.keys, b.qtys, b.count, a.keys, a.qtys, a.count, group.side, group.price, group.qty,
            group.price_factor, group.qty_factor, group.starts,
            group.ends, group.kinds, group.times, group.firsts, group.finals, i, position, time_limit,
            int(EventKind.DEPTH))
        return i, position, last_time, crossed

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
