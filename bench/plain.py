"""The bench's format-independent limit: the same level updates as plain, non-null int64 columns.

``levels.parquet``: one row per level update -- ``event`` (the event's index), ``side`` (0 bid,
1 ask), ``price`` and ``qty`` (exact integers at ``BOOK_SCALE``). ``events.parquet``: one row per
event, row number = event index -- ``event_time`` (E; 0 for a snapshot), ``first_update_id``
(U; 0 for a snapshot), ``final_update_id`` (u, or the snapshot's lastUpdateId), ``recv_time`` (ns).
zstd level 3, pyarrow's default encodings. Decoding both into numpy is the "limit" row: a
target measured against it cannot move by making ACTS's own format slower to decode.
"""

from __future__ import annotations

from array import array
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from acts.core.decimals import to_book
from acts.core.events import DepthUpdate, Event, Snapshot

__all__ = ["LEVELS_FILE", "EVENTS_FILE", "PlainWriter", "decode_plain"]

LEVELS_FILE = "levels.parquet"
EVENTS_FILE = "events.parquet"
_LEVEL_COLUMNS = ("event", "side", "price", "qty")
_EVENT_COLUMNS = ("event_time", "first_update_id", "final_update_id", "recv_time")
_ROW_GROUP = 1_000_000  # level rows per row group, as ACTS's segments hold at most ~1 M


def _schema(names: tuple[str, ...]) -> pa.Schema:
    return pa.schema([pa.field(n, pa.int64(), nullable=False) for n in names])


class PlainWriter:
    """Appends events' levels; writes a row group per ``_ROW_GROUP`` level rows."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        options = {"compression": "zstd", "compression_level": 3}
        self._levels = pq.ParquetWriter(folder / LEVELS_FILE, _schema(_LEVEL_COLUMNS), **options)
        self._events = pq.ParquetWriter(folder / EVENTS_FILE, _schema(_EVENT_COLUMNS), **options)
        self._level_cols: list[array[int]] = [array("q") for _ in _LEVEL_COLUMNS]
        self._event_cols: list[array[int]] = [array("q") for _ in _EVENT_COLUMNS]
        self._n_events = 0

    def add(self, event: Event) -> None:
        if isinstance(event, DepthUpdate):
            head = (event.event_time_ms, event.first_update_id, event.final_update_id, event.recv_ns)
        elif isinstance(event, Snapshot):
            head = (0, 0, event.last_update_id, event.recv_ns)
        else:
            return  # markers carry no levels
        for col, value in zip(self._event_cols, head, strict=True):
            col.append(value)
        index, (ev, side, price, qty) = self._n_events, self._level_cols
        self._n_events += 1
        for flag, levels in ((0, event.bids), (1, event.asks)):
            for p, q in levels:
                ev.append(index)
                side.append(flag)
                price.append(to_book(p))
                qty.append(to_book(q))
        if len(ev) >= _ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        for writer, names, cols in ((self._levels, _LEVEL_COLUMNS, self._level_cols),
                                    (self._events, _EVENT_COLUMNS, self._event_cols)):
            if len(cols[0]):
                writer.write_table(pa.table({n: pa.array(c, pa.int64()) for n, c in zip(names, cols, strict=True)},
                                            schema=_schema(names)))
            for c in cols:
                del c[:]

    def close(self) -> None:
        self._flush()
        self._levels.close()
        self._events.close()


def decode_plain(folder: Path) -> int:
    """Bare decode of both tables into numpy, row group by row group; returns the level rows."""
    levels = 0
    for name in (EVENTS_FILE, LEVELS_FILE):
        reader = pq.ParquetFile(folder / name)
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i)
            for column in table.columns:
                column.to_numpy()
            if name == LEVELS_FILE:
                levels += table.num_rows
    return levels


def plain_bytes(folder: Path) -> int:
    return sum((folder / name).stat().st_size for name in (LEVELS_FILE, EVENTS_FILE))
