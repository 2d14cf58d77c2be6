"""Finding segments on disk: by symbol, by date, and the snapshot to start a replay from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from acts.errors import CorruptSegmentError, NoDataError, UnknownSymbolError
from recorder.segments import SegmentInfo, read_info

__all__ = ["SegmentStore"]

ProblemHandler = Callable[[CorruptSegmentError], None]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


class SegmentStore:
    """Read-only index of ``DATA/segments``. Footers are read lazily and cached."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "segments"
        self._info: dict[Path, SegmentInfo] = {}

    def symbols(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name.removeprefix("symbol=") for p in self.root.glob("symbol=*") if p.is_dir())

    def days(self, symbol: str) -> list[str]:
        base = self.root / f"symbol={symbol}"
        return sorted(p.name.removeprefix("date=") for p in base.glob("date=*") if any(p.glob("*.parquet")))

    def paths(self, symbol: str) -> list[Path]:
        """Every segment of ``symbol`` in recording order (the file names sort by first receive time)."""
        base = self.root / f"symbol={symbol}"
        return sorted(base.glob("date=*/*.parquet"), key=lambda p: (p.parent.name, p.name))

    def info(self, path: Path) -> SegmentInfo:
        if path not in self._info:
            self._info[path] = read_info(path)
        return self._info[path]

    def check_symbols(self, symbols: list[str]) -> list[str]:
        """``symbols`` (all recorded ones when empty), each checked to have data."""
        known = self.symbols()
        if not known:
            raise NoDataError(f"no segments under {self.root}; record or import data first ('acts demo' makes some)")
        for symbol in symbols:
            if symbol not in known:
                raise UnknownSymbolError(f"no data for symbol {symbol}; recorded symbols: {', '.join(known)}")
        return symbols or known

    def plan(self, symbol: str, start_ms: int, end_ms: int | None, on_problem: ProblemHandler) -> list[Path]:
        """Segments to read, in order, to replay ``symbol`` from ``start_ms`` (the caller stops at the end).

        Begins one segment before the last one holding a snapshot received at or before
        ``start_ms`` -- the diffs buffered while that snapshot was fetched may sit in the
        previous file -- so the book is rebuilt without reading older history.
        """
        paths = self.paths(symbol)
        start_key = f"date={_day(start_ms)}"
        end_key = f"date={_day(end_ms - 1)}" if end_ms is not None else None
        if not any(p.parent.name >= start_key and (end_key is None or p.parent.name <= end_key) for p in paths):
            span = _day(start_ms) + (f" to {_day(end_ms - 1)}" if end_ms is not None else " on")
            raise NoDataError(f"no {symbol} data from {span}; recorded dates: {_ranges(self.days(symbol))}")
        start_ns = start_ms * 1_000_000
        unreadable: set[Path] = set()
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

    def _safe_info(self, path: Path, on_problem: ProblemHandler) -> SegmentInfo | None:
        try:
            return self.info(path)
        except CorruptSegmentError as exc:
            on_problem(exc)
            return None


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
