"""Segment format version 2: one row per event, its levels as Parquet lists (see docs/FORMAT.md).

Strategy: decode speed first. Event fields are plain per-event columns; an event's levels are
``price``/``qty`` lists (bids first, then asks; ``bid_levels`` says where the asks start) whose
leaves decode straight into flat int64 arrays plus list offsets, which are exactly the row arrays
and event bounds of ``columnar.RowGroup``: no nulls to fill, no first-row flags to scan. Values
are integers at the event's ``price_scale``/``qty_scale`` (constant within a row group unless
one event's values cannot share an int64 scale), so the fast reader needs one multiplication
factor, and the number of decimals of each original string rides along (``*_decimals``, with a
per-level list only for the rare event whose strings differ) so every event re-serializes
byte-exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from acts.core.decimals import MAX_DIGITS, format_decimal, parse_decimal
from acts.core.errors import PrecisionError
from acts.core.events import BookTicker, DepthUpdate, Event, EventKind, Level, Marker, Snapshot, Trade

__all__ = ["SCHEMA", "LEVEL_COLUMNS", "TRADE_COLUMNS", "OPTIONAL_COLUMNS", "LAST_KIND", "events_to_table",
           "table_to_events", "level_offsets"]

_LEVELS = pa.list_(pa.field("element", pa.int64(), nullable=False))
_DECIMALS = pa.list_(pa.field("element", pa.int8(), nullable=False))

SCHEMA = pa.schema(
    [
        pa.field("kind", pa.int8(), nullable=False),  # EventKind
        pa.field("recv_ns", pa.int64(), nullable=False),  # local receive time, UTC ns
        pa.field("event_time_ms", pa.int64()),  # exchange event time E, ms (diffs)
        pa.field("first_update_id", pa.int64()),  # U (diffs)
        pa.field("final_update_id", pa.int64()),  # u (diffs) / lastUpdateId (snapshots)
        pa.field("bid_levels", pa.int32(), nullable=False),  # the first bid_levels levels are bids, the rest asks
        pa.field("price", _LEVELS, nullable=False),  # real price * 10**price_scale
        pa.field("qty", _LEVELS, nullable=False),  # real quantity * 10**qty_scale
        pa.field("price_scale", pa.int8(), nullable=False),
        pa.field("qty_scale", pa.int8(), nullable=False),
        pa.field("price_decimals", pa.int8(), nullable=False),  # decimals of every price string of the event...
        pa.field("qty_decimals", pa.int8(), nullable=False),
        pa.field("price_decimals_each", _DECIMALS),  # ...unless they differ: then one per level here
        pa.field("qty_decimals_each", _DECIMALS),
        pa.field("detail", pa.string()),  # marker details (JSON)
        # Trades only (null on every other kind): added after the first version 2 files, which lack them.
        pa.field("trade_id", pa.int64()),  # t
        pa.field("trade_time_ms", pa.int64()),  # T
        pa.field("buyer_is_maker", pa.bool_()),  # m
        pa.field("prev_final_update_id", pa.int64()),  # pu (USD-M futures diffs; null on spot and older files)
    ]
)
#: Columns a version 2 file may lack (written before trades were stored): read as all null.
TRADE_COLUMNS = ("trade_id", "trade_time_ms", "buyer_is_maker")
#: Columns added after the first version 2 files: a file without one reads it as all null.
OPTIONAL_COLUMNS = (*TRADE_COLUMNS, "prev_final_update_id")
#: A version 2 file holds kinds 0 ..= this; a reader refuses a file with any other.
LAST_KIND = int(EventKind.BOOK_TICKER)
#: The list columns, and their Parquet leaf paths (what encodings are set on).
LEVEL_COLUMNS = ("price", "qty")

_POW10 = np.array([10**k for k in range(MAX_DIGITS + 1)], dtype=np.int64)
_LIMIT = np.iinfo(np.int64).max // _POW10  # the largest value a shift by k decimals keeps in int64
_NO_DIGITS = -128  # "significant decimals" of a zero: never decides a scale


# --- events -> table ----------------------------------------------------------------------


def events_to_table(events: Sequence[Event]) -> pa.Table:
    """One row per event of ``events`` (one symbol, in order); ``PrecisionError`` names a value that
    cannot be stored exactly."""
    n = len(events)
    kinds = np.empty(n, dtype=np.int8)
    recv = np.empty(n, dtype=np.int64)
    times: list[int | None] = [None] * n
    firsts: list[int | None] = [None] * n
    finals: list[int | None] = [None] * n
    prevs: list[int | None] = [None] * n
    details: list[str | None] = [None] * n
    bid_levels = np.zeros(n, dtype=np.int32)
    counts = np.zeros(n, dtype=np.int64)
    texts: list[Level] = []
    trade_ids: list[int | None] = [None] * n
    trade_times: list[int | None] = [None] * n
    makers: list[bool | None] = [None] * n
    for i, event in enumerate(events):
        recv[i] = event.recv_ns
        kinds[i] = event.kind
        if isinstance(event, DepthUpdate):
            times[i], firsts[i], finals[i] = event.event_time_ms, event.first_update_id, event.final_update_id
            prevs[i] = event.prev_final_update_id
        elif isinstance(event, Snapshot):
            finals[i] = event.last_update_id
        elif isinstance(event, Trade):
            # One level (price, qty), no bids; t (or a), T and m in their own columns; an aggTrade's fills
            # f..l where a diff keeps its U..u (null on a spot trade).
            times[i], trade_ids[i] = event.event_time_ms, event.trade_id
            firsts[i], finals[i] = event.first_trade_id, event.last_trade_id
            trade_times[i], makers[i] = event.trade_time_ms, event.buyer_is_maker
            counts[i] = 1
            texts.append((event.price, event.qty))
            continue
        elif isinstance(event, BookTicker):
            # One bid level and one ask level; u where a diff keeps its u.
            times[i], finals[i] = event.event_time_ms, event.update_id
            bid_levels[i], counts[i] = 1, 2
            texts += ((event.bid_price, event.bid_qty), (event.ask_price, event.ask_qty))
            continue
        else:
            details[i] = event.detail
            continue
        bid_levels[i] = len(event.bids)
        counts[i] = len(event.bids) + len(event.asks)
        texts += event.bids
        texts += event.asks
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    prices, qtys = _parse(texts, offsets, kinds)
    columns: dict[str, Any] = {
        "kind": kinds, "recv_ns": recv,
        "event_time_ms": pa.array(times, pa.int64()), "first_update_id": pa.array(firsts, pa.int64()),
        "final_update_id": pa.array(finals, pa.int64()), "bid_levels": bid_levels,
    }
    list_offsets = pa.array(offsets.astype(np.int32))
    for name, (mantissa, decimals) in (("price", prices), ("qty", qtys)):
        values, scales = _common_scale(mantissa, decimals, offsets, name)
        columns[name] = pa.ListArray.from_arrays(list_offsets, pa.array(values), type=_LEVELS)
        columns[f"{name}_scale"] = scales.astype(np.int8)
        first, each = _decimals(decimals, offsets)
        columns[f"{name}_decimals"] = first
        columns[f"{name}_decimals_each"] = each
    columns["detail"] = pa.array(details, pa.string())
    columns["trade_id"] = pa.array(trade_ids, pa.int64())
    columns["trade_time_ms"] = pa.array(trade_times, pa.int64())
    columns["buyer_is_maker"] = pa.array(makers, pa.bool_())
    columns["prev_final_update_id"] = pa.array(prevs, pa.int64())
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def _parse(texts: list[Level], offsets: np.ndarray, kinds: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Mantissas and decimals of every level's price and quantity string."""
    out: list[list[tuple[int, int]]] = [[], []]
    for j, level in enumerate(texts):
        try:
            out[0].append(parse_decimal(level[0]))
            out[1].append(parse_decimal(level[1]))
        except PrecisionError as exc:
            ev = int(np.searchsorted(offsets, j, side="right")) - 1
            raise PrecisionError(f"event {ev} ({EventKind(int(kinds[ev])).name}): {exc}") from exc
    result = []
    for pairs in out:
        array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        result.append((np.ascontiguousarray(array[:, 0]), array[:, 1].astype(np.int64)))
    return tuple(result)


def _significant(mantissa: np.ndarray, decimals: np.ndarray) -> np.ndarray:
    """Decimals each value needs (negative for trailing zeros before the point; ``_NO_DIGITS`` for 0)."""
    rest = mantissa.copy()
    zeros = np.zeros(len(mantissa), dtype=np.int64)
    live = rest != 0
    for _ in range(MAX_DIGITS):
        step = live & (rest % 10 == 0)
        if not step.any():
            break
        zeros += step
        rest = np.where(step, rest // 10, rest)
    return np.where(live, decimals - zeros, _NO_DIGITS)


def _shift(mantissa: np.ndarray, decimals: np.ndarray, scale: np.ndarray) -> np.ndarray | None:
    """``mantissa * 10**(scale - decimals)`` (exact by choice of scale), or None if a value overflows int64."""
    up = np.clip(scale - decimals, 0, MAX_DIGITS)
    down = np.clip(decimals - scale, 0, MAX_DIGITS)
    if (mantissa > _LIMIT[up]).any():
        return None
    return mantissa // _POW10[down] * _POW10[up]


def _common_scale(mantissa: np.ndarray, decimals: np.ndarray, offsets: np.ndarray,
                  name: str) -> tuple[np.ndarray, np.ndarray]:
    """Values at one scale per event: the whole table's finest if every value fits int64 there, else
    each event's own (a lone event mixing ~1e10 and 1e-8 values cannot be stored)."""
    n = len(offsets) - 1
    sig = _significant(mantissa, decimals)
    finest = int(sig.max()) if sig.size and sig.max() > _NO_DIGITS else 0
    counts = np.diff(offsets)
    scales = np.full(n, finest, dtype=np.int64)
    values = _shift(mantissa, decimals, np.repeat(scales, counts))
    if values is not None:
        return values, scales
    has = counts > 0
    own = np.maximum.reduceat(sig, offsets[:-1][has]) if sig.size else np.empty(0, np.int64)
    scales[has] = np.where(own > _NO_DIGITS, own, 0)
    row_scales = np.repeat(scales, counts)
    up = np.clip(row_scales - decimals, 0, MAX_DIGITS)
    bad = np.flatnonzero(mantissa > _LIMIT[up])
    if bad.size:
        ev = int(np.searchsorted(offsets, bad[0], side="right")) - 1
        raise PrecisionError(f"event {ev}: its {name}s need more than 18 digits at one common scale; "
                             "such an event cannot be stored exactly")
    values = _shift(mantissa, decimals, row_scales)
    assert values is not None
    return values, scales


def _decimals(decimals: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """Per event: the decimals its strings share (0 without levels), and a per-level list only where they differ."""
    n = len(offsets) - 1
    counts = np.diff(offsets)
    has = counts > 0
    first = np.zeros(n, dtype=np.int8)
    first[has] = decimals[offsets[:-1][has]]
    differs = np.zeros(n, dtype=bool)
    if decimals.size:
        mismatch = decimals != np.repeat(first.astype(np.int64), counts)
        differs[has] = np.add.reduceat(mismatch, offsets[:-1][has]) > 0
    if not differs.any():
        return first, pa.nulls(n, _DECIMALS)
    each = [decimals[offsets[i]:offsets[i + 1]].tolist() if differs[i] else None for i in range(n)]
    return first, pa.array(each, _DECIMALS)


# --- table -> events ----------------------------------------------------------------------


def level_offsets(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list column's flat values (zero-copy where pyarrow allows) and offsets from 0, as int64."""
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy()
    if len(offsets) and (offsets[0] != 0 or offsets[-1] != len(values)):
        values = values[offsets[0]:offsets[-1]]
        offsets = offsets - offsets[0]
    return values, offsets.astype(np.int64)


def _mantissas(table: pa.Table, name: str) -> tuple[list[int], list[int]]:
    """The original strings' mantissas and decimals of every level of ``name``, as Python ints."""
    values, offsets = level_offsets(table.column(name))
    counts = np.diff(offsets)
    decimals = np.repeat(table.column(f"{name}_decimals").to_numpy().astype(np.int64), counts)
    each = table.column(f"{name}_decimals_each")
    if each.null_count < len(each):
        for i in np.flatnonzero(each.is_valid().to_numpy(zero_copy_only=False)):
            decimals[offsets[i]:offsets[i + 1]] = each[int(i)].as_py()
    scales = np.repeat(table.column(f"{name}_scale").to_numpy().astype(np.int64), counts)
    up = np.clip(decimals - scales, 0, MAX_DIGITS)
    down = np.clip(scales - decimals, 0, MAX_DIGITS)
    return (values // _POW10[down] * _POW10[up]).tolist(), decimals.tolist()


def table_to_events(table: pa.Table, symbol: str) -> Iterator[Event]:
    """Inverse of ``events_to_table``."""
    if not table.num_rows:
        return
    price, price_dec = _mantissas(table, "price")
    qty, qty_dec = _mantissas(table, "qty")
    _, offsets = level_offsets(table.column("price"))
    kinds = table.column("kind").to_pylist()
    recv = table.column("recv_ns").to_pylist()
    times, firsts = table.column("event_time_ms").to_pylist(), table.column("first_update_id").to_pylist()
    finals, details = table.column("final_update_id").to_pylist(), table.column("detail").to_pylist()
    bid_levels = table.column("bid_levels").to_pylist()
    trade_ids, trade_times = table.column("trade_id").to_pylist(), table.column("trade_time_ms").to_pylist()
    makers = table.column("buyer_is_maker").to_pylist()
    # Files written before futures have no pu column: every diff of them is spot.
    prevs = (table.column("prev_final_update_id").to_pylist() if "prev_final_update_id" in table.column_names
             else [None] * len(kinds))
    bounds = offsets.tolist()
    for i, kind in enumerate(kinds):
        k = EventKind(kind)  # the caller checked the kinds (``LAST_KIND``)
        start, end = bounds[i], bounds[i + 1]
        levels = [(format_decimal(price[r], price_dec[r]), format_decimal(qty[r], qty_dec[r]))
                  for r in range(start, end)]
        if k is EventKind.DEPTH:
            bids, asks = tuple(levels[: bid_levels[i]]), tuple(levels[bid_levels[i]:])
            yield DepthUpdate(symbol, times[i], firsts[i], finals[i], bids, asks, recv[i], prevs[i])
        elif k is EventKind.SNAPSHOT:
            bids, asks = tuple(levels[: bid_levels[i]]), tuple(levels[bid_levels[i]:])
            yield Snapshot(symbol, finals[i], bids, asks, recv[i])
        elif k is EventKind.TRADE:
            (p, q), = levels
            yield Trade(symbol, times[i], trade_ids[i], p, q, trade_times[i], makers[i], recv[i], firsts[i], finals[i])
        elif k is EventKind.BOOK_TICKER:
            (b, bq), (a, aq) = levels
            yield BookTicker(symbol, finals[i], b, bq, a, aq, recv[i], times[i])
        else:
            yield Marker(k, symbol, recv[i], details[i] or "{}")
