"""Export recorded depth to other tools' formats: hftbacktest event arrays and tardis.dev CSV.

# Strategy: one fold, two writers. ``export_symbol`` runs the recording through the same
# ``Sequencer`` as replay and tells a writer only what that proves about the book:
#
# * a diff the sequencer applied          -> ``diff`` (one row per level, exchange and local time);
# * a snapshot that (re)loads the book    -> ``clear`` then ``snapshot`` (the whole book as the
#   sequencer holds it, buffered diffs included);
# * anything that makes the book invalid  -> ``clear`` (a gap, a stale snapshot, a crossed book, a
#   recorder restart): the consumer's book is empty until the next snapshot, as ACTS's is invalid.
#
# Duplicates, stale diffs, diffs buffered before a snapshot and checkpoint snapshots of a live book
# change nothing and give no row. So a consumer that folds the rows holds ACTS's valid book (or none)
# at every receive time. Memory holds the book and one chunk of rows, whatever the range.
#
# Times: a diff's exchange time is its ``E``; a snapshot (Binance spot's REST answer has no ``E``) and a
# clear take the latest ``E`` seen so far, so exchange times never go back. Local time is the receive
# time. Both are kept non-decreasing (hftbacktest's readers require it); a row moved forward to do so
# is counted in ``ExportReport.clamped``.
#
# Trades: not recorded yet. When they are, the fold passes each trade to ``Writer.trade`` (hftbacktest:
# ``TRADE_EVENT`` with ``BUY_EVENT`` when the buyer was the taker (``m`` false), else ``SELL_EVENT``;
# tardis: a ``trades`` file); the writers below mark where.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from acts.book.sequencer import Applied, Loaded, Sequencer, Synced
from acts.core.decimals import BOOK_SCALE, format_decimal, to_book
from acts.core.errors import CorruptSegmentError, InputError
from acts.core.events import DepthUpdate, Event, Levels
from acts.core.markets import Market
from acts.storage.store import SegmentStore

__all__ = [
    "ExportFormat",
    "ExportReport",
    "Writer",
    "HftbacktestWriter",
    "TardisWriter",
    "export_symbol",
    "EVENT_DTYPE",
    "EXCH_EVENT",
    "LOCAL_EVENT",
    "BUY_EVENT",
    "SELL_EVENT",
    "DEPTH_EVENT",
    "TRADE_EVENT",
    "DEPTH_CLEAR_EVENT",
    "DEPTH_SNAPSHOT_EVENT",
]

#: A side's levels as the fold hands them to a writer: ``(price, qty)`` integers at ``BOOK_SCALE``
#: decimals, best first for a snapshot, as sent for a diff (quantity 0 removes the level).
IntLevels = Sequence[tuple[int, int]]

_SCALE = 10**BOOK_SCALE
_NS_PER_DAY = 86_400 * 10**9


class ExportFormat(StrEnum):
    """``acts export --format``."""

    HFTBACKTEST = "hftbacktest"  #: one ``.npz`` of hftbacktest's event array (key ``data``)
    TARDIS_CSV = "tardis-csv"  #: ``incremental_book_L2`` CSV.gz per symbol and day


@dataclass
class ExportReport:
    """What the export did, for the closing summary and the tests."""

    events: int = 0
    rows: int = 0
    snapshots: int = 0  #: books (re)loaded: the first one and one after each resync
    clears: int = 0  #: times the book went invalid (gap, stale snapshot, crossed, restart)
    clamped: int = 0  #: rows whose time was moved forward to keep times non-decreasing
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Writer(Protocol):
    """Where the fold's rows go. Times in ns; ``exch_ns`` exchange time, ``local_ns`` receive time."""

    #: Write the whole book again at the start of each UTC day (tardis' files are self-contained per day).
    snapshot_each_day: bool

    def clear(self, exch_ns: int, local_ns: int) -> None:
        """The book is unknown from here: drop every level."""
        ...

    def snapshot(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        """The whole book: right after a ``clear``, or again at the start of a day (``snapshot_each_day``)."""
        ...

    def diff(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        """Levels changed (absolute quantities; 0 removes the level)."""
        ...

    def close(self, ok: bool) -> list[Path]:
        """Finish the files (``ok``) or remove what was written (not ``ok``); the files written."""
        ...


# --- the fold ---------------------------------------------------------------------------------


def export_symbol(store: SegmentStore, symbol: str, start_ms: int, end_ms: int | None, writer: Writer,
                  report: ExportReport, strict: bool = False,
                  on_progress: Callable[[int], None] | None = None) -> None:
    """Write ``symbol``'s book as received in ``[start_ms, end_ms)`` (receive time) to ``writer``.

    The book is rebuilt from the snapshot before ``start_ms``; if it is valid there, the output opens
    with it (a clear and a snapshot at ``start_ms``). ``on_progress`` gets the receive time (ns) reached.
    """
    start_ns = start_ms * 1_000_000
    end_ns = None if end_ms is None else end_ms * 1_000_000
    fold = _Fold(writer, report, store.market)
    recv_ns = start_ns
    for event in _events(store, symbol, start_ms, end_ms, report, strict):
        recv_ns = event.recv_ns
        if end_ns is not None and recv_ns >= end_ns:
            break
        if not fold.started and recv_ns >= start_ns:
            fold.start(start_ns)
        fold.apply(event)
        if on_progress is not None and report.events % 4096 == 0:
            on_progress(recv_ns)
    if on_progress is not None:
        on_progress(recv_ns if end_ns is None else min(recv_ns, end_ns))


def _events(store: SegmentStore, symbol: str, start_ms: int, end_ms: int | None, report: ExportReport,
            strict: bool) -> Iterator[Event]:
    def on_problem(exc: CorruptSegmentError) -> None:
        if strict:
            raise exc
        report.problems.append(str(exc))

    for path in store.plan(symbol, start_ms, end_ms, on_problem):
        try:
            yield from store.events(path, symbol)
        except CorruptSegmentError as exc:
            # The chain breaks across the missing events: the next diff is a gap, the book is cleared.
            on_problem(exc)


class _Fold:
    """The sequencer plus what the writer has been told (see the module's strategy)."""

    def __init__(self, writer: Writer, report: ExportReport, market: Market = Market.SPOT) -> None:
        self.writer = writer
        self.report = report
        self.sequencer: Sequencer[Levels] = Sequencer(market=market)  # the store's market: its rules
        self.started = False
        self.shown = False  # the writer holds a book (a snapshot since the last clear)
        self.last_e_ns: int | None = None  # latest exchange time seen, for rows without one
        self.exch_ns = 0  # the last exchange and local times written (kept non-decreasing)
        self.local_ns = 0
        self.day: int | None = None

    def start(self, start_ns: int) -> None:
        self.started = True
        self.day = start_ns // _NS_PER_DAY
        if self.sequencer.valid:
            self._load(start_ns)

    def apply(self, event: Event) -> None:
        seq = self.sequencer
        self.report.events += 1
        if self.started:
            self._new_day(event.recv_ns)
        if isinstance(event, DepthUpdate):
            e_ns = event.event_time_ms * 1_000_000
            self.last_e_ns = e_ns if self.last_e_ns is None else max(self.last_e_ns, e_ns)
        outcome = seq.apply(event)
        if not self.started:
            return
        if isinstance(outcome, (Loaded, Synced)):
            self._load(event.recv_ns)
        elif isinstance(outcome, Applied):
            assert isinstance(event, DepthUpdate)
            exch, local = self._times(event.event_time_ms * 1_000_000, event.recv_ns)
            bids, asks = _ints(event.bids), _ints(event.asks)
            self.writer.diff(bids, asks, exch, local)
            self.report.rows += len(bids) + len(asks)
        if not seq.valid and self.shown:
            exch, local = self._times(self._no_exch(event.recv_ns), event.recv_ns)
            self.writer.clear(exch, local)
            self.shown = False
            self.report.clears += 1

    def _load(self, recv_ns: int, clear: bool = True) -> None:
        view = self.sequencer.view()
        exch, local = self._times(self._no_exch(recv_ns), recv_ns)
        bids, asks = view.bids(None), view.asks(None)
        if clear:
            self.writer.clear(exch, local)
        self.writer.snapshot(bids, asks, exch, local)
        self.shown = True
        self.report.snapshots += 1
        self.report.rows += len(bids) + len(asks)

    def _new_day(self, recv_ns: int) -> None:
        """Before the first event of a new UTC day (receive time): the whole book again, if asked."""
        day = recv_ns // _NS_PER_DAY
        if self.day is not None and day > self.day:
            self.day = day
            if self.shown and self.writer.snapshot_each_day:
                self._load(day * _NS_PER_DAY, clear=False)

    def _no_exch(self, recv_ns: int) -> int:
        return self.last_e_ns if self.last_e_ns is not None else recv_ns

    def _times(self, exch_ns: int, local_ns: int) -> tuple[int, int]:
        if exch_ns < self.exch_ns or local_ns < self.local_ns:
            self.report.clamped += 1
        self.exch_ns = max(self.exch_ns, exch_ns)
        self.local_ns = max(self.local_ns, local_ns)
        return self.exch_ns, self.local_ns


def _ints(levels: Levels) -> list[tuple[int, int]]:
    return [(to_book(price), to_book(qty)) for price, qty in levels]


# --- hftbacktest ------------------------------------------------------------------------------

#: hftbacktest's event record (``hftbacktest.types.event_dtype``, version 2.x): copied, not imported,
#: so exporting needs no hftbacktest; the tests check the two are equal.
EVENT_DTYPE = np.dtype([("ev", "u8"), ("exch_ts", "i8"), ("local_ts", "i8"), ("px", "f8"), ("qty", "f8"),
                        ("order_id", "u8"), ("ival", "i8"), ("fval", "f8")], align=True)
#: Flags of ``ev`` (``hftbacktest.types``): who processes the row, and which side.
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28
#: Kinds of ``ev`` (its low bits).
DEPTH_EVENT = 1
TRADE_EVENT = 2  #: not written yet: trades are not recorded (see the module's strategy)
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4

_BOTH = EXCH_EVENT | LOCAL_EVENT
#: Rows held in memory (as Python tuples, ~6 MB) before they go to the spill file as 64-byte records.
CHUNK_ROWS = 16_384


class HftbacktestWriter:
    """hftbacktest's event array as ``data`` in an ``.npz`` (what ``BacktestAsset().data([path])`` reads).

    Every row is both an exchange and a local event (``EXCH_EVENT | LOCAL_EVENT``). Prices and quantities
    become float64, which is what hftbacktest holds (it rounds prices to its tick). Rows go to a spill
    file a chunk at a time; ``close`` streams it into the archive behind the ``.npy`` header, so memory
    stays at one chunk however long the export.
    """

    snapshot_each_day = False

    def __init__(self, path: Path, compress: bool = True) -> None:
        self.path = path
        self.compress = compress
        self._part = path.with_name(f".{path.name}.part")
        self._spill_path = path.with_name(f".{path.name}.rows")
        self._spill: IO[bytes] = open(self._spill_path, "wb")
        self._rows: list[tuple[int, int, int, float, float, int, int, float]] = []
        self.count = 0

    def clear(self, exch_ns: int, local_ns: int) -> None:
        # No side flag: hftbacktest clears both sides entirely (a sided clear only goes down to ``px``).
        self._rows.append((_BOTH | DEPTH_CLEAR_EVENT, exch_ns, local_ns, 0.0, 0.0, 0, 0, 0.0))
        self._maybe_flush()

    def snapshot(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        self._levels(DEPTH_SNAPSHOT_EVENT, bids, asks, exch_ns, local_ns)

    def diff(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        self._levels(DEPTH_EVENT, bids, asks, exch_ns, local_ns)

    def _levels(self, kind: int, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        rows = self._rows
        for flag, levels in ((_BOTH | kind | BUY_EVENT, bids), (_BOTH | kind | SELL_EVENT, asks)):
            # int / int is correctly rounded: the nearest float64 to the exact decimal.
            rows.extend((flag, exch_ns, local_ns, price / _SCALE, qty / _SCALE, 0, 0, 0.0) for price, qty in levels)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._rows) >= CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            np.array(self._rows, dtype=EVENT_DTYPE).tofile(self._spill)
            self.count += len(self._rows)
            self._rows.clear()

    def close(self, ok: bool) -> list[Path]:
        try:
            self._flush()
            self._spill.close()
            if not ok:
                return []
            self._archive()
            os.replace(self._part, self.path)
            return [self.path]
        finally:
            for leftover in (self._spill_path, self._part):
                leftover.unlink(missing_ok=True)

    def _archive(self) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(EVENT_DTYPE), "fortran_order": False,
                  "shape": (self.count,)}
        method = zipfile.ZIP_DEFLATED if self.compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(self._part, "w", method, allowZip64=True, compresslevel=1 if self.compress else None) \
                as archive, archive.open("data.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            with open(self._spill_path, "rb") as spill:
                shutil.copyfileobj(spill, member, 1 << 22)


# --- tardis.dev CSV ---------------------------------------------------------------------------

#: tardis.dev's ``incremental_book_L2`` columns, in order.
TARDIS_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount")
#: tardis.dev's name for Binance spot.
TARDIS_EXCHANGE = "binance"


def tardis_file_name(day: str, symbol: str, data_type: str = "incremental_book_L2") -> str:
    """tardis.dev's dataset file name: ``binance_incremental_book_L2_2024-05-01_BTCUSDT.csv.gz``."""
    return f"{TARDIS_EXCHANGE}_{data_type}_{day}_{symbol}.csv.gz"


class TardisWriter:
    """``incremental_book_L2`` CSV.gz files, one per UTC day (local time) of one symbol, in ``out_dir``.

    Timestamps in µs; ``is_snapshot`` ``true``/``false``; ``side`` ``bid``/``ask``; price and amount exact
    decimals without trailing zeros. tardis has no "clear": a reader resets its book when snapshot rows
    follow update rows. So rows stop while ACTS's book is invalid, and a snapshot is held back until the
    next update (or the end of its day), dropped if the book goes invalid first: two snapshots never run
    together into one. Each day's file opens with the whole book.
    """

    snapshot_each_day = True

    def __init__(self, out_dir: Path, symbol: str) -> None:
        self.out_dir = out_dir
        self.symbol = symbol
        self.files: list[Path] = []
        self._day: str | None = None
        self._file: io.TextIOWrapper | None = None
        self._raw: IO[bytes] | None = None
        self._csv: Any = None
        self._pending: list[list[str]] = []
        self._pending_day = ""
        self.count = 0

    def clear(self, exch_ns: int, local_ns: int) -> None:
        self._pending = []

    def snapshot(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        day = _day(local_ns)
        if day != self._pending_day:
            self._release()  # the last book of its day ends that day's file
        self._pending = self._rows("true", bids, asks, exch_ns, local_ns)
        self._pending_day = day

    def diff(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        self._release()
        self._write(_day(local_ns), self._rows("false", bids, asks, exch_ns, local_ns))

    def _release(self) -> None:
        if self._pending:
            self._write(self._pending_day, self._pending)
            self._pending = []

    def _rows(self, snapshot: str, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> list[list[str]]:
        head = [TARDIS_EXCHANGE, self.symbol, str(exch_ns // 1000), str(local_ns // 1000), snapshot]
        return ([[*head, "bid", _decimal(p), _decimal(q)] for p, q in bids]
                + [[*head, "ask", _decimal(p), _decimal(q)] for p, q in asks])

    def _write(self, day: str, rows: list[list[str]]) -> None:
        if day != self._day:
            self._finish()
            self._day = day
            path = self.out_dir / tardis_file_name(day, self.symbol)
            self.files.append(path)
            # Deterministic bytes: no file name or time in the gzip header.
            self._raw = open(_part(path), "wb")
            packed = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=6, mtime=0)
            self._file = io.TextIOWrapper(packed, encoding="ascii", newline="")
            self._csv = csv.writer(self._file, lineterminator="\n")
            self._csv.writerow(TARDIS_COLUMNS)
        self._csv.writerows(rows)
        self.count += len(rows)

    def _finish(self) -> None:
        if self._file is not None:
            self._file.close()
            assert self._raw is not None
            self._raw.close()  # GzipFile does not close a file object it was given
            self._file = None

    def close(self, ok: bool) -> list[Path]:
        if ok:
            self._release()
        self._finish()
        for path in self.files:
            if ok:
                os.replace(_part(path), path)
            else:
                _part(path).unlink(missing_ok=True)
        return self.files if ok else []


def _part(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%d")


def _decimal(value: int) -> str:
    """A book-scale integer as the shortest exact decimal: ``6500001000000`` -> ``"65000.01"``."""
    text = format_decimal(value, BOOK_SCALE)
    return text.rstrip("0").rstrip(".")


# --- arguments --------------------------------------------------------------------------------


def check_output(fmt: ExportFormat, out: Path, symbols: Sequence[str]) -> None:
    """Refuse an output the format cannot use, before any work."""
    if fmt is ExportFormat.HFTBACKTEST:
        if len(symbols) != 1:
            raise InputError(f"--format hftbacktest writes one symbol per file; got {len(symbols)} "
                             f"({', '.join(symbols)}); give one with --symbols")
        if out.suffix != ".npz":
            raise InputError(f"--out {out}: hftbacktest reads .npz files; name it like btc.npz")
        if out.is_dir():
            raise InputError(f"--out {out} is a directory; give a file name like btc.npz")
        if not out.parent.is_dir():
            raise InputError(f"--out {out}: folder {out.parent} does not exist; create it first")
    elif out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; --format tardis-csv writes a folder of .csv.gz files")
