"""Journal -> segments: at each rotation, at shutdown, and for journals a crash left behind.

Order of operations makes a crash at any point safe: segments are written first (idempotent:
same events, same file names), and only then is the journal moved to ``journal/rolled/``. A
crash in between rolls the same journal again on the next start and rewrites identical files.
Messages that cannot be decoded are kept, raw, in ``quarantine/`` next to the segments.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

from acts.errors import DataError, MalformedMessageError
from recorder.events import Event
from recorder.ingest import record_to_event
from recorder.journal import JournalScan, JournalWriter, iter_journal, list_journals, mark_rolled
from recorder.segments import write_segments

__all__ = ["Roller"]

log = logging.getLogger("acts.recorder.roll")

#: A symbol's events held during a roll before they are written out (an hour of a 100 ms stream).
ROLL_CHUNK_EVENTS = 36_000
#: Decoded events held during a roll, all symbols together; past it the largest buffer is written
#: out. Bounds a roll's memory (~1-2 GB at deep 100 ms books) whatever the journal's length, at the
#: price of several files per symbol-hour when many symbols share one journal.
ROLL_BUDGET_EVENTS = 500_000


class Roller:
    """Owns ``DATA/journal``: opens journals and rolls finished ones into ``DATA/segments``."""

    def __init__(self, data_dir: Path, flush_interval_s: float = 1.0, keep_rolled: bool = True) -> None:
        self.data_dir = data_dir
        self.journal_dir = data_dir / "journal"
        self.rolled_dir = self.journal_dir / "rolled"
        self.flush_interval_s = flush_interval_s
        self.keep_rolled = keep_rolled

    def open_journal(self, now_ns: int) -> JournalWriter:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        return JournalWriter(self.journal_dir / f"{now_ns}.journal", flush_interval_s=self.flush_interval_s)

    def finish(self, writer: JournalWriter) -> list[Path]:
        """Close ``writer`` and roll its journal."""
        writer.close()
        return self.roll(writer.path)

    def recover(self) -> list[Path]:
        """Roll every journal a previous run did not finish (after a crash or kill -9)."""
        paths: list[Path] = []
        for journal in list_journals(self.journal_dir):
            log.warning("recovering unfinished journal %s", journal.name)
            paths += self.roll(journal)
        return paths

    def roll(self, journal: Path) -> list[Path]:
        """Write the journal's events as segments, then retire it. Streams: one journal frame and at
        most ``ROLL_BUDGET_EVENTS`` decoded events in memory, whatever the journal's length."""
        scan = JournalScan()
        buffers: dict[str, list[Event]] = {}
        held = 0
        paths: list[Path] = []
        bad: list[dict[str, object]] = []
        for record in iter_journal(journal, scan):
            try:
                event = record_to_event(record)
            except (MalformedMessageError, DataError, KeyError, ValueError) as exc:
                bad.append({"recv_ns": record.recv_ns, "channel": record.channel.name, "symbol": record.symbol,
                            "error": str(exc), "payload_b64": base64.b64encode(record.payload).decode()})
                continue
            buffer = buffers.setdefault(event.symbol, [])
            buffer.append(event)
            held += 1
            if len(buffer) >= ROLL_CHUNK_EVENTS or held >= ROLL_BUDGET_EVENTS:
                # Which buffer goes out depends on the journal's contents alone, so rolling the same
                # journal again (after a crash mid-roll) rewrites the very same files.
                symbol = event.symbol if len(buffer) >= ROLL_CHUNK_EVENTS else _largest(buffers)
                paths += write_segments(self.data_dir, symbol, buffers[symbol])
                held -= len(buffers[symbol])
                buffers[symbol] = []
        if scan.damaged:
            tail = ", an unfinished last frame: crash mid-write" if scan.truncated_tail else ""
            log.warning("%s: %d damaged bytes skipped (%d corrupt frames%s)", journal.name, scan.dropped_bytes,
                        scan.corrupt_frames, tail)
        paths += [p for symbol, events in sorted(buffers.items()) if events
                  for p in write_segments(self.data_dir, symbol, events)]
        if bad:
            self._quarantine(journal, bad)
        mark_rolled(journal, self.rolled_dir if self.keep_rolled else None)
        return paths

    def _quarantine(self, journal: Path, bad: list[dict[str, object]]) -> None:
        directory = self.data_dir / "quarantine"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"journal-{journal.stem}.jsonl"
        tmp = target.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(b, sort_keys=True) + "\n" for b in bad))
        os.replace(tmp, target)
        log.warning("%s: %d malformed messages kept in %s", journal.name, len(bad), target)



def _largest(buffers: dict[str, list[Event]]) -> str:
    return max(buffers, key=lambda symbol: (len(buffers[symbol]), symbol))
