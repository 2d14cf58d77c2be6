"""``acts import --format binance-jsonl``: raw captures -> segments.

One frame per line, optionally after the collector's local receive time (``<local time> <frame>``, the form
common collectors and tardis.dev raw data files write; ``acts/recorder/import_frames.py`` says how the time is
read: s, ms, µs or ns by the number's size, or ISO-8601). A frame is any of:

* a raw ``depthUpdate`` payload, or a combined-stream envelope ``{"stream": "btcusdt@depth@100ms", "data": ...}``;
* a REST depth snapshot ``{"lastUpdateId", "bids", "asks"}`` (symbol from the line's ``symbol`` key, the
  envelope's stream name as in tardis.dev's ``btcusdt@depthSnapshot`` frames, or ``--symbol``);
* a ``trade`` or ``bookTicker`` frame (raw or in an envelope), stored with its symbol's depth events in
  receive order, as the recorder stores them;
* with ``--market usdm``, an ``aggTrade`` frame (USD-M's trade stream), stored as a trade likewise;
* a frame of any other stream (spot's ``aggTrade``, ``kline``, ``forceOrder``, ...): counted as "other streams"
  and skipped, never quarantined.

With ``--market usdm`` the diffs are Binance USD-M futures ones (each with ``pu``) and go to the futures
segments; a spot import meeting a diff with ``pu`` (or a futures one meeting a diff without) stops at that
line, saying which market the data is (a futures capture imported as spot stores nothing).

Files may be compressed (``.gz``, ``.zst``, ``.bz2``, ``.xz``: recognised by their magic bytes, whatever
the name; ``acts/recorder/import_files.py``), start with a UTF-8 BOM and end lines with CRLF.

Lines without a local time get ``E`` (ms -> ns) as receive time; a snapshot, or a spot bookTicker
(no ``E``), without one gets the receive time of the line before it (or after it, at the top of a file). Receive times
never go backwards within a symbol (clamped, and counted). Malformed lines -- including values
that cannot be stored exactly and event times that cannot be true (``acts/core/events.py``) -- are
counted, reported as ``file:line`` and kept in ``quarantine/import.jsonl`` (``acts/storage/quarantine.py``);
the rest imports.

Strategy: the result must not depend on the order of the inputs. Files are read in the order of
their first receive time (a look at each file's head), and a file given twice (the same path, or
the same bytes under another name) is read once. A snapshot filed under a symbol that no diff of
the input names (``--symbol ADARUBUSDT`` for ``ADARUB`` diffs) is an error naming both: it could
never be used, and the real symbol would stay invalid without a word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from acts.core.errors import DataError, InputError, MalformedMessageError
from acts.core.events import BookTicker, DepthUpdate, Event, Snapshot, Trade, decode_message
from acts.core.markets import Market
from acts.recorder.import_files import READ_ERRORS, open_capture
from acts.recorder.import_frames import TimeUnit, frame_symbol, parse_line, stream_type
from acts.storage.buffers import SegmentBuffers
from acts.storage.quarantine import Quarantine

__all__ = ["ImportReport", "import_jsonl"]

#: Events held per symbol before they are appended to its open segment (bounded memory for huge captures).
FLUSH_EVENTS = 20_000
#: Lines read from the head of each file to find its first receive time (the files' reading order).
HEAD_LINES = 1_000


#: ``ImportReport.times`` key of lines without a local time.
NO_TIME = "none"


@dataclass
class ImportReport:
    lines: int = 0
    events: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)  # symbol -> snapshots imported
    malformed: int = 0
    malformed_lines: list[str] = field(default_factory=list)  # "file:line: reason", first few
    clamped: int = 0
    trades: dict[str, int] = field(default_factory=dict)  # symbol -> trades imported
    book_tickers: dict[str, int] = field(default_factory=dict)  # symbol -> bookTickers imported
    other_streams: dict[str, int] = field(default_factory=dict)  # "kline" -> lines skipped
    times: dict[str, int] = field(default_factory=dict)  # how local times were written ("µs", NO_TIME) -> lines
    duplicate_files: list[str] = field(default_factory=list)  # inputs skipped: the same file given again
    segments: list[Path] = field(default_factory=list)
    quarantine: Path | None = None

    def count_time(self, unit: TimeUnit | None) -> None:
        key = NO_TIME if unit is None else unit.value
        self.times[key] = self.times.get(key, 0) + 1

    def skip(self, stream: str) -> None:
        """Count a line of a stream that is not imported."""
        self.other_streams[stream] = self.other_streams.get(stream, 0) + 1

    def without_snapshot(self) -> list[str]:
        """Symbols imported with diffs but no snapshot."""
        return sorted(symbol for symbol in self.events if not self.snapshots.get(symbol))

    def notes(self) -> list[str]:
        """Summary lines about how the input was read: local times, trades and bookTickers, missing snapshots."""
        notes = []
        if self.times:
            notes.append(f"  local receive times: {_times(self.times)}")
        for what, counts in (("trades", self.trades), ("bookTickers", self.book_tickers)):
            if counts:
                each = ", ".join(f"{symbol} {count}" for symbol, count in sorted(counts.items()))
                notes.append(f"  {sum(counts.values())} {what} imported ({each})")
        for symbol in self.without_snapshot():
            notes.append(f"  {symbol}: no depth snapshot in the input: replay's rows for it stay invalid until a "
                         "snapshot, unless one stored before these files continues the update-id chain")
        return notes


def _times(times: dict[str, int]) -> str:
    numbers = [unit.value for unit in (TimeUnit.S, TimeUnit.MS, TimeUnit.US, TimeUnit.NS)]
    parts = [f"{times[key]} lines in {key}" for key in [*numbers, TimeUnit.ISO.value] if times.get(key)]
    if any(times.get(key) for key in numbers):
        parts.append("the unit read from each number's size: s < 1e11 <= ms < 1e14 <= µs < 1e17 <= ns")
    if times.get(NO_TIME):
        parts.append(f"{times[NO_TIME]} lines without one (a diff takes its exchange time E, a snapshot its "
                     "neighbour's)")
    return "; ".join(parts)


def _first_ns(path: Path) -> int | None:
    """The first receive time in the head of a capture (its place in the reading order), if any."""
    try:
        with open_capture(path) as capture:
            for number, line in enumerate(capture.lines):
                if number >= HEAD_LINES:
                    break
                try:
                    parsed = parse_line(line)
                    if parsed.local_ns is not None:
                        return parsed.local_ns
                    event = decode_message(parsed.frame, -1, "?")
                except (MalformedMessageError, DataError):
                    continue
                if isinstance(event, (DepthUpdate, Trade)):
                    return event.event_time_ms * 1_000_000
    except READ_ERRORS:
        return None
    return None


def _content_digest(path: Path) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def _reading_order(files: Iterable[Path], report: ImportReport) -> list[Path]:
    """Distinct inputs (by path, then by content among files of one size), by first receive time, then name."""
    chosen: list[Path] = []
    seen: set[Path] = set()
    by_size: dict[int, list[Path]] = {}
    digests: dict[Path, bytes] = {}
    for path in files:
        try:
            resolved, size = path.resolve(), path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if resolved in seen:
            report.duplicate_files.append(str(path))
            continue
        twins = by_size.setdefault(size, [])
        if twins:
            for other in [path, *twins]:
                if other not in digests:
                    digests[other] = _content_digest(other)
            if any(digests[other] == digests[path] for other in twins):
                report.duplicate_files.append(str(path))
                continue
        seen.add(resolved)
        twins.append(path)
        chosen.append(path)
    firsts = {path: _first_ns(path) for path in chosen}
    return sorted(chosen, key=lambda p: (firsts[p] is None, firsts[p] or 0, str(p)))


class _Importer:
    def __init__(self, data_dir: Path, symbol: str | None, report: ImportReport,
                 market: Market = Market.SPOT) -> None:
        self.data_dir = data_dir
        self.symbol = symbol
        self.report = report
        self.market = market
        self.buffers = SegmentBuffers(data_dir, market)
        # (where, snapshot or bookTicker, line) waiting for a receive time
        self.untimed: list[tuple[str, Snapshot | BookTicker, str]] = []
        self.last_ns: dict[str, int] = {}
        self.prev_ns: int | None = None
        self.diff_symbols: set[str] = set()  # symbols named by a frame's own 's' (diffs, trades, bookTickers)
        self.snapshot_where: dict[str, str] = {}  # symbol -> where its first snapshot was
        self.quarantine = Quarantine(data_dir, "import", append=True)

    def start_file(self) -> None:
        """A file's first snapshots take the receive time of what follows them in that file."""
        self.prev_ns = None

    def feed(self, name: str, number: int, line: str) -> None:
        if not line.strip():
            return
        self.report.lines += 1
        where = f"{name}:{number}"
        try:
            parsed = parse_line(line)
            local = parsed.local_ns
            stream = stream_type(parsed.frame, futures=self.market is Market.USDM)
            if stream is None:
                event = decode_message(parsed.frame, local if local is not None else -1,
                                       frame_symbol(parsed.frame) or self.symbol)
        except (MalformedMessageError, DataError) as exc:
            self._quarantine(where, line, str(exc))
            return
        self.report.count_time(parsed.unit)
        if stream is not None:
            self.report.skip(stream)
            return
        if local is None and isinstance(event, (DepthUpdate, Trade)):
            event = replace(event, recv_ns=event.event_time_ms * 1_000_000)
        elif local is None and isinstance(event, BookTicker) and event.event_time_ms is not None:
            event = replace(event, recv_ns=event.event_time_ms * 1_000_000)
        if isinstance(event, DepthUpdate):
            self._check_market(where, event)
        if isinstance(event, Snapshot):
            self.snapshot_where.setdefault(event.symbol, where)
        else:
            self.diff_symbols.add(event.symbol)
        if event.recv_ns < 0:
            if self.prev_ns is None and isinstance(event, (Snapshot, BookTicker)):
                self.untimed.append((where, event, line))
                return
            assert self.prev_ns is not None  # only snapshots and spot bookTickers come without a receive time
            event = replace(event, recv_ns=self.prev_ns)
        for _, untimed, _ in self.untimed:
            self._add(replace(untimed, recv_ns=event.recv_ns))
        self.untimed.clear()
        self._add(event)

    def _check_market(self, where: str, event: DepthUpdate) -> None:
        """One market per import: the rules that judge the data, and its folders, depend on it."""
        if self.market is Market.SPOT and event.prev_final_update_id is not None:
            raise InputError(f"{where}: these are USD-M futures diffs (pu field): pass --market usdm")
        if self.market is Market.USDM and event.prev_final_update_id is None:
            raise InputError(f"{where}: a spot diff (no pu field) in a --market usdm import; import spot data "
                             "without --market usdm")

    def end_file(self) -> None:
        for where, event, line in self.untimed:
            what = "snapshot" if isinstance(event, Snapshot) else "bookTicker"
            self._quarantine(where, line, f"{what} with no receive time and no later line in its file to take one "
                                          "from; prefix the line with its local receive time")
        self.untimed.clear()

    def unreadable(self, name: str, number: int, exc: BaseException) -> None:
        """A compressed file damaged part-way: what was read is kept, the rest is reported."""
        self.report.malformed += 1
        if len(self.report.malformed_lines) < 20:
            self.report.malformed_lines.append(f"{name}:{number + 1}: cannot read on ({exc}); the lines before "
                                               "were imported")

    def _add(self, event: Event) -> None:
        last = self.last_ns.get(event.symbol)
        if last is not None and event.recv_ns < last:
            event = replace(event, recv_ns=last)
            self.report.clamped += 1
        self.last_ns[event.symbol] = self.prev_ns = event.recv_ns
        self.report.events[event.symbol] = self.report.events.get(event.symbol, 0) + 1
        counts = {Snapshot: self.report.snapshots, Trade: self.report.trades,
                  BookTicker: self.report.book_tickers}.get(type(event))
        if counts is not None:
            counts[event.symbol] = counts.get(event.symbol, 0) + 1
        self.buffers.add(event)
        # A symbol no diff has named yet is held back: its snapshots may turn out to be misfiled.
        if self.buffers.events(event.symbol) >= FLUSH_EVENTS and event.symbol in self.diff_symbols:
            self.report.segments += self.buffers.flush(event.symbol)

    def _quarantine(self, where: str, line: str, reason: str) -> None:
        self.report.malformed += 1
        if len(self.report.malformed_lines) < 20:
            self.report.malformed_lines.append(f"{where}: {reason}")
        self.quarantine.add(where, reason, line.rstrip("\r\n"))

    def finish(self) -> None:
        """Write what is pending; then ``InputError`` for snapshots filed under a symbol no diff names."""
        orphans = sorted(set(self.snapshot_where) - self.diff_symbols)
        for symbol in orphans:
            self.report.events.pop(symbol, None)
            self.report.snapshots.pop(symbol, None)
            self.buffers.drop(symbol)
        self.report.segments += self.buffers.close()
        if orphans:
            named = ", ".join(sorted(self.diff_symbols)) or "no symbol"
            imported = " (the other symbols were imported)" if self.diff_symbols else ""
            raise InputError(
                f"snapshots filed under {', '.join(orphans)} (first at {self.snapshot_where[orphans[0]]}), but no diff "
                f"in the input names {'it' if len(orphans) == 1 else 'them'}; the diffs name {named}. Nothing was "
                f"stored for {', '.join(orphans)}{imported}; pass --symbol with the diffs' symbol"
            )

    def close(self) -> None:
        """Drop segments left open (after an error: nothing half-written becomes visible)."""
        self.buffers.abort()
        self.report.quarantine = self.quarantine.close()


#: ``import_jsonl`` reports progress every this many lines.
_PROGRESS_LINES = 2048


def import_jsonl(files: Iterable[Path], data_dir: Path, symbol: str | None = None,
                 on_bytes: Callable[[int, int], None] | None = None,
                 market: Market = Market.SPOT) -> ImportReport:
    """Import Binance JSONL captures of ``market`` into segments under ``data_dir``, whatever their order.

    ``on_bytes(done, total)``: bytes of the input files (as stored, compressed or not) read so far,
    called now and then (for a progress bar)."""
    report = ImportReport()
    importer = _Importer(data_dir, symbol, report, market)
    try:
        order = _reading_order(files, report)
        total = sum(_size(path) for path in order)
        before = 0
        for path in order:
            importer.start_file()
            with open_capture(path) as capture:
                lines, number = iter(capture.lines), 0
                while True:
                    try:
                        line = next(lines)
                    except StopIteration:
                        if capture.cut_short():
                            importer.unreadable(str(path), number, ValueError(
                                "the file ends inside a zstd frame: it was cut short"))
                        break
                    except READ_ERRORS as exc:
                        importer.unreadable(str(path), number, exc)
                        break
                    number += 1
                    importer.feed(str(path), number, line)
                    if on_bytes is not None and number % _PROGRESS_LINES == 0:
                        on_bytes(before + capture.tell(), total)
            before += _size(path)
            if on_bytes is not None:
                on_bytes(before, total)
            importer.end_file()
        importer.finish()
    finally:
        importer.close()
    return report


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
