"""Events on their way into segments: a buffer and a ``SegmentWriter`` per symbol.

The one flow of the journal roll (``acts.recorder.roll``) and of import (``acts.recorder.importer``): add events
as they are decoded, flush a symbol's buffer as a row group whenever the caller's memory policy says
so, then ``close`` (flush the rest, finish every file) or ``abort`` (nothing half-written becomes
visible). What does not decode goes to a ``Quarantine``, which the caller owns.
"""

from __future__ import annotations

from pathlib import Path

from acts.core.events import DepthUpdate, Event, Snapshot
from acts.core.markets import Market
from acts.storage.segments import SegmentWriter

__all__ = ["SegmentBuffers", "rows_of"]


def rows_of(event: Event) -> int:
    """Rows ``event`` takes in a segment: one per level, and at least one."""
    return max(1, len(event.bids) + len(event.asks)) if isinstance(event, (DepthUpdate, Snapshot)) else 1


class SegmentBuffers:
    """Buffered events per symbol, written through one ``SegmentWriter`` per symbol.

    ``events(symbol)`` and ``rows[symbol]`` say what a symbol holds, ``held`` what all hold together
    (in rows), for the caller to decide when to ``flush``.
    """

    def __init__(self, data_dir: Path, market: Market = Market.SPOT) -> None:
        self.data_dir = data_dir
        self.market = market  # every symbol's segments go to this market's folders
        self.writers: dict[str, SegmentWriter] = {}
        self._pending: dict[str, list[Event]] = {}
        #: Rows buffered per symbol (0 once flushed), and for all symbols together.
        self.rows: dict[str, int] = {}
        self.held = 0

    def add(self, event: Event) -> None:
        self._pending.setdefault(event.symbol, []).append(event)
        size = rows_of(event)
        self.rows[event.symbol] = self.rows.get(event.symbol, 0) + size
        self.held += size

    def events(self, symbol: str) -> int:
        """Events of ``symbol`` buffered."""
        return len(self._pending.get(symbol, ()))

    def flush(self, symbol: str) -> list[Path]:
        """Write ``symbol``'s buffer as a row group of its open segment; the segments it finished."""
        if symbol not in self.writers:
            self.writers[symbol] = SegmentWriter(self.data_dir, symbol, market=self.market)
        done = self.writers[symbol].write(self._pending.get(symbol, []))
        self.held -= self.rows.get(symbol, 0)
        self._pending[symbol], self.rows[symbol] = [], 0
        return done

    def drop(self, symbol: str) -> None:
        """Forget what is buffered of ``symbol`` (never flushed: nothing of it is written)."""
        self.held -= self.rows.pop(symbol, 0)
        self._pending.pop(symbol, None)

    def close(self) -> list[Path]:
        """Flush every buffer, in symbol order, and finish every segment: the segments finished."""
        paths: list[Path] = []
        for symbol in sorted(self._pending):
            paths += self.flush(symbol) + self.writers[symbol].close()
        return paths

    def abort(self) -> None:
        """Drop every segment left open (after an error)."""
        for writer in self.writers.values():
            writer.abort()

    def written(self) -> dict[str, int]:
        """Events handed to each symbol's writer so far: what its finished files must hold together."""
        return {symbol: writer.events for symbol, writer in self.writers.items()}
