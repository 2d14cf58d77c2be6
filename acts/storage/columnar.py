"""Segments straight to book-scale integer arrays: the fast path's reader.

One row group at a time, mantissa/exponent columns become ``BOOK_SCALE`` integers in a single
vectorized step (no strings, no per-level Python objects). ``acts.replayer.replay`` then runs the
row group's ordinary stretches -- diffs continuing the chain of a valid book inside the open
minute -- through the compiled lane (``ArrayBook.follow_chain``), and hands every other event
(snapshots, markers, gaps, minute closes) as an ``Event`` to the very same
``Sequencer``/``MinuteSampler`` as the reference path. Parity with the reference engine is
tested row for row, including duplicates, reordering and gaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from acts.core.decimals import BOOK_SCALE, MAX_DIGITS, format_decimal
from acts.core.errors import CorruptSegmentError, PrecisionError
from acts.core.events import BookTicker, DepthUpdate, EventKind, Marker, Side, Snapshot, Trade
from acts.storage.segments import column_bounds, open_segment, read_row_group
from acts.storage.segments_v2 import level_offsets

__all__ = ["ArrayEvent", "ArrayLevels", "LevelOverflow", "NO_PU", "NO_SIDE", "RowGroup", "read_columnar_events",
           "read_row_groups"]

#: One side's levels on the fast path: ``(prices, quantities)``, int64 arrays at ``BOOK_SCALE``. The same
#: type as ``book.arraybook.ArrayLevels``, which takes them (``storage`` and ``book`` never import each other).
ArrayLevels: TypeAlias = tuple[np.ndarray, np.ndarray]
#: An event as the fast path reads it: levels as arrays, for ``Sequencer(book=ArrayBook())``.
ArrayEvent: TypeAlias = DepthUpdate[ArrayLevels] | Snapshot[ArrayLevels] | Trade | BookTicker | Marker

_INT64_MAX = np.iinfo(np.int64).max
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_LIMIT = _INT64_MAX // _POW10  # the largest mantissa that a shift by k decimals keeps in int64
_EMPTY = np.empty(0, dtype=np.int64)
_SIDES = np.array([Side.BID, Side.ASK], dtype=np.int8)
#: ``side`` of a row without a level (an empty diff), in the row arrays (the column holds a null).
NO_SIDE = -1
#: ``prevs`` of an event without ``pu`` (every spot event); a real ``pu`` is never negative.
NO_PU = -1


class LevelOverflow(PrecisionError):
    """A level's price or quantity does not fit int64 at the book scale (> ~9.2e10 units)."""


def _to_book(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``mantissa * 10**-exponent`` at ``BOOK_SCALE`` decimals (exponent may be below zero after pow10 scaling)."""
    shift = BOOK_SCALE - exponent.astype(np.int64)
    if (shift < 0).any():
        finer = shift < 0
        divisor = _POW10[-shift[finer]]
        if (mantissa[finer] % divisor).any():
            raise PrecisionError(f"a value has more than {BOOK_SCALE} significant decimals")
        out = mantissa.copy()
        out[finer] = mantissa[finer] // divisor
        shift = np.maximum(shift, 0)
        mantissa = out
    if (mantissa > _LIMIT[shift]).any():
        raise LevelOverflow(f"a level above {_INT64_MAX / 10**BOOK_SCALE:.3g} units does not fit the fast book")
    return mantissa * _POW10[shift]


def _column_to_book(table: pa.Table, name: str, pow10: int) -> tuple[np.ndarray, int]:
    """A mantissa column (0 on rows without a level) and the factor that brings it to ``BOOK_SCALE``.

    The usual case -- every level of the row group spelled with the same decimals -- returns
    pyarrow's own buffer and one scalar factor, which the compiled lane applies as it reads: no
    second array of 8 bytes a row to allocate and fill. Mixed spellings are converted here, row by
    row, with factor 1.
    """
    column = table.column(name)
    mantissa = (column.fill_null(0) if column.null_count else column).to_numpy()
    exponents = table.column(f"{name}_exp")
    bounds = pc.min_max(exponents)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:  # no levels at all
        return mantissa, 1
    shift = BOOK_SCALE - (low - pow10)
    if low == high and shift >= 0:
        if mantissa.size and mantissa.max() > _LIMIT[shift]:
            raise LevelOverflow(f"a level above {_INT64_MAX / 10**BOOK_SCALE:.3g} units does not fit the fast book")
        return mantissa, int(_POW10[shift])
    return _to_book(mantissa, exponents.fill_null(0).to_numpy().astype(np.int64) - pow10), 1


def _scaled(values: np.ndarray, factor: int) -> np.ndarray:
    return values if factor == 1 else values * factor


class RowGroup:
    """One decoded row group: per-event columns plus the rows' levels at ``BOOK_SCALE``.

    Event ``i`` owns rows ``starts[i]:ends[i]`` (bids first, then asks; ``side`` a ``Side``, or ``NO_SIDE``
    on a row without a level -- version 1 files only; in version 2 an event without levels owns no rows).
    A row's price at ``BOOK_SCALE`` is ``price[r] * price_factor`` (likewise ``qty``).
    A trade (kind 7) owns one row, its price and quantity (side ``ASK``: it has no bids), and has its
    ``trade_ids[i]`` (t), ``trade_times[i]`` (T, ms), ``makers[i]`` (m) and ``times[i]`` (E); a bookTicker
    (kind 8) owns two rows, its best bid then its best ask, with ``finals[i]`` its ``u`` and ``times[i]``
    its E (0 if none). ``trade_ids``/``trade_times``/``makers`` are 0/False on every other kind.
    ``event(i)`` builds the ``Event`` object; the compiled lane reads the arrays directly.
    ``prevs``: each diff's ``pu`` (USD-M futures), ``NO_PU`` where it has none; None for a group without any.
    """

    __slots__ = ("symbol", "starts", "ends", "kinds", "times", "firsts", "finals", "recv", "side", "price", "qty",
                 "price_factor", "qty_factor", "trade_ids", "trade_times", "makers", "_details", "_market", "_spelling",
                 "prevs")

    def __init__(self, symbol: str, starts: np.ndarray, ends: np.ndarray, kinds: np.ndarray, times: np.ndarray,
                 firsts: np.ndarray, finals: np.ndarray, recv: np.ndarray, side: np.ndarray,
                 price: tuple[np.ndarray, int], qty: tuple[np.ndarray, int], details: pa.ChunkedArray,
                 market: pa.Table | None = None, prevs: np.ndarray | None = None) -> None:
        self.symbol = symbol
        self.starts, self.ends, self.kinds, self.recv = starts, ends, kinds, recv
        self.times, self.firsts, self.finals, self.side = times, firsts, finals, side
        self.price, self.price_factor = price
        self.qty, self.qty_factor = qty
        self._details = details  # one per event
        self._market = market  # ``_MARKET_COLUMNS``, read only for a row group holding trades or bookTickers
        self._spelling: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # built on first use
        n = len(starts)
        if market is None:
            self.trade_ids, self.trade_times = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
            self.makers = np.zeros(n, dtype=bool)
        else:
            self.trade_ids = _per_event(market.column("trade_id"))
            self.trade_times = _per_event(market.column("trade_time_ms"))
            self.makers = market.column("buyer_is_maker").fill_null(False).to_numpy(zero_copy_only=False)
        self.prevs = prevs

    def __len__(self) -> int:
        return len(self.starts)

    def event(self, i: int) -> ArrayEvent:
        start, end, kind = int(self.starts[i]), int(self.ends[i]), int(self.kinds[i])
        recv = int(self.recv[i])
        if kind == EventKind.DEPTH or kind == EventKind.SNAPSHOT:
            if end > start and self.side[start] >= 0:
                mid = start + int(np.count_nonzero(self.side[start:end] == Side.BID))  # bids come first
                price = _scaled(self.price[start:end], self.price_factor)
                qty = _scaled(self.qty[start:end], self.qty_factor)
                bids: ArrayLevels = (price[: mid - start], qty[: mid - start])
                asks: ArrayLevels = (price[mid - start :], qty[mid - start :])
            else:
                bids = asks = (_EMPTY, _EMPTY)
            if kind == EventKind.DEPTH:
                pu = None if self.prevs is None or self.prevs[i] == NO_PU else int(self.prevs[i])
                return DepthUpdate(self.symbol, int(self.times[i]), int(self.firsts[i]), int(self.finals[i]),
                                   bids, asks, recv, pu)
            return Snapshot(self.symbol, int(self.finals[i]), bids, asks, recv)
        if kind == EventKind.TRADE:
            text, qty_text = self._texts(i, start)
            assert self._market is not None  # read for every row group holding a trade
            # An aggTrade's fills f..l (null on a spot trade), kept in the update-id columns of the file.
            first, last = (self._market.column(name)[i].as_py() for name in _FILL_COLUMNS)
            return Trade(self.symbol, int(self.times[i]), int(self.trade_ids[i]), text, qty_text,
                         int(self.trade_times[i]), bool(self.makers[i]), recv, first, last)
        if kind == EventKind.BOOK_TICKER:
            (bid, bid_qty), (ask, ask_qty) = self._texts(i, start), self._texts(i, start + 1)
            has_time = self._spell()[2][i]
            return BookTicker(self.symbol, int(self.finals[i]), bid, bid_qty, ask, ask_qty, recv,
                              int(self.times[i]) if has_time else None)
        return Marker(EventKind(kind), self.symbol, recv, self._details[i].as_py() or "{}")

    def _texts(self, i: int, row: int) -> tuple[str, str]:
        """Row ``row``'s price and quantity spelled as the exchange sent them."""
        price_dec, qty_dec, _ = self._spell()
        p, q = int(price_dec[row]), int(qty_dec[row])
        return (format_decimal(int(self.price[row]) * self.price_factor // 10 ** (BOOK_SCALE - p), p),
                format_decimal(int(self.qty[row]) * self.qty_factor // 10 ** (BOOK_SCALE - q), q))

    def _spell(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the decimals of its price and quantity strings; per event: whether it has an E."""
        if self._spelling is None:
            market = self._market
            assert market is not None  # read for every row group holding a trade or a bookTicker
            counts = self.ends - self.starts
            out = []
            for name in ("price", "qty"):
                decimals = np.repeat(market.column(f"{name}_decimals").to_numpy().astype(np.int64), counts)
                each = market.column(f"{name}_decimals_each")
                if each.null_count < len(each):  # events whose strings differ: one per level
                    for k in np.flatnonzero(each.is_valid().to_numpy(zero_copy_only=False)):
                        decimals[self.starts[k]:self.ends[k]] = each[int(k)].as_py()
                out.append(decimals)
            has_time = market.column("event_time_ms").is_valid().to_numpy(zero_copy_only=False)
            self._spelling = (out[0], out[1], has_time)
        return self._spelling


def _per_event(column: pa.ChunkedArray) -> np.ndarray:
    """An event column as int64 (0 where null: a snapshot has no E; nulls would turn it into floats)."""
    return (column.fill_null(0) if column.null_count else column).to_numpy().astype(np.int64, copy=False)


def _v1_group(table: pa.Table, symbol: str, price_pow10: int, qty_pow10: int) -> RowGroup:
    """A version 1 row group: event fields on each event's first row (a non-null ``kind``)."""
    starts = np.flatnonzero(table.column("kind").is_valid().to_numpy(zero_copy_only=False)).astype(np.int64)
    ends = np.append(starts[1:], table.num_rows).astype(np.int64)
    side = table.column("side").fill_null(NO_SIDE).to_numpy().astype(np.int8, copy=False)
    first = table.select(["kind", "recv_ns", "E", "U", "u", "detail"]).take(pa.array(starts))
    return RowGroup(symbol, starts, ends, _per_event(first.column("kind")), _per_event(first.column("E")),
                    _per_event(first.column("U")), _per_event(first.column("u")), _per_event(first.column("recv_ns")),
                    side, _column_to_book(table, "price", price_pow10), _column_to_book(table, "qty", qty_pow10),
                    first.column("detail"))


#: The columns the fast path reads from a version 2 file (not the decimals of the original strings).
V2_COLUMNS = ["kind", "recv_ns", "event_time_ms", "first_update_id", "final_update_id", "bid_levels", "price", "qty",
              "price_scale", "qty_scale", "detail", "prev_final_update_id"]
#: The same for a row group whose statistics say it holds diffs and snapshots only: no marker ``detail``.
_BOOK_ONLY_COLUMNS = [name for name in V2_COLUMNS if name != "detail"]


def _v2_levels(table: pa.Table, name: str, counts: np.ndarray, known: tuple[int, int] | None
               ) -> tuple[np.ndarray, int]:
    """A level list's flat values (pyarrow's buffer, zero-copy) and the factor to ``BOOK_SCALE``.

    ``known``: the values' (min, max) from the file's statistics, or None (then the values are scanned)."""
    values, _ = level_offsets(table.column(name))
    scales = table.column(f"{name}_scale")
    bounds = pc.min_max(scales)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None or not values.size:
        return values, 1
    if low == high:  # the usual case: one scale in the row group
        shift = BOOK_SCALE - low
        if 0 <= shift <= MAX_DIGITS:
            if (values.max() if known is None else known[1]) > _LIMIT[shift]:
                raise LevelOverflow(f"a level above {_INT64_MAX / 10**BOOK_SCALE:.3g} units does not fit the fast book")
            return values, int(_POW10[shift])
    row_scales = np.repeat(scales.to_numpy().astype(np.int64), counts)
    if (BOOK_SCALE - row_scales > MAX_DIGITS).any() and values.any():
        raise LevelOverflow(f"a level above {_INT64_MAX / 10**BOOK_SCALE:.3g} units does not fit the fast book")
    return _to_book(values, np.clip(row_scales, BOOK_SCALE - MAX_DIGITS, BOOK_SCALE + MAX_DIGITS)), 1


#: An aggTrade's ``f`` and ``l``, where the file keeps them.
_FILL_COLUMNS = ("first_update_id", "final_update_id")
#: What a row group holding trades or bookTickers also needs (read for those row groups only): the trade
#: fields (an aggTrade's fills too), and the decimals that spell their values back exactly.
_MARKET_COLUMNS = ["event_time_ms", "trade_id", "trade_time_ms", "buyer_is_maker", "price_decimals", "qty_decimals",
                   "price_decimals_each", "qty_decimals_each", *_FILL_COLUMNS]


def _prevs(table: pa.Table) -> np.ndarray | None:
    """The ``pu`` column (``NO_PU`` for null), or None where no event has one (spot, files before futures)."""
    if "prev_final_update_id" not in table.column_names:
        return None
    column = table.column("prev_final_update_id")
    if column.null_count == len(column):
        return None
    return (column.fill_null(NO_PU) if column.null_count else column).to_numpy().astype(np.int64, copy=False)


def _v2_group(table: pa.Table, symbol: str, market: pa.Table | None,
              bounds: dict[str, tuple[int, int] | None]) -> RowGroup:
    """A version 2 row group: one row per event, levels as lists (their offsets are the event bounds).
    ``bounds``: each level column's (min, max) from the file's statistics (None: not there)."""
    _, offsets = level_offsets(table.column("price"))
    starts, ends = offsets[:-1], offsets[1:]
    counts = ends - starts
    # side: each event's bids (0) then asks (1), as runs: one np.repeat over (bids, asks) count pairs.
    bids = table.column("bid_levels").to_numpy()
    runs = np.empty(2 * len(counts), dtype=np.int64)
    runs[0::2], runs[1::2] = bids, counts - bids
    side = np.repeat(np.tile(_SIDES, len(counts)), runs)
    kinds = _per_event(table.column("kind"))
    firsts, finals = _per_event(table.column("first_update_id")), _per_event(table.column("final_update_id"))
    if market is not None:  # an aggTrade's f..l are trade ids: kept out of the update-id arrays the lane scans
        trades = kinds == EventKind.TRADE
        firsts, finals = np.where(trades, 0, firsts), np.where(trades, 0, finals)
    return RowGroup(symbol, starts, ends, kinds, _per_event(table.column("event_time_ms")), firsts, finals,
                    _per_event(table.column("recv_ns")), side, _v2_levels(table, "price", counts, bounds["price"]),
                    _v2_levels(table, "qty", counts, bounds["qty"]), _details(table), market, _prevs(table))


def _details(table: pa.Table) -> pa.ChunkedArray:
    """Each event's ``detail`` (markers only); all null where it was not read (a row group without markers)."""
    if "detail" in table.column_names:
        return table.column("detail")
    return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])


def read_row_groups(path: PurePath, symbol: str, filesystem: pafs.FileSystem | None = None) -> Iterator[RowGroup]:
    """The decoded row groups of a segment (either format version), in order, one in memory at a time."""
    info, reader = open_segment(path, filesystem)  # same validation and errors as the reference reader
    try:
        footer = reader.metadata
        for i in range(reader.num_row_groups):
            if info.format_version == 1:
                table = read_row_group(reader, i, info)
                if table.num_rows:
                    yield _v1_group(table, symbol, info.price_pow10, info.qty_pow10)
            else:
                kinds = column_bounds(footer, i, "kind")
                markers = kinds is None or kinds[1] >= EventKind.CONNECT  # or trades, bookTickers: kinds above
                table = read_row_group(reader, i, info, V2_COLUMNS if markers else _BOOK_ONLY_COLUMNS)
                if table.num_rows:
                    market = None
                    if (pc.max(table.column("kind")).as_py() if kinds is None else kinds[1]) >= EventKind.TRADE:
                        market = read_row_group(reader, i, info, _MARKET_COLUMNS)
                    bounds = {name: column_bounds(footer, i, f"{name}.list.element") for name in ("price", "qty")}
                    yield _v2_group(table, symbol, market, bounds)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSegmentError(f"{path}: cannot read data ({exc}); move it aside or run 'acts verify'") from None
    finally:
        reader.close()


def read_columnar_events(path: PurePath, symbol: str,
                         filesystem: pafs.FileSystem | None = None) -> Iterator[ArrayEvent]:
    """The events of a segment with levels as book-scale integer arrays (for ``ArrayBook``)."""
    for group in read_row_groups(path, symbol, filesystem):
        for i in range(len(group)):
            yield group.event(i)
