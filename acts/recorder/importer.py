"""``acts import --format binance-jsonl``: raw captures -> segments.

One JSON value per line, any of:

* a raw ``depthUpdate`` object, or a combined-stream wrapper ``{"stream": ..., "data": {...}}``;
* a REST depth snapshot ``{"lastUpdateId", "bids", "asks"}`` (symbol from the line's ``symbol``
  key or ``--symbol``);
* either of the above prefixed by a local receive time, ``<local_ts> <json>`` (hftbacktest
  collector style): the unit is taken from the magnitude (s, ms, us or ns since the epoch).

Files may be compressed (``.gz``, ``.zst``, ``.bz2``, ``.xz``: recognised by their magic bytes, whatever
the name), start with a UTF-8 BOM and end lines with CRLF. Lines of other streams (``trade``,
``aggTrade``, ``bookTicker``, ``kline``, tickers) are counted as "other streams" and skipped.

Lines without a local time get ``E`` (ms -> ns) as receive time; a snapshot without one gets
the receive time of the line before it (or after it, at the top of a file). Receive times
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
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import zstandard

from acts.core.errors import DataError, InputError, MalformedMessageError
from acts.core.events import MAX_TIME_MS, MIN_TIME_MS, DepthUpdate, Event, Snapshot, decode_message
from acts.recorder.import_files import READ_ERRORS, open_capture
from acts.storage.buffers import SegmentBuffers
from acts.storage.quarantine import Quarantine

__all__ = ["ImportReport", "import_jsonl", "parse_line", "open_capture", "other_stream"]

#: Events held per symbol before they are appended to its open segment (bounded memory for huge captures).
FLUSH_EVENTS = 20_000
#: Lines read from the head of each file to find its first receive time (the files' reading order).
HEAD_LINES = 1_000
#: Event types of Binance market streams other than diff depth: counted and skipped, not malformed.
OTHER_EVENTS = frozenset({"trade", "aggTrade", "kline", "24hrTicker", "24hrMiniTicker", "1hTicker", "4hTicker",
                          "1dTicker", "avgPrice", "bookTicker"})
#: Combined-stream names of the diff-depth stream (``btcusdt@depth``, ``btcusdt@depth@100ms``).
_DEPTH_STREAM = re.compile(r"[^@]+@depth(@\d+ms)?")
#: Keys of a ``bookTicker`` message, the one market stream without an ``"e"``.
_BOOK_TICKER_KEYS = frozenset({"u", "s", "b", "B", "a", "A"})
_MIN_NS, _MAX_NS = MIN_TIME_MS * 1_000_000, MAX_TIME_MS * 1_000_000


@dataclass
class ImportReport:
    lines: int = 0
    events: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    malformed_lines: list[str] = field(default_factory=list)  # "file:line: reason", first few
    clamped: int = 0
    other_streams: dict[str, int] = field(default_factory=dict)  # "trade" -> lines skipped
    duplicate_files: list[str] = field(default_factory=list)  # inputs skipped: the same file given again
    segments: list[Path] = field(default_factory=list)
    quarantine: Path | None = None


def _local_ns(token: str) -> int:
    value = float(token) if any(c in token for c in ".eE") else int(token)
    magnitude = abs(value)
    scale = 1 if magnitude >= 1e17 else 1_000 if magnitude >= 1e14 else 1_000_000 if magnitude >= 1e11 else 10**9
    return int(value * scale) if isinstance(value, int) else int(round(value * scale))


def parse_line(line: str) -> tuple[int | None, Any]:
    """``(local receive ns or None, parsed JSON)``; raises ``MalformedMessageError``."""
    text = line.strip().lstrip("\ufeff")
    local: int | None = None
    if text and text[0] not in "{[":
        token, _, text = text.partition(" ")
        try:
            local = _local_ns(token)
        except (ValueError, OverflowError):
            raise MalformedMessageError(f"line starts with {token[:20]!r}, neither JSON nor a timestamp") from None
        if not _MIN_NS <= local < _MAX_NS:
            raise MalformedMessageError(f"local receive time {token[:24]!r} is not a time in 2017..2100")
    try:
        return local, json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedMessageError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise MalformedMessageError("JSON nested too deeply") from None


def other_stream(msg: Any) -> str | None:
    """The name of the market stream a message belongs to when it is not diff depth (``"trade"``), else None."""
    if isinstance(msg, dict) and "stream" in msg and "data" in msg:
        name = msg["stream"]
        if isinstance(name, str) and "@" in name and not _DEPTH_STREAM.fullmatch(name):
            return name.split("@", 1)[1].split("_", 1)[0]  # btcusdt@kline_1m -> kline
        msg = msg["data"]
    if not isinstance(msg, dict):
        return None
    event_type = msg.get("e")
    if event_type in OTHER_EVENTS:
        return str(event_type)
    if event_type is None and _BOOK_TICKER_KEYS <= msg.keys():
        return "bookTicker"
    return None


def _first_ns(path: Path) -> int | None:
    """The first receive time in the head of a capture (its place in the reading order), if any."""
    try:
        with open_capture(path) as capture:
            for number, line in enumerate(capture.lines):
                if number >= HEAD_LINES:
                    break
                try:
                    local, msg = parse_line(line)
                    if local is not None:
                        return local
                    event = decode_message(msg, -1, "?")
                except (MalformedMessageError, DataError):
                    continue
                if isinstance(event, DepthUpdate):
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
    def __init__(self, data_dir: Path, symbol: str | None, report: ImportReport) -> None:
        self.data_dir = data_dir
        self.symbol = symbol
        self.report = report
        self.buffers = SegmentBuffers(data_dir)
        self.untimed: list[tuple[str, Snapshot, str]] = []  # (where, snapshot, line) waiting for a receive time
        self.last_ns: dict[str, int] = {}
        self.prev_ns: int | None = None
        self.diff_symbols: set[str] = set()
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
            local, msg = parse_line(line)
            stream = other_stream(msg)
            if stream is not None:
                self.report.other_streams[stream] = self.report.other_streams.get(stream, 0) + 1
                return
            event = decode_message(msg, local if local is not None else -1, self.symbol)
        except (MalformedMessageError, DataError) as exc:
            self._quarantine(where, line, str(exc))
            return
        if local is None and isinstance(event, DepthUpdate):
            event = replace(event, recv_ns=event.event_time_ms * 1_000_000)
        if isinstance(event, DepthUpdate):
            self.diff_symbols.add(event.symbol)
        else:
            self.snapshot_where.setdefault(event.symbol, where)
        if event.recv_ns < 0:
            if self.prev_ns is None and isinstance(event, Snapshot):
                self.untimed.append((where, event, line))
                return
            assert self.prev_ns is not None  # only snapshots come without a receive time
            event = replace(event, recv_ns=self.prev_ns)
        for _, snapshot, _ in self.untimed:
            self._add(replace(snapshot, recv_ns=event.recv_ns))
        self.untimed.clear()
        self._add(event)

    def end_file(self) -> None:
        for where, _, line in self.untimed:
            self._quarantine(where, line, "snapshot with no receive time and no later line in its file to take one "
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
                 on_bytes: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import Binance JSONL captures into segments under ``data_dir``, whatever their order.

    ``on_bytes(done, total)``: bytes of the input files (as stored, compressed or not) read so far,
    called now and then (for a progress bar)."""
    report = ImportReport()
    importer = _Importer(data_dir, symbol, report)
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
                            importer.unreadable(str(path), number, zstandard.ZstdError(
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
