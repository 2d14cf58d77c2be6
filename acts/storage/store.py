"""Finding segments on disk: by symbol, by date, and the snapshot to start a replay from.

A store reads one market (spot by default, or USD-M futures): its folders, its footers, its sequencing
rules (``store.market`` is what replay and verify hand to the ``Sequencer``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs

from acts.core.errors import CorruptSegmentError, InputError, NoDataError, UnknownSymbolError
from acts.core.events import Event
from acts.core.markets import LABELS, Market
from acts.core.symbols import normalize_symbol
from acts.storage.layout import DATE_PREFIX, SYMBOL_PREFIX, DataLayout
from acts.storage.segments import SegmentInfo, read_events, read_info

if TYPE_CHECKING:
    from acts.storage.columnar import ArrayEvent, RowGroup

__all__ = ["SegmentStore"]

ProblemHandler = Callable[[CorruptSegmentError], None]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


class SegmentStore:
    """Read-only index of ``DATA/segments``, local or on object storage. Footers are read lazily, cached.

    ``SegmentStore(Path("data"))`` for a local folder; ``SegmentStore.open("s3://bucket/prefix")``
    (any URI pyarrow's filesystems understand) for remote data. ``market``: whose segments (spot by default).
    """

    def __init__(self, data_dir: PurePath, filesystem: pafs.FileSystem | None = None,
                 market: Market = Market.SPOT) -> None:
        self.filesystem = filesystem
        self.market = market
        #: The local layout (``None`` on object storage, where paths are ``PurePosixPath``).
        self._local: DataLayout[Path] | None = DataLayout(Path(data_dir)) if filesystem is None else None
        self._layout: DataLayout[Path] | DataLayout[PurePosixPath] = (
            self._local if self._local is not None else DataLayout(PurePosixPath(data_dir)))
        self.root: PurePath = self._layout.market_segments(market)
        self._info: dict[PurePath, SegmentInfo] = {}

    @classmethod
    def open(cls, location: str | PurePath, market: Market = Market.SPOT) -> SegmentStore:
        """A store for a local path or a filesystem URI such as ``s3://bucket/acts?endpoint_override=...``."""
        text = str(location)
        if "://" not in text:
            return cls(Path(text), market=market)
        try:
            filesystem, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowException, ValueError) as exc:
            raise InputError(f"cannot open data location {text!r}: {exc}") from None
        return cls(PurePosixPath(path), filesystem, market)

    def _list(self, directory: PurePath, recursive: bool) -> list[pafs.FileInfo]:
        assert self.filesystem is not None
        selector = pafs.FileSelector(str(directory), recursive=recursive, allow_not_found=True)
        try:
            return list(self.filesystem.get_file_info(selector))
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot list {directory}: {exc}") from None

    def symbols(self) -> list[str]:
        if self._local is None:
            entries = self._list(self.root, False)
            names = [PurePosixPath(i.path).name for i in entries if i.type == pafs.FileType.Directory]
        elif self._local.market_segments(self.market).is_dir():
            names = [p.name for p in self._local.market_segments(self.market).glob(f"{SYMBOL_PREFIX}*") if p.is_dir()]
        else:
            names = []
        return sorted(n.removeprefix(SYMBOL_PREFIX) for n in names if n.startswith(SYMBOL_PREFIX))

    def days(self, symbol: str) -> list[str]:
        return sorted({p.parent.name.removeprefix(DATE_PREFIX) for p in self.paths(symbol)})

    def paths(self, symbol: str) -> list[PurePath]:
        """Every segment of ``symbol`` in recording order (the file names sort by first receive time)."""
        found: list[PurePath]
        if self._local is not None:
            found = list(self._local.symbol_dir(symbol, self.market).glob(f"{DATE_PREFIX}*/*.parquet"))
        else:
            found = [PurePosixPath(i.path) for i in self._list(self._layout.symbol_dir(symbol, self.market), True)
                     if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
        found = [p for p in found if not p.name.startswith(".") and p.parent.name.startswith(DATE_PREFIX)]
        return sorted(found, key=_recording_order)

    def info(self, path: PurePath) -> SegmentInfo:
        if path not in self._info:
            info = read_info(path, self.filesystem)
            if info.market is not self.market:  # a file outside the layout claims no market by its path
                raise CorruptSegmentError(f"{path}: {LABELS[info.market]} data, read as "
                                          f"{LABELS[self.market]}; pass --market {info.market}")
            self._info[path] = info
        return self._info[path]

    def events(self, path: PurePath, symbol: str) -> Iterator[Event]:
        """The events of one segment of this store."""
        return read_events(path, symbol, self.filesystem)

    def row_groups(self, path: PurePath, symbol: str) -> Iterator[RowGroup]:
        """The segment's decoded row groups (the fast path's unit of work)."""
        from acts.storage.columnar import read_row_groups

        return read_row_groups(path, symbol, self.filesystem)

    def columnar_events(self, path: PurePath, symbol: str) -> Iterator[ArrayEvent]:
        """The same events with levels as book-scale integer arrays (the fast path)."""
        from acts.storage.columnar import read_columnar_events

        return read_columnar_events(path, symbol, self.filesystem)

    def check_symbols(self, symbols: list[str]) -> list[str]:
        """``symbols`` (all recorded ones when empty), each checked to have data."""
        known = self.symbols()
        if not known:
            raise NoDataError(f"no {self._label()}segments under {self.root}{self._elsewhere(symbols)}"
                              "; record or import data first ('acts demo' makes some)")
        # A recorded name is also found by its normalised spelling: 'SOLTSDT' (no known quote) was asked
        # for as SOLTSDTUSDT by the time it gets here. An exact name wins.
        by_normal = {normalize_symbol(name): name for name in known if name.isalnum()}
        chosen = []
        for symbol in symbols:
            name = symbol if symbol in known else by_normal.get(symbol)
            if name is None:
                raise UnknownSymbolError(f"no {self._label()}data for symbol {symbol}"
                                         f"{self._elsewhere([symbol])}; recorded symbols: {', '.join(known)}")
            chosen.append(name)
        return chosen or known

    def _label(self) -> str:
        """``"USD-M futures "`` in messages; spot keeps the words it always had."""
        return "" if self.market is Market.SPOT else f"{LABELS[self.market]} "

    def _elsewhere(self, symbols: list[str]) -> str:
        """``" (USD-M futures data of BTCUSDT exists: pass --market usdm)"``, or "" if no other market has them."""
        for market in Market:
            if market is self.market:
                continue
            other = SegmentStore(self._layout.root, self.filesystem, market).symbols()
            found = [s for s in symbols if s in other] if symbols else other
            if found:
                return f" ({LABELS[market]} data of {', '.join(found)} exists: pass --market {market})"
        return ""

    def plan(self, symbol: str, start_ms: int, end_ms: int | None, on_problem: ProblemHandler) -> list[PurePath]:
        """Segments to read, in order, to replay ``symbol`` from ``start_ms`` (the caller stops at the end).

        Begins one segment before the last one holding a snapshot received at or before
        ``start_ms`` -- the diffs buffered while that snapshot was fetched may sit in the
        previous file -- so the book is rebuilt without reading older history.
        """
        paths = self.paths(symbol)
        start_key = f"{DATE_PREFIX}{_day(start_ms)}"
        end_key = f"{DATE_PREFIX}{_day(end_ms - 1)}" if end_ms is not None else None
        if not any(p.parent.name >= start_key and (end_key is None or p.parent.name <= end_key) for p in paths):
            span = _day(start_ms) + (f" to {_day(end_ms - 1)}" if end_ms is not None else " on")
            raise NoDataError(f"no {symbol} data from {span}; recorded dates: {_ranges(self.days(symbol))}")
        start_ns = start_ms * 1_000_000
        unreadable: set[PurePath] = set()
        chosen = 0
        for index in range(len(paths) - 1, -1, -1):
            if paths[index].parent.name > start_key:
                continue  # starts after the day of start_ms: cannot hold an earlier snapshot
            info = self._safe_info(paths[index], on_problem)
            if info is None:
                unreadable.add(paths[index])
            elif any(t <= start_ns for t in info.snapshot_recv_ns):
                chosen = max(0, index - 1)
                break
        return [p for p in paths[chosen:] if p not in unreadable]

    def _safe_info(self, path: PurePath, on_problem: ProblemHandler) -> SegmentInfo | None:
        try:
            return self.info(path)
        except CorruptSegmentError as exc:
            on_problem(exc)
            return None


def _recording_order(path: PurePath) -> tuple[str, int, str]:
    """Date, then the first receive time in the name (as a number), then the name."""
    parts = path.name.split("-")
    first = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 0
    return (path.parent.name, first, path.name)


def _ranges(days: list[str]) -> str:
    """``['2024-05-01', '2024-05-02', '2024-05-04']`` -> ``'2024-05-01..2024-05-02, 2024-05-04'``."""
    if not days:
        return "none"
    out: list[str] = []
    start = prev = days[0]
    for day in days[1:] + [""]:
        if day and datetime.fromisoformat(day) - datetime.fromisoformat(prev) == timedelta(days=1):
            prev = day
            continue
        out.append(start if start == prev else f"{start}..{prev}")
        start = prev = day
    return ", ".join(out)
