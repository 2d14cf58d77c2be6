"""The live path's pure core: raw records in, events, minute rows and resync needs out.

Strategy: the recorder journals every raw message *first*, then turns that journal record into
an event with ``acts.storage.records.record_to_event`` -- the very function that later rolls the
journal into segments. Live rows and replayed rows therefore come from identical events in
identical order, which is what makes "live entries == replay of the recording" hold by construction.

Trade ids are consecutive per symbol, so the fold also follows each symbol's trade-id chain: a trade
whose id is past the previous one + 1 is a ``TradeGap`` (trades were lost), one not past it a duplicate
(ignored). The chain starts afresh at a ``RESTART`` (this process knew no trade) and at a ``DISCONNECT``
(the feed was lost, and every reconnect follows one): the first trade after either has no previous. A
handover's merged feed loses nothing, so it does not break the chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from acts.book.sequencer import Gap, Outcome, Sequencer, StaleSnapshot, State
from acts.core.errors import DataError, MalformedMessageError
from acts.core.events import Event, EventKind, Marker, Trade
from acts.core.markets import Market
from acts.features.pipeline import NO_ROWS, MinuteRow, MinuteSampler, NullAndReportOnce, Rows
from acts.features.registry import Feature
from acts.storage.journal import Channel, JournalRecord
from acts.storage.records import marker_record, record_to_event

__all__ = ["JournalSink", "Ingested", "Ingestor", "SymbolHealth", "TradeGap"]

log = logging.getLogger("acts.recorder")


class JournalSink(Protocol):
    def append(self, record: JournalRecord) -> None: ...


@dataclass
class SymbolHealth:
    """Counters for the recorder's one-line health summary."""

    events: int = 0
    gaps: int = 0
    trade_gaps: int = 0
    stale_snapshots: int = 0
    snapshots: int = 0
    last_event_ms: int | None = None

    def line(self, symbol: str, valid: bool) -> str:
        state = "valid" if valid else "INVALID"
        return (f"{symbol}: {state} book, {self.events} events, {self.snapshots} snapshots, "
                f"{self.gaps} gaps, {self.trade_gaps} trade gaps, {self.stale_snapshots} stale snapshots, "
                f"last E={self.last_event_ms}")


@dataclass(frozen=True, slots=True)
class TradeGap:
    """A trade-id jump: the trade after id ``expected - 1`` was ``got`` (``got - expected`` trades lost)."""

    expected: int
    got: int


#: Markers after which a symbol's next trade has no previous one (see the module docstring).
_TRADE_CHAIN_RESETS = (EventKind.RESTART, EventKind.DISCONNECT)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one record did."""

    symbol: str
    event: Event | None = None
    outcome: Outcome | None = None
    rows: Rows | tuple[MinuteRow, ...] = NO_ROWS
    needs_snapshot: bool = False  # the symbol's book is invalid and waits for a snapshot
    error: str | None = None  # a malformed message (kept in the journal, skipped here)
    trade_gap: TradeGap | None = None  # the record was a trade whose id jumped


class Ingestor:
    """Journal, decode and fold every record, one symbol's sampler each."""

    def __init__(self, symbols: Sequence[str], features: Sequence[Feature], journal: JournalSink,
                 on_malformed: Callable[[JournalRecord, str], None] | None = None,
                 market: Market = Market.SPOT) -> None:
        self.journal = journal
        # User code never stops capture: a failing feature is null, logged once per (feature, symbol).
        self.feature_failures = NullAndReportOnce(log.error)
        # The market's sequencing rules (futures chain by pu), as replay of that market applies them.
        self.samplers = {s: MinuteSampler(s, features, Sequencer(market=market), on_feature_error=self.feature_failures)
                         for s in symbols}
        self.health = {s: SymbolHealth() for s in symbols}
        self._last_trade_id: dict[str, int] = {}  # per symbol, since the last chain reset
        self._on_malformed = on_malformed

    def ingest(self, record: JournalRecord) -> Ingested:
        """Journal ``record``, then fold it."""
        self.journal.append(record)
        return self.fold(record)

    def fold(self, record: JournalRecord) -> Ingested:
        """Decode and fold a record that is already journaled (the live shell journals a whole batch
        of waiting frames first, then folds them in the same order)."""
        try:
            event = record_to_event(record)
        except (MalformedMessageError, DataError, KeyError, ValueError) as exc:
            if self._on_malformed is not None:
                self._on_malformed(record, str(exc))
            return Ingested(record.symbol, error=str(exc))
        sampler = self.samplers.get(event.symbol)
        if sampler is None:
            error = f"message for {event.symbol}, which is not being recorded"
            if self._on_malformed is not None:
                self._on_malformed(record, error)
            return Ingested(event.symbol, event, error=error)
        rows, outcome = sampler.apply(event)
        self._count(event, outcome)
        trade_gap = self._follow_trades(event)
        needs = sampler.sequencer.state is State.NO_BOOK and record.channel is not Channel.MARKER
        return Ingested(event.symbol, event, outcome, rows, needs, trade_gap=trade_gap)

    def _follow_trades(self, event: Event) -> TradeGap | None:
        """The trade-id chain (module docstring): a jump is a ``TradeGap``, a duplicate changes nothing."""
        if isinstance(event, Marker):
            if event.kind in _TRADE_CHAIN_RESETS:
                self._last_trade_id.pop(event.symbol, None)
            return None
        if not isinstance(event, Trade):
            return None
        last = self._last_trade_id.get(event.symbol)
        if last is not None and event.trade_id <= last:
            return None
        self._last_trade_id[event.symbol] = event.trade_id
        if last is None or event.trade_id == last + 1:
            return None
        self.health[event.symbol].trade_gaps += 1
        return TradeGap(last + 1, event.trade_id)

    def marker(self, kind: EventKind, symbol: str, recv_ns: int, **detail: object) -> Ingested:
        return self.ingest(marker_record(kind, symbol, recv_ns, **detail))

    def _count(self, event: Event, outcome: Outcome) -> None:
        health = self.health[event.symbol]
        health.events += 1
        if event.kind is EventKind.SNAPSHOT:
            health.snapshots += 1
        if isinstance(outcome, Gap):
            health.gaps += 1
        elif isinstance(outcome, StaleSnapshot):
            health.stale_snapshots += 1
        last = self.samplers[event.symbol].sequencer.last_event_time_ms
        if last is not None:
            health.last_event_ms = last

    def valid(self, symbol: str) -> bool:
        return self.samplers[symbol].sequencer.valid
