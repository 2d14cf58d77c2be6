"""Segment format version 1 (still read, and written only on request): one row per level change.

Event fields sit on an event's first row only (a non-null ``kind`` starts an event); prices and
quantities are integer mantissas divided by a file-wide power of ten (footer ``price_pow10``,
``qty_pow10``) plus the number of decimals of each original string. See docs/FORMAT.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from acts.core.decimals import MAX_DIGITS, format_decimal, parse_decimal
from acts.core.errors import PrecisionError
from acts.core.events import DepthUpdate, Event, EventKind, Level, Marker, Side, Snapshot

__all__ = ["SCHEMA", "events_to_table", "table_to_events", "common_pow10", "scale_down", "row_groups",
           "WRITE_OPTIONS", "LAST_KIND"]

ROW_GROUP_ROWS = 262_144
#: A version 1 file holds kinds 0 ..= this (no trades, no bookTickers); a reader refuses any other.
LAST_KIND = int(EventKind.RESTART)

SCHEMA = pa.schema(
    [
        # Event columns are set on an event's first row only (null on its other rows): a row with a
        # kind starts an event. Values are stored once per event instead of once per level.
        pa.field("kind", pa.int8()),  # EventKind
        pa.field("recv_ns", pa.int64()),  # local receive time, UTC ns
        pa.field("E", pa.int64()),  # exchange event time, ms (diffs)
        pa.field("U", pa.int64()),  # first update id (diffs)
        pa.field("u", pa.int64()),  # final update id (diffs) / lastUpdateId (snapshots)
        pa.field("side", pa.int8()),  # Side, null for a row without a level
        pa.field("price", pa.int64()),  # mantissa of the price string / 10**price_pow10 (footer)
        pa.field("price_exp", pa.int8()),  # its number of decimals
        pa.field("qty", pa.int64()),  # the same with qty_pow10
        pa.field("qty_exp", pa.int8()),
        pa.field("detail", pa.string()),  # marker details (JSON), null otherwise
    ]
)


#: ``pq.ParquetWriter`` options of version 1 files.
WRITE_OPTIONS: dict[str, Any] = {
    "use_dictionary": ["kind", "side", "price_exp", "qty_exp", "detail"],
    # Byte-stream split groups the mantissas' high bytes (nearly constant within a book) so zstd packs
    # price/qty ~10% tighter than plain pages.
    "column_encoding": {**{c: "DELTA_BINARY_PACKED" for c in ("recv_ns", "E", "U", "u")},
                        "price": "BYTE_STREAM_SPLIT", "qty": "BYTE_STREAM_SPLIT"},
}


# --- events -> columns ------------------------------------------------------------------


class _Columns:
    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}

    def row(self, ev: int, kind: int, recv_ns: int, e: Any, first: Any, final: Any, detail: Any = None,
            side: Any = None, level: Level | None = None, head: bool = True) -> None:
        c = self.cols
        c["kind"].append(kind if head else None)
        c["recv_ns"].append(recv_ns if head else None)
        c["E"].append(e if head else None)
        c["U"].append(first if head else None)
        c["u"].append(final if head else None)
        c["side"].append(side)
        c["detail"].append(detail if head else None)
        if level is None:
            for name in ("price", "price_exp", "qty", "qty_exp"):
                c[name].append(None)
            return
        try:
            price, price_exp = parse_decimal(level[0])
            qty, qty_exp = parse_decimal(level[1])
        except PrecisionError as exc:
            raise PrecisionError(f"event {ev} ({EventKind(kind).name}): {exc}") from exc
        c["price"].append(price)
        c["price_exp"].append(price_exp)
        c["qty"].append(qty)
        c["qty_exp"].append(qty_exp)

    def event(self, ev: int, kind: int, recv_ns: int, e: Any, first: Any, final: Any,
              bids: Sequence[Level], asks: Sequence[Level]) -> None:
        if not bids and not asks:
            self.row(ev, kind, recv_ns, e, first, final)
        for i, level in enumerate(bids):
            self.row(ev, kind, recv_ns, e, first, final, side=Side.BID, level=level, head=i == 0)
        for i, level in enumerate(asks):
            self.row(ev, kind, recv_ns, e, first, final, side=Side.ASK, level=level, head=i == 0 and not bids)


def events_to_table(events: Sequence[Event]) -> pa.Table:
    """Columns for ``events`` (all of one symbol), in the order given, mantissas not yet scaled down."""
    out = _Columns()
    for ev, event in enumerate(events):
        if isinstance(event, DepthUpdate):
            out.event(ev, EventKind.DEPTH, event.recv_ns, event.event_time_ms, event.first_update_id,
                      event.final_update_id, event.bids, event.asks)
        elif isinstance(event, Snapshot):
            out.event(ev, EventKind.SNAPSHOT, event.recv_ns, None, None, event.last_update_id,
                      event.bids, event.asks)
        elif not isinstance(event, Marker):
            raise ValueError(f"{event.kind.name.lower()} events cannot be written in segment format 1 (read-only "
                             "legacy, no such kind); write format 2, the default")
        else:
            out.row(ev, event.kind, event.recv_ns, None, None, None, detail=event.detail)
    return pa.Table.from_pydict(out.cols, schema=SCHEMA)


# --- columns -> events ------------------------------------------------------------------


def table_to_events(table: pa.Table, symbol: str, price_pow10: int = 0, qty_pow10: int = 0) -> Iterator[Event]:
    """Inverse of ``events_to_table`` (the table must hold whole events)."""
    for batch in table.combine_chunks().to_batches():
        yield from _batch_events(batch, symbol, 10**price_pow10, 10**qty_pow10)


def _batch_events(batch: pa.RecordBatch, symbol: str, price_unit: int, qty_unit: int) -> Iterator[Event]:
    cols = {name: batch.column(name).to_pylist() for name in SCHEMA.names}
    kind, recv, side = cols["kind"], cols["recv_ns"], cols["side"]
    price, price_exp, qty, qty_exp = cols["price"], cols["price_exp"], cols["qty"], cols["qty_exp"]
    n = len(kind)
    start = 0
    while start < n:
        end = start + 1
        while end < n and kind[end] is None:
            end += 1
        bids: list[Level] = []
        asks: list[Level] = []
        for i in range(start, end):
            if side[i] is not None:
                level = (format_decimal(price[i] * price_unit, price_exp[i]),
                         format_decimal(qty[i] * qty_unit, qty_exp[i]))
                (bids if side[i] == Side.BID else asks).append(level)
        k = EventKind(kind[start])
        if k is EventKind.DEPTH:
            yield DepthUpdate(symbol, cols["E"][start], cols["U"][start], cols["u"][start], tuple(bids),
                              tuple(asks), recv[start])
        elif k is EventKind.SNAPSHOT:
            yield Snapshot(symbol, cols["u"][start], tuple(bids), tuple(asks), recv[start])
        else:
            yield Marker(k, symbol, recv[start], cols["detail"][start] or "{}")
        start = end


def common_pow10(mantissas: np.ndarray) -> int:
    """The largest k with every non-zero mantissa a multiple of 10**k (trailing zeros of tick and lot sizes)."""
    values = mantissas[mantissas != 0]
    k = 0
    while k < MAX_DIGITS and values.size and not (values % 10 ** (k + 1)).any():
        k += 1
    return k


def scale_down(table: pa.Table, price_pow10: int, qty_pow10: int) -> pa.Table:
    """Divide price and qty mantissas by the file's powers of ten (every non-zero one is a multiple)."""
    for name, k in (("price", price_pow10), ("qty", qty_pow10)):
        if k:
            column = table.column(name).combine_chunks()
            scaled = pa.array(column.fill_null(0).to_numpy() // 10**k, type=pa.int64(),
                              mask=column.is_null().to_numpy(zero_copy_only=False))
            table = table.set_column(table.schema.get_field_index(name), SCHEMA.field(name), scaled)
    return table


def row_groups(event_starts: Any) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` row ranges of about ``ROW_GROUP_ROWS`` rows that never split an event."""
    n = len(event_starts)
    start = 0
    while start < n:
        stop = min(start + ROW_GROUP_ROWS, n)
        while stop < n and not event_starts[stop]:
            stop += 1
        yield start, stop
        start = stop
