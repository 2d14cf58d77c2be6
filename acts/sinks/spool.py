"""Never lose an entry to a MongoDB outage: write to a local spool first, forward when possible.

Entries leave the spool only after the primary accepted them, so a crash or an outage at any point
leaves them on disk; upserts by key make the retried writes duplicate-free.

Strategy: an outage costs one bounded attempt, not one per write. After the primary fails, writes
only spool for ``retry_after_s`` (by the injected clock); the next write after that tries again. A
write to a dead MongoDB waits out its whole timeout, so trying on every write would hold every
caller (the recorder's publisher, 200 symbols a minute) that long, and a stop behind them. ``close``
gives the primary one last try of at most ``close_timeout_s``, and none if it just failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from acts.core.clock import Clock, SystemClock
from acts.core.errors import SinkError
from acts.sinks.base import Sink
from acts.sinks.sqlite import SqliteSink

__all__ = ["SpoolingSink"]

log = logging.getLogger("acts.sinks")


#: The most ``close`` waits for the primary: a stop must be quick even while MongoDB is down.
CLOSE_TIMEOUT_S = 1.0


class SpoolingSink:
    def __init__(self, primary: Sink, spool: SqliteSink, batch: int = 500, retry_after_s: float = 30.0,
                 close_timeout_s: float = CLOSE_TIMEOUT_S, clock: Clock | None = None) -> None:
        self.primary = primary
        self.spool = spool
        self.batch = batch
        self.retry_after_s = retry_after_s
        self.close_timeout_s = close_timeout_s
        self.clock: Clock = clock or SystemClock()
        self.last_error: str | None = None
        self._failed_at: float | None = None  # clock.monotonic() of the last failed attempt
        self._closed = False

    @property
    def pending(self) -> int:
        return self.spool.count()

    @property
    def resting(self) -> bool:
        """The primary failed less than ``retry_after_s`` ago: writes only spool."""
        return self._failed_at is not None and self.clock.monotonic() - self._failed_at < self.retry_after_s

    def write(self, entries: Sequence[dict[str, Any]], timeout_s: float | None = None) -> int:
        """Spool ``entries``, then forward what is spooled unless the primary is resting after a failure."""
        self.spool.write(entries)  # a spool (disk) failure is real and raises
        if not self.resting:
            self.flush(timeout_s)
        return len(entries)

    def flush(self, timeout_s: float | None = None) -> int:
        """Forward spooled entries to the primary, each batch within ``timeout_s`` (default: the
        primary's own bound); returns how many are still pending."""
        while True:
            waiting = self.spool.read()[: self.batch]
            if not waiting:
                self.last_error, self._failed_at = None, None
                return 0
            try:
                self.primary.write(waiting, timeout_s=timeout_s)
            except SinkError as exc:
                self._failed_at = self.clock.monotonic()
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
        if not self.resting:  # one last, short try; entries it cannot forward stay spooled for the next run
            self.flush(self.close_timeout_s)
        self.primary.close()
        self.spool.close()
