"""Segments: zstd Parquet files of raw events, one symbol and one UTC hour each.

Layout (see docs/FORMAT.md)::

    DATA/segments/symbol=BTCUSDT/date=2024-05-01/BTCUSDT-20240501T13-<first_recv_ns>-<digest>.parquet

One row per level change, event columns repeated on each of its rows (Parquet's run-length
and delta encodings make the repeats nearly free); an event with no levels (a marker, an
empty diff) is one row with a null side. Prices and quantities are integer mantissas plus the
number of decimals of the original string, so every event re-serializes byte-exactly.

Strategy: the file name is a function of the content (first receive time + a digest of the
event keys), so writing the same events twice -- a journal rolled again after a crash -- yields
the same file, and the atomic temp-file + rename means readers never see half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from acts.core.decimals import MAX_DIGITS, format_decimal, parse_decimal
from acts.core.errors import CorruptSegmentError, PrecisionError
from acts.core.events import DepthUpdate, Event, EventKind, Level, Marker, Side, Snapshot
from acts.core.timeunits import HOUR_NS
from acts.storage.fsync import fsync_dir
from acts.storage.layout import DATE_PREFIX, SYMBOL_PREFIX, DataLayout

__all__ = [
    "FORMAT_VERSION",
    "SCHEMA",
    "SegmentInfo",
    "write_segments",
    "SegmentWriter",
    "TEMP_PREFIX",
    "events_to_table",
    "table_to_events",
    "read_info",
    "read_events",
]

#: Bumped on any incompatible change; readers refuse newer versions.
FORMAT_VERSION = 1
_META_KEY = b"acts.segment"
ROW_GROUP_ROWS = 262_144
#: Segments being written are hidden temp files with this prefix until renamed.
TEMP_PREFIX = ".tmp-"


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


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What a segment's footer says about it, read without touching the data pages."""

    path: PurePath
    symbol: str
    events: int
    levels: int
    first_recv_ns: int
    last_recv_ns: int
    first_event_ms: int | None
    last_event_ms: int | None
    snapshot_recv_ns: tuple[int, ...]  # receive times of the snapshots inside
    price_pow10: int = 0  # stored price mantissas are the real ones / 10**price_pow10
    qty_pow10: int = 0


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


def _common_pow10(mantissas: np.ndarray) -> int:
    """The largest k with every non-zero mantissa a multiple of 10**k (trailing zeros of tick and lot sizes)."""
    values = mantissas[mantissas != 0]
    k = 0
    while k < MAX_DIGITS and values.size and not (values % 10 ** (k + 1)).any():
        k += 1
    return k


def _scale_down(table: pa.Table, price_pow10: int, qty_pow10: int) -> pa.Table:
    """Divide price and qty mantissas by the file's powers of ten (every non-zero one is a multiple)."""
    for name, k in (("price", price_pow10), ("qty", qty_pow10)):
        if k:
            column = table.column(name).combine_chunks()
            scaled = pa.array(column.fill_null(0).to_numpy() // 10**k, type=pa.int64(),
                              mask=column.is_null().to_numpy(zero_copy_only=False))
            table = table.set_column(table.schema.get_field_index(name), SCHEMA.field(name), scaled)
    return table


# --- files ------------------------------------------------------------------------------


def _hour_of(recv_ns: int) -> int:
    return recv_ns // HOUR_NS


def _digest_update(h: Any, event: Event) -> None:
    """Feed one event's key into the file name's digest."""
    if isinstance(event, DepthUpdate):
        h.update(b"D%d:%d:%d:%d;" % (event.recv_ns, event.event_time_ms, event.first_update_id,
                                    event.final_update_id))
    elif isinstance(event, Snapshot):
        h.update(b"S%d:%d;" % (event.recv_ns, event.last_update_id))
    else:
        h.update(b"M%d:%d:%s;" % (event.recv_ns, event.kind, event.detail.encode()))


def write_segments(data_dir: Path, symbol: str, events: Iterable[Event], compression_level: int = 9) -> list[Path]:
    """Write ``events`` (one symbol, in recorded order) as segments of one UTC hour each; return the paths.

    Idempotent: the same events give the same file names and contents.
    """
    writer = SegmentWriter(data_dir, symbol, compression_level)
    try:
        return writer.write(list(events)) + writer.close()
    except BaseException:
        writer.abort()
        raise


class SegmentWriter:
    """One symbol's segments, written piece by piece: a journal roll holds one piece in memory, not an hour.

    Strategy: each ``write`` call is a piece, appended to the open file as its own row groups. A
    new file starts when an event's receive hour is later than the open file's (so the recorded
    order is kept even where receive times step back a little: a snapshot answer journaled after
    diffs received just before it), or when a piece needs a finer mantissa scale than the file's,
    which is that of its first piece. Counts, times and the digest in the name accumulate as
    pieces arrive; at ``close`` the footer metadata is added and the temp file is renamed to its
    content-derived name. File contents depend only on the events and the piece boundaries.
    """

    def __init__(self, data_dir: Path, symbol: str, compression_level: int = 9) -> None:
        self.data_dir, self.symbol, self.compression_level = data_dir, symbol, compression_level
        self._open: _OpenSegment | None = None
        self.events = 0  # handed to ``write`` so far: what the finished files must hold together

    def write(self, events: Sequence[Event]) -> list[Path]:
        """Append ``events`` (in recorded order); returns the segments this completed."""
        self.events += len(events)
        done: list[Path] = []
        piece_start = 0
        for i, event in enumerate(events):
            if event.symbol != self.symbol:
                raise ValueError(f"event for {event.symbol} in a {self.symbol} segment")
            if self._open is not None and _hour_of(event.recv_ns) > self._open.hour:
                done += self._append(events[piece_start:i])
                done += self.close()
                piece_start = i
            if self._open is None:
                self._open = _OpenSegment(self.data_dir, self.symbol, event, self.compression_level)
        return done + self._append(events[piece_start:])

    def close(self) -> list[Path]:
        """Finish the open file, if any: footer metadata, fsync, rename."""
        segment, self._open = self._open, None
        return [segment.finish()] if segment is not None and segment.events else []

    def abort(self) -> None:
        """Drop the open file's temp file (after an error); finished segments stay."""
        segment, self._open = self._open, None
        if segment is not None:
            segment.discard()

    def _append(self, events: Sequence[Event]) -> list[Path]:
        """Write one piece into the open file, or into a new one if it needs a finer scale."""
        if not events:
            return []
        done: list[Path] = []
        table = events_to_table(events)
        powers = [_common_pow10(table.column(name).fill_null(0).to_numpy()) for name in ("price", "qty")]
        assert self._open is not None
        if self._open.events and (powers[0] < self._open.price_pow10 or powers[1] < self._open.qty_pow10):
            done += self.close()
            self._open = _OpenSegment(self.data_dir, self.symbol, events[0], self.compression_level)
        self._open.append(table, events, powers)
        return done


class _OpenSegment:
    """A segment being written: its temp file, the Parquet writer and what its footer will say."""

    def __init__(self, data_dir: Path, symbol: str, first: Event, compression_level: int) -> None:
        self.symbol, self.hour, self.first_recv_ns = symbol, _hour_of(first.recv_ns), first.recv_ns
        self.start = datetime.fromtimestamp(first.recv_ns / 1e9, UTC)
        self.directory = DataLayout(data_dir).segment_dir(symbol, self.start.strftime("%Y-%m-%d"))
        self.compression_level = compression_level
        self.tmp = self.directory / f"{TEMP_PREFIX}{symbol}-{first.recv_ns:019d}-{os.getpid()}"
        self.writer: pq.ParquetWriter | None = None
        self.price_pow10 = self.qty_pow10 = 0
        self.events = self.levels = 0
        self.last_recv_ns = first.recv_ns
        self.event_ms: list[int] = []  # [min, max] of E
        self.snapshot_recv_ns: list[int] = []
        self.digest = hashlib.blake2b(digest_size=6)

    def append(self, table: pa.Table, events: Sequence[Event], powers: list[int]) -> None:
        if self.writer is None:
            self.price_pow10, self.qty_pow10 = powers
            self.directory.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(
                self.tmp, SCHEMA, compression="zstd", compression_level=self.compression_level,
                use_dictionary=["kind", "side", "price_exp", "qty_exp", "detail"],
                # Byte-stream split groups the mantissas' high bytes (nearly constant within a book) so
                # zstd packs price/qty ~10% tighter than plain pages, and they decode as fast (docs/FORMAT.md).
                column_encoding={**{c: "DELTA_BINARY_PACKED" for c in ("recv_ns", "E", "U", "u")},
                                 "price": "BYTE_STREAM_SPLIT", "qty": "BYTE_STREAM_SPLIT"},
            )
        table = _scale_down(table, self.price_pow10, self.qty_pow10)
        # Row groups end on event boundaries, so each one decodes on its own.
        for first, stop in _row_groups(table.column("kind").is_valid().to_numpy(zero_copy_only=False)):
            self.writer.write_table(table.slice(first, stop - first), row_group_size=stop - first)
        self.events += len(events)
        self.levels += table.num_rows - table.column("side").null_count
        self.last_recv_ns = events[-1].recv_ns
        for event in events:
            _digest_update(self.digest, event)
            if isinstance(event, DepthUpdate):
                e = event.event_time_ms
                self.event_ms = [min(self.event_ms[0], e), max(self.event_ms[1], e)] if self.event_ms else [e, e]
            elif isinstance(event, Snapshot):
                self.snapshot_recv_ns.append(event.recv_ns)

    def finish(self) -> Path:
        assert self.writer is not None
        meta = {
            "format_version": FORMAT_VERSION,
            "symbol": self.symbol,
            "events": self.events,
            "levels": self.levels,
            "first_recv_ns": self.first_recv_ns,
            "last_recv_ns": self.last_recv_ns,
            "first_event_ms": self.event_ms[0] if self.event_ms else None,
            "last_event_ms": self.event_ms[1] if self.event_ms else None,
            "snapshot_recv_ns": self.snapshot_recv_ns,
            "price_pow10": self.price_pow10,
            "qty_pow10": self.qty_pow10,
        }
        self.writer.add_key_value_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode()})
        self.writer.close()
        final = self.directory / (f"{self.symbol}-{self.start:%Y%m%dT%H}-{self.first_recv_ns:019d}-"
                                  f"{self.digest.hexdigest()}.parquet")
        with open(self.tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, final)
        fsync_dir(self.directory)
        return final

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            if self.writer is not None:
                self.writer.close()
        self.tmp.unlink(missing_ok=True)


def _row_groups(event_starts: Any) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` row ranges of about ``ROW_GROUP_ROWS`` rows that never split an event."""
    n = len(event_starts)
    start = 0
    while start < n:
        stop = min(start + ROW_GROUP_ROWS, n)
        while stop < n and not event_starts[stop]:
            stop += 1
        yield start, stop
        start = stop


def read_info(path: PurePath, filesystem: pafs.FileSystem | None = None) -> SegmentInfo:
    """The footer metadata of a segment; ``CorruptSegmentError`` if it is not a readable segment.

    ``filesystem``: a pyarrow filesystem (S3, ...) that ``path`` lives in; None for local files.
    """
    try:
        footer = pq.read_metadata(str(path), filesystem=filesystem)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSegmentError(f"{path}: not a readable Parquet segment ({exc}); move it aside or run "
                                  "'acts verify'") from exc
    # The file's key-value metadata (written at close), not the Arrow schema's copy taken at open.
    raw = (footer.metadata or {}).get(_META_KEY)
    if raw is None:
        raise CorruptSegmentError(f"{path}: Parquet file without ACTS segment metadata; move it aside")
    info = _footer_info(path if filesystem is not None else Path(path), raw)
    _check_placement(path, info)
    return info


#: Footer fields and their types (``None`` allowed where noted): anything else is a corrupt footer.
_FOOTER_FIELDS: dict[str, tuple[type, ...]] = {
    "symbol": (str,), "events": (int,), "levels": (int,), "first_recv_ns": (int,), "last_recv_ns": (int,),
    "first_event_ms": (int, type(None)), "last_event_ms": (int, type(None)), "snapshot_recv_ns": (list,),
}


def _footer_info(path: PurePath, raw: bytes) -> SegmentInfo:
    """``SegmentInfo`` from the footer's JSON; ``CorruptSegmentError`` for anything that is not one."""
    try:
        meta = json.loads(raw)
    except ValueError as exc:  # not JSON, or not UTF-8
        raise CorruptSegmentError(f"{path}: its footer is not JSON ({exc}); the file is damaged, move it "
                                  "aside") from None
    if not isinstance(meta, dict):
        raise CorruptSegmentError(f"{path}: its footer is not a JSON object; the file is damaged, move it aside")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise CorruptSegmentError(f"{path}: its footer has no valid format version ({version!r}); the file is "
                                  "damaged, move it aside")
    if version > FORMAT_VERSION:
        raise CorruptSegmentError(
            f"{path}: segment format {version} is newer than this ACTS ({FORMAT_VERSION}); upgrade"
        )
    for key, types in _FOOTER_FIELDS.items():
        # bool is an int to Python, never to a footer.
        if not isinstance(meta.get(key), types) or isinstance(meta.get(key), bool):
            raise CorruptSegmentError(f"{path}: footer field {key!r} is {meta.get(key)!r}; the file is damaged, "
                                      "move it aside")
    snapshots = meta["snapshot_recv_ns"]
    powers = (meta.get("price_pow10", 0), meta.get("qty_pow10", 0))
    if not all(type(t) is int for t in snapshots) or not all(type(k) is int and 0 <= k <= MAX_DIGITS
                                                               for k in powers):
        raise CorruptSegmentError(f"{path}: footer snapshot times or scales are not what a segment holds; the "
                                  "file is damaged, move it aside")
    return SegmentInfo(
        path, meta["symbol"], meta["events"], meta["levels"], meta["first_recv_ns"], meta["last_recv_ns"],
        meta["first_event_ms"], meta["last_event_ms"], tuple(snapshots), powers[0], powers[1],
    )


def _check_placement(path: PurePath, info: SegmentInfo) -> None:
    """``CorruptSegmentError`` if the folders or the file name say another symbol or hour than the footer.

    Strategy: readers find a segment by its path (``symbol=S/date=D/S-YYYYMMDDTHH-<first_recv_ns>-...``)
    and replay it *as* that symbol, so a file whose path lies -- a BTC segment copied into
    ``symbol=ETHUSDT/`` -- would replay as ETH at BTC's prices. Each part of the path that makes a
    claim must agree with the footer; a path outside the layout claims nothing.
    """
    hour = datetime.fromtimestamp(info.first_recv_ns / 1e9, UTC)  # as the writer names it
    claims: list[tuple[str, str, str]] = []  # (what, path says, footer says)
    folder, parent = path.parent.name, path.parent.parent.name
    if folder.startswith(DATE_PREFIX):
        claims.append(("date folder", folder.removeprefix(DATE_PREFIX), f"{hour:%Y-%m-%d}"))
    if parent.startswith(SYMBOL_PREFIX):
        claims.append(("symbol folder", parent.removeprefix(SYMBOL_PREFIX), info.symbol))
    parts = path.name.removesuffix(".parquet").split("-")
    if len(parts) == 4 and path.name.endswith(".parquet"):
        claims += [("file name's symbol", parts[0], info.symbol), ("file name's hour", parts[1], f"{hour:%Y%m%dT%H}"),
                   ("file name's first receive time", str(int(parts[2])) if parts[2].isdigit() else parts[2],
                    str(info.first_recv_ns))]
    for what, said, footer in claims:
        if said != footer:
            raise CorruptSegmentError(
                f"{path}: its {what} says {said} but its footer says {footer}; a segment filed in the wrong "
                f"place is not replayed -- move it back under "
                f"{SYMBOL_PREFIX}{info.symbol}/{DATE_PREFIX}{hour:%Y-%m-%d}/ or aside"
            )


def read_events(path: PurePath, symbol: str | None = None,
                filesystem: pafs.FileSystem | None = None) -> Iterator[Event]:
    """Every event of a segment, streamed one row group at a time."""
    info = read_info(path, filesystem)
    try:
        reader = pq.ParquetFile(str(path), filesystem=filesystem)
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i, columns=SCHEMA.names)
            yield from table_to_events(table, symbol or info.symbol, info.price_pow10, info.qty_pow10)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSegmentError(f"{path}: cannot read data ({exc}); move it aside or run 'acts verify'") from exc
