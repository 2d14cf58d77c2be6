"""Export recorded depth and trades to other tools' formats: hftbacktest event arrays and tardis.dev CSV.

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
# at every receive time. Memory holds the book and a row group or two of rows, whatever the range.
#
# Two engines, as for replay, writing the same bytes: the fast one (``export_lane``: row groups, the
# compiled lane folds the runs of diffs that continue the chain, each run's rows reach the writer as
# columns, ``Writer.rows``) and the reference (``engine="python"``: one event, one writer call).
#
# Times: a diff's exchange time is its ``E``; a snapshot (Binance spot's REST answer has no ``E``) and a
# clear take the latest ``E`` seen so far, so exchange times never go back. Local time is the receive
# time. Both are kept non-decreasing (hftbacktest's readers require it); a row moved forward to do so
# is counted in ``ExportReport.clamped``.
#
# Trades: every trade received in the range goes to ``Writer.trade``, whatever the book's state (a
# trade is a fact, not something the chain proves): hftbacktest's ``TRADE_EVENT`` with ``BUY_EVENT``
# when the buyer was the taker (``m`` false), else ``SELL_EVENT``, exchange time ``T`` and local time the
# receive time, kept in order like every row; tardis: a ``trades`` file beside the book's, with the
# trade's own ``T`` and receive time. bookTickers are not exported (neither format has them).
"""

from __future__ import annotations

import csv
import dataclasses
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
import pyarrow as pa
import pyarrow.compute as pc

from acts.book.arraybook import ArrayBook
from acts.book.sequencer import Applied, BboChecked, Loaded, Outcome, Sequencer, Synced
from acts.core.decimals import BOOK_SCALE, format_decimal, to_book
from acts.core.errors import CorruptSegmentError, InputError
from acts.core.events import DepthUpdate, Event, Trade
from acts.core.markets import Market
from acts.replayer.replay import Engine
from acts.storage.columnar import ArrayEvent, LevelOverflow
from acts.storage.store import SegmentStore

__all__ = [
    "Engine",
    "ExportFormat",
    "RowBatch",
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
    trades: int = 0  #: trades written
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Writer(Protocol):
    """Where the fold's rows go. Times in ns; ``exch_ns`` exchange time, ``local_ns`` receive time."""

    #: Write the whole book again at the start of each UTC day (tardis' files are self-contained per day).
    snapshot_each_day: bool
    #: Trades share the book rows' time order (hftbacktest: one array), so their times are moved forward
    #: like any row's; else (tardis: a file of their own) each keeps its ``T`` and receive time.
    trades_in_order: bool

    def clear(self, exch_ns: int, local_ns: int) -> None:
        """The book is unknown from here: drop every level."""
        ...

    def snapshot(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        """The whole book: right after a ``clear``, or again at the start of a day (``snapshot_each_day``)."""
        ...

    def diff(self, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> None:
        """Levels changed (absolute quantities; 0 removes the level)."""
        ...

    def trade(self, trade: Trade, exch_ns: int, local_ns: int) -> None:
        """A trade: ``exch_ns`` its trade time ``T``, ``local_ns`` its receive time (moved forward if
        ``trades_in_order``)."""
        ...

    def rows(self, batch: RowBatch) -> None:
        """Diffs and trades of a compiled-lane run, in event order: what ``diff`` and ``trade`` would have
        been told one call at a time, as columns."""
        ...

    def reset(self) -> None:
        """Forget every row so far (the fast fold gave up; the reference fold starts again)."""
        ...

    def close(self, ok: bool) -> list[Path]:
        """Finish the files (``ok``) or remove what was written (not ``ok``); the files written."""
        ...


@dataclass(frozen=True, slots=True)
class RowBatch:
    """A compiled-lane run's output (``export_lane``) in event order: items are applied diffs and trades.

    Per item: ``is_trade``, ``exch_ns``/``local_ns`` as ``diff``/``trade`` would get them (moved forward,
    except a trade's when the writer does not keep trades in order), ``counts`` (its level rows: a diff's
    levels, a trade's one row). Per row: ``bid`` (a diff's side; for a trade, the buyer was the taker),
    ``price``/``qty`` at ``BOOK_SCALE``. Per trade, in order: ``trade_ids``."""

    is_trade: np.ndarray
    exch_ns: np.ndarray
    local_ns: np.ndarray
    counts: np.ndarray
    bid: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    trade_ids: np.ndarray


# --- the fold ---------------------------------------------------------------------------------


def export_symbol(store: SegmentStore, symbol: str, start_ms: int, end_ms: int | None, writer: Writer,
                  report: ExportReport, strict: bool = False,
                  on_progress: Callable[[int], None] | None = None, engine: Engine | str = Engine.AUTO) -> None:
    """Write ``symbol``'s book as received in ``[start_ms, end_ms)`` (receive time) to ``writer``.

    The book is rebuilt from the snapshot before ``start_ms``; if it is valid there, the output opens
    with it (a clear and a snapshot at ``start_ms``). ``on_progress`` gets the receive time (ns) reached.
    ``engine`` as for replay: both write the same bytes; ``auto`` falls back to the reference fold (from
    the start, the writer reset) for a symbol whose levels exceed int64 at the book scale.
    """
    chosen = Engine.parse(engine)
    start_ns = start_ms * 1_000_000
    end_ns = None if end_ms is None else end_ms * 1_000_000
    if chosen is not Engine.PYTHON:
        from acts.replayer.export_lane import fold_fast

        before = dataclasses.replace(report, files=list(report.files), problems=list(report.problems))
        try:
            fold_fast(store, symbol, start_ns, end_ns, _Fold(writer, report, store.market, fast=True), strict,
                      on_progress)
            return
        except LevelOverflow as exc:
            if chosen is Engine.FAST:
                raise InputError(f"{symbol}: {exc}; export it with the python engine") from None
        writer.reset()
        for name in (f.name for f in dataclasses.fields(report)):  # the report as it was before the fast fold
            setattr(report, name, getattr(before, name))
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
    """The sequencer plus what the writer has been told (see the module's strategy). ``fast``: its
    sequencer holds an ``ArrayBook`` and its events come from row groups (levels as integer arrays);
    ``export_lane`` drives it, handing it the compiled lane's runs (``lane_run``) between events."""

    def __init__(self, writer: Writer, report: ExportReport, market: Market = Market.SPOT, fast: bool = False) -> None:
        self.writer = writer
        self.report = report
        self.fast = fast
        self.book = ArrayBook() if fast else None  # the fast fold's book, which the compiled lane folds into
        self.sequencer: Sequencer[Any] = Sequencer(book=self.book, market=market)  # the store's market: its rules
        self.started = False
        self.shown = False  # the writer holds a book (a snapshot since the last clear)
        self.last_e_ns: int | None = None  # latest exchange time seen, for rows without one
        self.exch_ns = 0  # the last exchange and local times written (kept non-decreasing)
        self.local_ns = 0
        self.day: int | None = None
        #: Called before the writer is told anything: the fast fold's held lane rows go first.
        self.flush: Callable[[], None] = _nothing

    def start(self, start_ns: int) -> None:
        self.started = True
        self.day = start_ns // _NS_PER_DAY
        if self.sequencer.valid:
            self._load(start_ns)

    def apply(self, event: Event | ArrayEvent) -> None:
        seq = self.sequencer
        self.report.events += 1
        if self.started:
            self.new_day(event.recv_ns)
        if isinstance(event, DepthUpdate):
            self.seen_exch(event.event_time_ms * 1_000_000)
        outcome = seq.apply(event)
        if not self.started:
            return
        if isinstance(event, Trade):
            self._trade(event)
        if isinstance(event, DepthUpdate) and isinstance(outcome, (Applied, BboChecked)):  # applied (and audited)
            self.flush()
            exch, local = self._times(event.event_time_ms * 1_000_000, event.recv_ns)
            bids, asks = self._ints(event.bids), self._ints(event.asks)
            self.writer.diff(bids, asks, exch, local)
            self.report.rows += len(bids) + len(asks)
        self.settle(outcome, event.recv_ns)

    def settle(self, outcome: Outcome, recv_ns: int) -> None:
        """After an event received at ``recv_ns`` (once started): a (re)loaded book, or a clear if it went invalid."""
        if isinstance(outcome, (Loaded, Synced)):
            self._load(recv_ns)
        if not self.sequencer.valid and self.shown:
            self.flush()
            exch, local = self._times(self._no_exch(recv_ns), recv_ns)
            self.writer.clear(exch, local)
            self.shown = False
            self.report.clears += 1

    def seen_exch(self, e_ns: int) -> None:
        """A diff's ``E`` (ns), applied or not: rows without an exchange time take the latest."""
        self.last_e_ns = e_ns if self.last_e_ns is None else max(self.last_e_ns, e_ns)

    def moved_forward(self, exch_ns: np.ndarray, local_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_times`` over many rows in order, in columns."""
        if not len(exch_ns):
            return exch_ns, local_ns
        exch = np.maximum.accumulate(np.concatenate(([self.exch_ns], exch_ns)))
        local = np.maximum.accumulate(np.concatenate(([self.local_ns], local_ns)))
        self.report.clamped += int(np.count_nonzero((exch_ns < exch[:-1]) | (local_ns < local[:-1])))
        self.exch_ns, self.local_ns = int(exch[-1]), int(local[-1])
        return exch[1:], local[1:]

    def _ints(self, levels: Any) -> list[tuple[int, int]]:
        if self.fast:  # ``ArrayLevels``: integer arrays at the book scale already
            prices, qtys = levels
            return list(zip(prices.tolist(), qtys.tolist(), strict=True))
        return [(to_book(price), to_book(qty)) for price, qty in levels]

    def _trade(self, trade: Trade) -> None:
        self.flush()
        exch, local = trade.trade_time_ms * 1_000_000, trade.recv_ns
        if self.writer.trades_in_order:
            exch, local = self._times(exch, local)
        self.writer.trade(trade, exch, local)
        self.report.trades += 1

    def _load(self, recv_ns: int, clear: bool = True) -> None:
        self.flush()
        view = self.sequencer.view()
        exch, local = self._times(self._no_exch(recv_ns), recv_ns)
        bids, asks = view.bids(None), view.asks(None)
        if clear:
            self.writer.clear(exch, local)
        self.writer.snapshot(bids, asks, exch, local)
        self.shown = True
        self.report.snapshots += 1
        self.report.rows += len(bids) + len(asks)

    def new_day(self, recv_ns: int) -> None:
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


def _nothing() -> None:
    pass


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
TRADE_EVENT = 2
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
    trades_in_order = True

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

    def trade(self, trade: Trade, exch_ns: int, local_ns: int) -> None:
        side = SELL_EVENT if trade.buyer_is_maker else BUY_EVENT  # the taker's side, as hftbacktest's converters
        self._rows.append((_BOTH | TRADE_EVENT | side, exch_ns, local_ns, to_book(trade.price) / _SCALE,
                           to_book(trade.qty) / _SCALE, 0, 0, 0.0))
        self._maybe_flush()

    def rows(self, batch: RowBatch) -> None:
        self._flush()  # rows keep their order: what is held goes first
        kinds = np.where(batch.is_trade, _BOTH | TRADE_EVENT, _BOTH | DEPTH_EVENT).astype(np.uint64)
        out = np.zeros(len(batch.price), dtype=EVENT_DTYPE)
        out["ev"] = np.repeat(kinds, batch.counts) | np.where(batch.bid, BUY_EVENT, SELL_EVENT).astype(np.uint64)
        out["exch_ts"] = np.repeat(batch.exch_ns, batch.counts)
        out["local_ts"] = np.repeat(batch.local_ns, batch.counts)
        out["px"] = _floats(batch.price)
        out["qty"] = _floats(batch.qty)
        out.tofile(self._spill)
        self.count += len(out)

    def reset(self) -> None:
        self._rows.clear()
        self._spill.seek(0)
        self._spill.truncate()
        self.count = 0

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


#: Below this, an int64 converts to float64 exactly, so one division is correctly rounded (as ``int / int``).
_EXACT_FLOAT = 2**53


def _floats(values: np.ndarray) -> np.ndarray:
    """Book-scale integers as the nearest float64s, exactly as ``value / _SCALE`` in Python."""
    out = values / _SCALE
    big = np.flatnonzero(np.abs(values) >= _EXACT_FLOAT)
    for k in big.tolist():  # rare (quantities of 90 M and up): Python's correctly rounded int / int
        out[k] = int(values[k]) / _SCALE
    return out


# --- tardis.dev CSV ---------------------------------------------------------------------------

#: tardis.dev's ``incremental_book_L2`` columns, in order.
TARDIS_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount")
#: tardis.dev's name for Binance spot.
TARDIS_EXCHANGE = "binance"


def tardis_file_name(day: str, symbol: str, data_type: str = "incremental_book_L2") -> str:
    """tardis.dev's dataset file name: ``binance_incremental_book_L2_2024-05-01_BTCUSDT.csv.gz``."""
    return f"{TARDIS_EXCHANGE}_{data_type}_{day}_{symbol}.csv.gz"


#: tardis.dev's ``trades`` columns, in order.
TARDIS_TRADE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")


class _DailyCsv:
    """One tardis data type's CSV.gz files of one symbol, one per UTC day, each opened on its first row."""

    def __init__(self, out_dir: Path, symbol: str, data_type: str, columns: Sequence[str]) -> None:
        self.out_dir, self.symbol, self.data_type, self.columns = out_dir, symbol, data_type, columns
        self.files: list[Path] = []
        self._day: str | None = None
        self._file: io.TextIOWrapper | None = None
        self._raw: IO[bytes] | None = None
        self._csv: Any = None

    def write(self, day: str, rows: list[list[str]]) -> None:
        self._open(day)
        self._csv.writerows(rows)

    def write_text(self, day: str, text: str) -> None:
        """Rows already spelled as ``csv.writer`` spells them (no field needs quoting)."""
        self._open(day)
        assert self._file is not None
        self._file.write(text)

    def _open(self, day: str) -> None:
        if day != self._day:
            self.finish()
            self._day = day
            path = self.out_dir / tardis_file_name(day, self.symbol, self.data_type)
            self.files.append(path)
            # Deterministic bytes: no file name or time in the gzip header.
            self._raw = open(_part(path), "wb")
            packed = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=6, mtime=0)
            self._file = io.TextIOWrapper(packed, encoding="ascii", newline="")
            self._csv = csv.writer(self._file, lineterminator="\n")
            self._csv.writerow(self.columns)

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()
            assert self._raw is not None
            self._raw.close()  # GzipFile does not close a file object it was given
            self._file = None

    def reset(self) -> None:
        self.finish()
        for path in self.files:
            _part(path).unlink(missing_ok=True)
        self.files, self._day = [], None

    def close(self, ok: bool) -> list[Path]:
        self.finish()
        for path in self.files:
            if ok:
                os.replace(_part(path), path)
            else:
                _part(path).unlink(missing_ok=True)
        return self.files if ok else []


class TardisWriter:
    """``incremental_book_L2`` and ``trades`` CSV.gz files, one per UTC day (local time) of one symbol, in
    ``out_dir`` (a day without trades has no ``trades`` file).

    Timestamps in µs; ``is_snapshot`` ``true``/``false``; ``side`` ``bid``/``ask``; price and amount exact
    decimals without trailing zeros. tardis has no "clear": a reader resets its book when snapshot rows
    follow update rows. So rows stop while ACTS's book is invalid, and a snapshot is held back until the
    next update (or the end of its day), dropped if the book goes invalid first: two snapshots never run
    together into one. Each day's file opens with the whole book. A trade's row: ``timestamp`` its trade
    time ``T``, ``id`` its trade id, ``side`` the taker's (``buy`` when ``m`` is false, else ``sell``).
    """

    snapshot_each_day = True
    trades_in_order = False

    def __init__(self, out_dir: Path, symbol: str) -> None:
        self.out_dir = out_dir
        self.symbol = symbol
        self._book = _DailyCsv(out_dir, symbol, "incremental_book_L2", TARDIS_COLUMNS)
        self._trades = _DailyCsv(out_dir, symbol, "trades", TARDIS_TRADE_COLUMNS)
        self._pending: list[list[str]] = []
        self._pending_day = ""
        self.count = 0

    @property
    def files(self) -> list[Path]:
        return self._book.files + self._trades.files

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

    def trade(self, trade: Trade, exch_ns: int, local_ns: int) -> None:
        side = "sell" if trade.buyer_is_maker else "buy"
        self._trades.write(_day(local_ns), [[TARDIS_EXCHANGE, self.symbol, str(exch_ns // 1000),
                                             str(local_ns // 1000), str(trade.trade_id), side,
                                             _decimal(to_book(trade.price)), _decimal(to_book(trade.qty))]])
        self.count += 1

    def rows(self, batch: RowBatch) -> None:
        diffs = ~batch.is_trade
        if diffs.any():
            self._release()
            self.count += self._write_days(self._book, batch.local_ns[diffs], batch.counts[diffs],
                                           self._level_lines(batch, diffs))
        trades = batch.is_trade
        if trades.any():
            self.count += self._write_days(self._trades, batch.local_ns[trades], batch.counts[trades],
                                           self._trade_lines(batch, trades))

    def _level_lines(self, batch: RowBatch, diffs: np.ndarray) -> pa.Array:
        rows = np.repeat(diffs, batch.counts)
        counts = batch.counts[diffs]
        # What a diff's rows share, spelled once per diff and repeated: most diffs have several levels.
        head = pc.binary_join_element_wise(TARDIS_EXCHANGE, self.symbol, _texts(batch.exch_ns[diffs] // 1000),
                                           _texts(batch.local_ns[diffs] // 1000), "false,", ",")
        head = head.take(pa.array(np.repeat(np.arange(len(counts)), counts)))
        side = pc.if_else(pa.array(batch.bid[rows]), "bid,", "ask,")
        return pc.binary_join_element_wise(head, side, _decimals(batch.price[rows]), ",", _decimals(batch.qty[rows]),
                                           "\n", "")

    def _trade_lines(self, batch: RowBatch, trades: np.ndarray) -> pa.Array:
        rows = np.repeat(trades, batch.counts)
        side = pc.if_else(pa.array(batch.bid[rows]), "buy", "sell")
        return _lines([TARDIS_EXCHANGE, self.symbol, _texts(batch.exch_ns[trades] // 1000),
                       _texts(batch.local_ns[trades] // 1000), _texts(batch.trade_ids), side,
                       _decimals(batch.price[rows]), _decimals(batch.qty[rows])])

    @staticmethod
    def _write_days(daily: _DailyCsv, local_ns: np.ndarray, counts: np.ndarray, lines: pa.Array) -> int:
        """Each item's lines to the file of its receive day, a run of same-day items at a time (a run
        without lines still opens its day's file, as ``write`` with no rows does)."""
        days = local_ns // _NS_PER_DAY
        cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
        firsts = np.concatenate(([0], cuts))
        row_at = np.concatenate(([0], np.cumsum(counts)))
        for a, b in zip(firsts.tolist(), [*cuts.tolist(), len(days)], strict=True):
            daily.write_text(_day(int(local_ns[a])), _joined(lines, int(row_at[a]), int(row_at[b])))
        return int(row_at[-1])

    def reset(self) -> None:
        self._book.reset()
        self._trades.reset()
        self._pending, self._pending_day, self.count = [], "", 0

    def _release(self) -> None:
        if self._pending:
            self._write(self._pending_day, self._pending)
            self._pending = []

    def _rows(self, snapshot: str, bids: IntLevels, asks: IntLevels, exch_ns: int, local_ns: int) -> list[list[str]]:
        head = [TARDIS_EXCHANGE, self.symbol, str(exch_ns // 1000), str(local_ns // 1000), snapshot]
        return ([[*head, "bid", _decimal(p), _decimal(q)] for p, q in bids]
                + [[*head, "ask", _decimal(p), _decimal(q)] for p, q in asks])

    def _write(self, day: str, rows: list[list[str]]) -> None:
        self._book.write(day, rows)
        self.count += len(rows)

    def close(self, ok: bool) -> list[Path]:
        if ok:
            self._release()
        return self._book.close(ok) + self._trades.close(ok)


def _texts(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


def _decimals(values: np.ndarray) -> pa.Array:
    """``_decimal`` of each book-scale integer, in columns."""
    if len(values) and values.min() < 0:  # not a price or quantity ACTS records; keep Python's spelling
        return pa.array([_decimal(v) for v in values.tolist()], pa.string())
    whole, frac = np.divmod(values, _SCALE)
    digits = pc.utf8_rtrim(pc.utf8_lpad(_texts(frac), BOOK_SCALE, "0"), "0")
    return pc.if_else(pa.array(frac == 0), _texts(whole), pc.binary_join_element_wise(_texts(whole), digits, "."))


def _lines(fields: list[pa.Array | str]) -> pa.Array:
    """CSV lines, each ending in a newline, of the fields (a column or one text for every row)."""
    return pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), "\n", "")


def _joined(lines: pa.Array, a: int, b: int) -> str:
    """Lines ``a:b`` as one text: straight from the column's bytes (a string column holds them end to end)."""
    if b <= a:
        return ""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    data = lines.buffers()[2]
    return data[int(offsets[a]):int(offsets[b])].to_pybytes().decode("ascii")


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
