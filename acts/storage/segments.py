"""Segments: zstd Parquet files of raw events, one symbol and one UTC hour each.

Layout (see docs/FORMAT.md)::

    DATA/segments/symbol=BTCUSDT/date=2024-05-01/BTCUSDT-20240501T13-<first_recv_ns>-<digest>.parquet
    DATA/segments/market=usdm/symbol=BTCUSDT/date=...   (USD-M futures; footer ``"market": "usdm"``)

Format version 2 (``segments_v2``): one row per event, its levels as Parquet lists of scaled
integers plus the decimals of the original strings, so every event re-serializes byte-exactly.
Version 1 files (``segments_v1``: one row per level change) stay readable everywhere.

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
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from acts.core.decimals import MAX_DIGITS
from acts.core.errors import CorruptSegmentError
from acts.core.events import BookTicker, DepthUpdate, Event, Snapshot, Trade
from acts.core.markets import Market
from acts.core.timeunits import HOUR_NS
from acts.storage import segments_v1, segments_v2
from acts.storage.fsync import fsync_dir
from acts.storage.layout import DATE_PREFIX, MARKET_PREFIX, SYMBOL_PREFIX, DataLayout

__all__ = [
    "FORMAT_VERSION",
    "SCHEMA",
    "SegmentInfo",
    "write_segments",
    "SegmentWriter",
    "TEMP_PREFIX",
    "read_info",
    "open_segment",
    "column_bounds",
    "read_events",
    "read_row_group",
]

#: Bumped on any incompatible change; readers refuse newer versions. Written by default; 1 is still read.
FORMAT_VERSION = 2
#: The columns of a version 2 file.
SCHEMA = segments_v2.SCHEMA
_META_KEY = b"acts.segment"
#: About this many level updates per row group (events are never split).
ROW_GROUP_ROWS = 262_144
#: Segments being written are hidden temp files with this prefix until renamed.
TEMP_PREFIX = ".tmp-"


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
    price_pow10: int = 0  # version 1: stored price mantissas are the real ones / 10**price_pow10
    qty_pow10: int = 0
    format_version: int = FORMAT_VERSION
    market: Market = Market.SPOT  # footer key ``market``; absent (every file before futures) means spot


# --- files ------------------------------------------------------------------------------


def _hour_of(recv_ns: int) -> int:
    return recv_ns // HOUR_NS


def _digest_update(h: Any, event: Event) -> None:
    """Feed one event's key into the file name's digest."""
    if isinstance(event, DepthUpdate):
        h.update(b"D%d:%d:%d:%d;" % (event.recv_ns, event.event_time_ms, event.first_update_id,
                                    event.final_update_id))
        if event.prev_final_update_id is not None:  # futures only: spot names stay what they were
            h.update(b"P%d;" % event.prev_final_update_id)
    elif isinstance(event, Snapshot):
        h.update(b"S%d:%d;" % (event.recv_ns, event.last_update_id))
    elif isinstance(event, Trade):
        h.update(b"T%d:%d:%d:%d:%d:%s:%s;" % (event.recv_ns, event.event_time_ms, event.trade_id, event.trade_time_ms,
                                             event.buyer_is_maker, event.price.encode(), event.qty.encode()))
    elif isinstance(event, BookTicker):
        h.update(b"B%d:%d:%d:%s:%s:%s:%s;" % (event.recv_ns, event.update_id, -1 if event.event_time_ms is None
                                             else event.event_time_ms, event.bid_price.encode(),
                                             event.bid_qty.encode(), event.ask_price.encode(),
                                             event.ask_qty.encode()))
    else:
        h.update(b"M%d:%d:%s;" % (event.recv_ns, event.kind, event.detail.encode()))


def write_segments(data_dir: Path, symbol: str, events: Iterable[Event], compression_level: int | None = None,
                   format_version: int = FORMAT_VERSION, market: Market = Market.SPOT) -> list[Path]:
    """Write ``events`` (one symbol, in recorded order) as segments of one UTC hour each; return the paths.

    Idempotent: the same events give the same file names and contents. ``format_version=1`` writes the
    old format (for tests and comparisons; ACTS itself writes version 2).
    """
    writer = SegmentWriter(data_dir, symbol, compression_level, format_version, market)
    try:
        return writer.write(list(events)) + writer.close()
    except BaseException:
        writer.abort()
        raise


#: zstd level per format version (measured: docs/FORMAT.md).
_COMPRESSION = {1: 9, 2: 9}
#: ``pq.ParquetWriter`` options of version 2 files (measured: docs/FORMAT.md).
_V2_OPTIONS: dict[str, Any] = {
    "use_dictionary": ["kind", "bid_levels", "price_scale", "qty_scale", "price_decimals", "qty_decimals",
                       "price_decimals_each.list.element", "qty_decimals_each.list.element", "detail"],
    "column_encoding": {**{c: "DELTA_BINARY_PACKED"
                           for c in ("recv_ns", "event_time_ms", "first_update_id", "final_update_id", "trade_id",
                                     "trade_time_ms", "prev_final_update_id")},
                        **{f"{c}.list.element": "BYTE_STREAM_SPLIT" for c in segments_v2.LEVEL_COLUMNS}},
}


class SegmentWriter:
    """One symbol's segments, written piece by piece: a journal roll holds one piece in memory, not an hour.

    Strategy: each ``write`` call is a piece, appended to the open file as its own row groups. A
    new file starts when an event's receive hour is later than the open file's (so the recorded
    order is kept even where receive times step back a little: a snapshot answer journaled after
    diffs received just before it); in version 1 also when a piece needs a finer mantissa scale
    than the file's (version 2 keeps the scale per event). Counts, times and the digest in the
    name accumulate as pieces arrive; at ``close`` the footer metadata is added and the temp file
    is renamed to its content-derived name. File contents depend only on the events and the piece
    boundaries. The writer only ever creates files: nothing is appended to an existing segment.
    """

    def __init__(self, data_dir: Path, symbol: str, compression_level: int | None = None,
                 format_version: int = FORMAT_VERSION, market: Market = Market.SPOT) -> None:
        if format_version not in _COMPRESSION:
            raise ValueError(f"segment format {format_version} cannot be written; use 1 or 2")
        if market is not Market.SPOT and format_version == 1:
            raise ValueError(f"{market} segments need format 2 (version 1 has no pu column)")
        self.data_dir, self.symbol, self.version, self.market = data_dir, symbol, format_version, market
        self.compression_level = _COMPRESSION[format_version] if compression_level is None else compression_level
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
            if isinstance(event, DepthUpdate) and (event.prev_final_update_id is None) != (self.market is Market.SPOT):
                raise ValueError(f"a diff {'with' if self.market is Market.SPOT else 'without'} pu in a "
                                 f"{self.market} segment of {self.symbol}: spot and USD-M futures never mix")
            if self._open is not None and _hour_of(event.recv_ns) > self._open.hour:
                done += self._append(events[piece_start:i])
                done += self.close()
                piece_start = i
            if self._open is None:
                self._open = self._new(event)
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

    def _new(self, first: Event) -> _OpenSegment:
        return _OpenSegment(self.data_dir, self.symbol, first, self.compression_level, self.version, self.market)

    def _append(self, events: Sequence[Event]) -> list[Path]:
        """Write one piece into the open file (version 1: into a new one if it needs a finer scale)."""
        if not events:
            return []
        assert self._open is not None
        if self.version == 2:
            self._open.append_v2(segments_v2.events_to_table(events), events)
            return []
        done: list[Path] = []
        table = segments_v1.events_to_table(events)
        powers = [segments_v1.common_pow10(table.column(name).fill_null(0).to_numpy()) for name in ("price", "qty")]
        if self._open.events and (powers[0] < self._open.price_pow10 or powers[1] < self._open.qty_pow10):
            done += self.close()
            self._open = self._new(events[0])
        self._open.append_v1(table, events, powers)
        return done


class _OpenSegment:
    """A segment being written: its temp file, the Parquet writer and what its footer will say."""

    def __init__(self, data_dir: Path, symbol: str, first: Event, compression_level: int, version: int,
                 market: Market = Market.SPOT) -> None:
        self.symbol, self.hour, self.first_recv_ns = symbol, _hour_of(first.recv_ns), first.recv_ns
        self.market = market
        self.start = datetime.fromtimestamp(first.recv_ns / 1e9, UTC)
        self.directory = DataLayout(data_dir).segment_dir(symbol, self.start.strftime("%Y-%m-%d"), market)
        self.compression_level, self.version = compression_level, version
        self.tmp = self.directory / f"{TEMP_PREFIX}{symbol}-{first.recv_ns:019d}-{os.getpid()}"
        self.writer: pq.ParquetWriter | None = None
        self.price_pow10 = self.qty_pow10 = 0
        self.events = self.levels = 0
        self.last_recv_ns = first.recv_ns
        self.event_ms: list[int] = []  # [min, max] of E
        self.snapshot_recv_ns: list[int] = []
        self.digest = hashlib.blake2b(digest_size=6)

    def _writer(self, schema: pa.Schema, options: dict[str, Any]) -> pq.ParquetWriter:
        if self.writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd",
                                           compression_level=self.compression_level, **options)
        return self.writer

    def append_v2(self, table: pa.Table, events: Sequence[Event]) -> None:
        writer = self._writer(segments_v2.SCHEMA, _V2_OPTIONS)
        # Row groups of about ROW_GROUP_ROWS levels, never splitting an event (one row each).
        _, offsets = segments_v2.level_offsets(table.column("price"))
        first = 0
        while first < table.num_rows:
            stop = int(np.searchsorted(offsets, offsets[first] + ROW_GROUP_ROWS, side="right")) - 1
            stop = min(max(stop, first + 1), table.num_rows)
            writer.write_table(table.slice(first, stop - first), row_group_size=stop - first)
            first = stop
        self._count(events, int(offsets[-1]))

    def append_v1(self, table: pa.Table, events: Sequence[Event], powers: list[int]) -> None:
        if self.writer is None:
            self.price_pow10, self.qty_pow10 = powers
        writer = self._writer(segments_v1.SCHEMA, segments_v1.WRITE_OPTIONS)
        table = segments_v1.scale_down(table, self.price_pow10, self.qty_pow10)
        # Row groups end on event boundaries, so each one decodes on its own.
        for first, stop in segments_v1.row_groups(table.column("kind").is_valid().to_numpy(zero_copy_only=False)):
            writer.write_table(table.slice(first, stop - first), row_group_size=stop - first)
        self._count(events, table.num_rows - table.column("side").null_count)

    def _count(self, events: Sequence[Event], levels: int) -> None:
        self.events += len(events)
        self.levels += levels
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
            "format_version": self.version,
            "symbol": self.symbol,
            "events": self.events,
            "levels": self.levels,
            "first_recv_ns": self.first_recv_ns,
            "last_recv_ns": self.last_recv_ns,
            "first_event_ms": self.event_ms[0] if self.event_ms else None,
            "last_event_ms": self.event_ms[1] if self.event_ms else None,
            "snapshot_recv_ns": self.snapshot_recv_ns,
        }
        if self.version == 1:
            meta.update(price_pow10=self.price_pow10, qty_pow10=self.qty_pow10)
        if self.market is not Market.SPOT:  # spot footers stay byte-identical to those before markets
            meta["market"] = str(self.market)
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


def read_info(path: PurePath, filesystem: pafs.FileSystem | None = None) -> SegmentInfo:
    """The footer metadata of a segment; ``CorruptSegmentError`` if it is not a readable segment.

    ``filesystem``: a pyarrow filesystem (S3, ...) that ``path`` lives in; None for local files.
    """
    try:
        footer = pq.read_metadata(str(path), filesystem=filesystem)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc
    return _info(path, footer, filesystem)


def open_segment(path: PurePath, filesystem: pafs.FileSystem | None = None) -> tuple[SegmentInfo, pq.ParquetFile]:
    """A segment's footer metadata (as ``read_info``) and the open file to read its row groups from.

    The footer is parsed once, for both: a reader that needs the data pays no second footer read.
    The caller closes the file (``with reader:``).
    """
    try:
        reader = pq.ParquetFile(str(path), filesystem=filesystem)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc
    try:
        return _info(path, reader.metadata, filesystem), reader
    except BaseException:
        reader.close()
        raise


def _unreadable(path: PurePath, exc: Exception) -> CorruptSegmentError:
    return CorruptSegmentError(f"{path}: not a readable Parquet segment ({exc}); move it aside or run 'acts verify'")


def _info(path: PurePath, footer: pq.FileMetaData, filesystem: pafs.FileSystem | None) -> SegmentInfo:
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
    market_name = meta.get("market", Market.SPOT.value)
    if market_name not in {m.value for m in Market}:
        raise CorruptSegmentError(f"{path}: footer market {market_name!r} is none of "
                                  f"{', '.join(m.value for m in Market)}; upgrade ACTS or move the file aside")
    powers = (meta.get("price_pow10", 0), meta.get("qty_pow10", 0))
    if not all(type(t) is int for t in snapshots) or not all(type(k) is int and 0 <= k <= MAX_DIGITS
                                                               for k in powers):
        raise CorruptSegmentError(f"{path}: footer snapshot times or scales are not what a segment holds; the "
                                  "file is damaged, move it aside")
    return SegmentInfo(
        path, meta["symbol"], meta["events"], meta["levels"], meta["first_recv_ns"], meta["last_recv_ns"],
        meta["first_event_ms"], meta["last_event_ms"], tuple(snapshots), powers[0], powers[1], version,
        Market(market_name),
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
    folder, parent, above = path.parent.name, path.parent.parent.name, path.parent.parent.parent.name
    if folder.startswith(DATE_PREFIX):
        claims.append(("date folder", folder.removeprefix(DATE_PREFIX), f"{hour:%Y-%m-%d}"))
    if parent.startswith(SYMBOL_PREFIX):
        claims.append(("symbol folder", parent.removeprefix(SYMBOL_PREFIX), info.symbol))
        # Inside the layout the market folder claims too: none above symbol= means spot.
        said = above.removeprefix(MARKET_PREFIX) if above.startswith(MARKET_PREFIX) else Market.SPOT.value
        claims.append(("market folder", said, info.market.value))
    parts = path.name.removesuffix(".parquet").split("-")
    if len(parts) == 4 and path.name.endswith(".parquet"):
        claims += [("file name's symbol", parts[0], info.symbol), ("file name's hour", parts[1], f"{hour:%Y%m%dT%H}"),
                   ("file name's first receive time", str(int(parts[2])) if parts[2].isdigit() else parts[2],
                    str(info.first_recv_ns))]
    for what, said, footer in claims:
        if said != footer:
            raise CorruptSegmentError(
                f"{path}: its {what} says {said} but its footer says {footer}; a segment filed in the wrong "
                f"place is not replayed -- move it back under {_market_part(info.market)}"
                f"{SYMBOL_PREFIX}{info.symbol}/{DATE_PREFIX}{hour:%Y-%m-%d}/ or aside"
            )


def _market_part(market: Market) -> str:
    return "" if market is Market.SPOT else f"{MARKET_PREFIX}{market}/"


def read_row_group(reader: pq.ParquetFile, i: int, info: SegmentInfo, columns: list[str] | None = None) -> pa.Table:
    """Row group ``i`` of a segment (``columns`` of its format's schema; all by default), its kinds
    checked: ``CorruptSegmentError`` for a kind this ACTS does not know. A version 2 file written before
    trades were stored lacks their columns: they read as nulls."""
    schema = segments_v1.SCHEMA if info.format_version == 1 else segments_v2.SCHEMA
    wanted = columns or schema.names
    present = set(reader.schema_arrow.names)
    read = [name for name in wanted if name in present or name not in segments_v2.OPTIONAL_COLUMNS]
    if "kind" not in read:
        read.append("kind")
    table = reader.read_row_group(i, columns=read)
    _check_kinds(table, info, column_bounds(reader.metadata, i, "kind"))
    for name in wanted:
        if name not in read:
            table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
    return table.select(wanted)


#: The kinds each format version may hold (0 ..= this): a reader meeting any other refuses the file,
#: never skips it (docs/FORMAT.md, "Room for new kinds").
_LAST_KIND = {1: segments_v1.LAST_KIND, 2: segments_v2.LAST_KIND}


def column_bounds(footer: pq.FileMetaData, row_group: int, leaf: str) -> tuple[int, int] | None:
    """The (min, max) that row group ``row_group``'s statistics give for the integer column ``leaf`` (a
    leaf's dotted path: ``"kind"``, ``"price.list.element"``); None where the file has none (written
    without statistics, or every value null).

    Strategy: every writer of ACTS segments (pyarrow's) stores exact min/max statistics for each
    column chunk, so checks that need only the extremes -- kinds known, values fit int64 -- read the
    footer instead of scanning the column; callers scan where this is None.
    """
    group = footer.row_group(row_group)
    for j in range(group.num_columns):
        chunk = group.column(j)
        if chunk.path_in_schema == leaf:
            stats = chunk.statistics
            if stats is None or not stats.has_min_max or not isinstance(stats.max, int):
                return None
            return int(stats.min), int(stats.max)
    return None


def _check_kinds(table: pa.Table, info: SegmentInfo, bounds: tuple[int, int] | None = None) -> None:
    """``CorruptSegmentError`` for a kind outside this ACTS's format; ``bounds``: the kinds' (min, max)
    from the file's statistics, scanned from ``table`` when None."""
    if bounds is None:
        scanned = pc.min_max(table.column("kind"))
        low, high = scanned["min"].as_py(), scanned["max"].as_py()
    else:
        low, high = bounds
    last = _LAST_KIND[1 if info.format_version == 1 else 2]
    if low is None or (low >= 0 and high <= last):
        return
    raise CorruptSegmentError(f"{info.path}: holds events of kind {high if high > last else low}, which segment "
                              f"format {info.format_version} as this ACTS reads it does not have (written by a "
                              "newer ACTS?); upgrade ACTS, or move the file aside")


def read_events(path: PurePath, symbol: str | None = None,
                filesystem: pafs.FileSystem | None = None) -> Iterator[Event]:
    """Every event of a segment (either format version), streamed one row group at a time."""
    info, reader = open_segment(path, filesystem)
    try:
        for i in range(reader.num_row_groups):
            table = read_row_group(reader, i, info)
            if info.format_version == 1:
                yield from segments_v1.table_to_events(table, symbol or info.symbol, info.price_pow10,
                                                       info.qty_pow10)
            else:
                yield from segments_v2.table_to_events(table, symbol or info.symbol)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSegmentError(f"{path}: cannot read data ({exc}); move it aside or run 'acts verify'") from exc
    finally:
        reader.close()
