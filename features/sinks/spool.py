"""Never lose an entry to a MongoDB outage: write to a local spool first, forward when possible.

Entries leave the spool only after the primary accepted them, so a crash or an outage at any point
leaves them on disk; upserts by key make the retried writes duplicate-free.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from acts.errors import SinkError
from features.sinks.base import Sink
from features.sinks.sqlite import SqliteSink

__all__ = ["SpoolingSink"]

log = logging.getLogger("acts.sinks")


class SpoolingSink:
    def __init__(self, primary: Sink, spool: SqliteSink, batch: int = 500) -> None:
        self.primary = primary
        self.spool = spool
        self.batch = batch
        self.last_error: str | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return self.spool.count()

    def write(self, entries: Sequence[dict[str, Any]]) -> int:
        self.spool.write(entries)  # a spool (disk) failure is real and raises
        self.flush()
        return len(entries)

    def flush(self) -> int:
        """Forward spooled entries to the primary; returns how many are still pending."""
        while True:
            waiting = self.spool.read()[: self.batch]
            if not waiting:
                self.last_error = None
                return 0
            try:
                self.primary.write(waiting)
            except SinkError as exc:
                if self.last_error != str(exc):
                    log.error("%s; %d entries kept in %s until it is back", exc, self.pending, self.spool.path)
                self.last_error = str(exc)
                return self.pending
            self.spool.delete([(e["symbol"], e["minute"]) for e in waiting])

    def read(self, symbols: Sequence[str] | None = None, start: str | None = None,
             end: str | None = None) -> list[dict[str, Any]]:
        self.flush()
        return self.primary.read(symbols, start, end)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()
        self.primary.close()
        self.spool.close()
