"""``acts import --format binance-jsonl``: raw captures -> segments.

One JSON value per line, any of:

* a raw ``depthUpdate`` object, or a combined-stream wrapper ``{"stream": ..., "data": {...}}``;
* a REST depth snapshot ``{"lastUpdateId", "bids", "asks"}`` (symbol from the line's ``symbol``
  key or ``--symbol``);
* either of the above prefixed by a local receive time, ``<local_ts> <json>`` (hftbacktest
  collector style): the unit is taken from the magnitude (s, ms, us or ns since the epoch).

Lines without a local time get ``E`` (ms -> ns) as receive time; a snapshot without one gets
the receive time of the line before it (or after it, at the top of a file). Receive times
never go backwards within a symbol (clamped, and counted). Malformed lines are counted,
reported with their line numbers and kept in a quarantine file; the rest imports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from acts.errors import DataError, InputError, MalformedMessageError
from recorder.events import DepthUpdate, Event, Snapshot, decode_message
from recorder.segments import SegmentWriter

__all__ = ["ImportReport", "import_jsonl", "parse_line"]

#: Events held per symbol before they are appended to its open segment (bounded memory for huge captures).
FLUSH_EVENTS = 20_000


@dataclass
class ImportReport:
    lines: int = 0
    events: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    malformed_lines: list[str] = field(default_factory=list)  # "file:line: reason", first few
    clamped: int = 0
    segments: list[Path] = field(default_factory=list)
    quarantine: Path | None = None


def _local_ns(token: str) -> int:
    value = float(token) if any(c in token for c in ".eE") else int(token)
    magnitude = abs(value)
    scale = 1 if magnitude >= 1e17 else 1_000 if magnitude >= 1e14 else 1_000_000 if magnitude >= 1e11 else 10**9
    return int(value * scale) if isinstance(value, int) else int(round(value * scale))


def parse_line(line: str) -> tuple[int | None, Any]:
    """``(local receive ns or None, parsed JSON)``; raises ``MalformedMessageError``."""
    text = line.strip()
    local: int | None = None
    if text and text[0] not in "{[":
        token, _, text = text.partition(" ")
        try:
            local = _local_ns(token)
        except ValueError:
            raise MalformedMessageError(f"line starts with {token[:20]!r}, neither JSON nor a timestamp") from None
    try:
        return local, json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedMessageError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None


class _Importer:
    def __init__(self, data_dir: Path, symbol: str | None, report: ImportReport) -> None:
        self.data_dir = data_dir
        self.symbol = symbol
        self.report = report
        self.pending: dict[str, list[Event]] = {}
        self.writers: dict[str, SegmentWriter] = {}
        self.untimed: list[Snapshot] = []  # snapshots waiting for a receive time
        self.last_ns: dict[str, int] = {}
        self.prev_ns: int | None = None
        self.quarantine_fh: Any = None

    def feed(self, name: str, number: int, line: str) -> None:
        if not line.strip():
            return
        self.report.lines += 1
        try:
            local, msg = parse_line(line)
            event = decode_message(msg, local if local is not None else -1, self.symbol)
        except (MalformedMessageError, DataError) as exc:
            self._quarantine(name, number, line, str(exc))
            return
        if local is None and isinstance(event, DepthUpdate):
            event = replace(event, recv_ns=event.event_time_ms * 1_000_000)
        if event.recv_ns < 0:
            if self.prev_ns is None:
                self.untimed.append(event)  # type: ignore[arg-type]
                return
            event = replace(event, recv_ns=self.prev_ns)
        for snapshot in self.untimed:
            self._add(replace(snapshot, recv_ns=event.recv_ns))
        self.untimed.clear()
        self._add(event)

    def _add(self, event: Event) -> None:
        last = self.last_ns.get(event.symbol)
        if last is not None and event.recv_ns < last:
            event = replace(event, recv_ns=last)
            self.report.clamped += 1
        self.last_ns[event.symbol] = self.prev_ns = event.recv_ns
        self.report.events[event.symbol] = self.report.events.get(event.symbol, 0) + 1
        bucket = self.pending.setdefault(event.symbol, [])
        bucket.append(event)
        if len(bucket) >= FLUSH_EVENTS:
            self._flush(event.symbol)

    def _flush(self, symbol: str) -> None:
        if symbol not in self.writers:
            self.writers[symbol] = SegmentWriter(self.data_dir, symbol)
        self.report.segments += self.writers[symbol].write(self.pending[symbol])
        self.pending[symbol] = []

    def _quarantine(self, name: str, number: int, line: str, reason: str) -> None:
        self.report.malformed += 1
        if len(self.report.malformed_lines) < 20:
            self.report.malformed_lines.append(f"{name}:{number}: {reason}")
        if self.quarantine_fh is None:
            path = self.data_dir / "quarantine" / "import.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.report.quarantine = path
            self.quarantine_fh = open(path, "a")
        record = {"file": name, "line": number, "error": reason, "text": line.rstrip("\n")}
        self.quarantine_fh.write(json.dumps(record, sort_keys=True) + "\n")

    def finish(self) -> None:
        if self.untimed:
            for snapshot in self.untimed:
                self._quarantine("", 0, json.dumps({"lastUpdateId": snapshot.last_update_id}),
                                 "snapshot with no receive time and no event to take one from")
        for symbol in sorted(self.pending):
            self._flush(symbol)
            self.report.segments += self.writers[symbol].close()

    def close(self) -> None:
        """Drop segments left open (after an error: nothing half-written becomes visible)."""
        for writer in self.writers.values():
            writer.abort()
        if self.quarantine_fh is not None:
            self.quarantine_fh.close()


def import_jsonl(files: Iterable[Path], data_dir: Path, symbol: str | None = None) -> ImportReport:
    """Import Binance JSONL captures into segments under ``data_dir``."""
    report = ImportReport()
    importer = _Importer(data_dir, symbol, report)
    try:
        for path in files:
            try:
                fh = open(path, encoding="utf-8", errors="replace")
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror}") from None
            with fh:
                for number, line in enumerate(fh, start=1):
                    importer.feed(str(path), number, line)
        importer.finish()
    finally:
        importer.close()
    return report
