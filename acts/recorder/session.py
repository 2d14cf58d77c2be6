"""The recorder's decisions, sans I/O: inputs in, actions out (h11's ``Connection`` for a recording).

The shell (``acts.recorder.live``) tells the session what happened -- a frame, a REST answer, a
connection opened or failed, a timer tick -- each with the current monotonic time, and carries out
the actions it gets back, in order. The session never reads a clock, sleeps, logs or touches a
socket, so every rule below is tested by calling it with made-up times.

Rules:

* Start: a RESTART marker for every symbol (this process knows nothing of what came before), then
  one connection per ``streams_per_connection`` symbols.
* A connection that opened writes CONNECT markers. A stalled one (no frame for ``stale_after_s``,
  timed by the shell) reconnects after ``reconnect_delay_s``; a failed one after an exponential
  backoff, ``reconnect_delay_s * 2**(n-1)`` capped at ``backoff_max_s``, and the recording stops
  once a line of connections has failed more than ``max_retries`` times. Either way DISCONNECT
  markers first.
* A connection is handed over -- a successor opened while it still delivers, merged in order by
  ``acts.recorder.handover`` -- at Binance's ``serverShutdown`` notice or at
  ``max_connection_age_s``; one handover at a time. An error of a connection whose successor is
  already connecting is not reconnected: the successor is the feed.
* Every frame is journaled and folded (``JournalAndFold``); the shell hands the fold's result back
  (``folded``). A gap writes a GAP marker; an invalid book asks for a snapshot, at most one in
  flight per symbol, announced by a RESYNC marker whose reason says why (``gap``, ``crossed``,
  ``bbo_mismatch`` when the book disagreed with a bookTicker at the same update id, else ``sync``).
  A trade-id jump (``Ingested.trade_gap``) writes a GAP marker whose detail says ``"stream": "trade"``,
  and no resync: trades have no snapshot, and the book is not touched.
* Capture never waits for the fold: the shell journals every frame at once and folds behind, in
  journal order, and reports how far behind (``fold_backlog``). Lagging more than
  ``fold_lag_warn_s`` logs a warning (and a line when it caught up). More than ``fold_backlog_max``
  records waiting: the fold skips them (``SkipFolds``; they stay in the journal) and a RESTART marker
  makes every book start over from a snapshot -- live and replay forget at the same journal
  position, so live rows of the skipped stretch are invalid where replay's may be valid, never wrong.
* Snapshots spend REST weight from a rolling one-minute budget (``weight_per_minute``) and wait
  while a 429/418 ban lasts (``Retry-After``, 60 s if absent). Failures with status >= 500,
  429/418, or no answer are retried with the same backoff as connections, up to ``max_retries``
  times; other failures give up (the book stays invalid, never wrong, until the next gap or checkpoint).
* Timers: checkpoint snapshots every ``snapshot_every_s``, journal rolls every ``roll_every_s``,
  health lines every ``health_every_s``, journal fsyncs every ``journal_flush_s``, and a stop at
  ``duration_s``. ``Wait(until)`` tells the shell when the next tick is due, whenever that moves earlier.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Union

from acts.book.sequencer import BboMismatch, Crossed, Gap, StaleSnapshot
from acts.core.errors import ExchangeError
from acts.core.events import DisconnectReason, EventKind, ResyncReason
from acts.core.weights import depth_weight
from acts.features.pipeline import MinuteRow
from acts.recorder.config import RecorderConfig
from acts.recorder.handover import Handover
from acts.recorder.ingest import Ingested
from acts.recorder.transport import RestFailure
from acts.storage.journal import JournalRecord

#: Why a book that needs a snapshot needs it, by what the sequencer said (anything else: ``SYNC``).
_RESYNC_REASONS: dict[type, ResyncReason] = {Gap: ResyncReason.GAP, Crossed: ResyncReason.CROSSED,
                                             BboMismatch: ResyncReason.BBO_MISMATCH}

__all__ = [
    "RecorderSession",
    "Action",
    "Connect",
    "Reconnect",
    "HandOver",
    "Close",
    "JournalAndFold",
    "WriteMarker",
    "FetchSnapshot",
    "Wait",
    "PublishEntries",
    "RollJournal",
    "FlushJournal",
    "LogHealth",
    "Log",
    "Stop",
    "SkipFolds",
    "FOLD_SKIP_REASON",
    "TRADE_GAP_STREAM",
    "RETRY_STATUSES",
    "WEIGHT_WINDOW_S",
]

#: HTTP statuses that mean "too many requests": wait as long as the exchange asks, then retry.
RETRY_STATUSES = (429, 418)
#: Binance counts REST weight per rolling minute.
WEIGHT_WINDOW_S = 60.0
#: Retry-After when a 429/418 does not say (Binance's documented default for an unspecified ban).
DEFAULT_RETRY_AFTER_S = 60.0
#: Shortest wait for budget: a tick at the very instant the oldest weight expires may still see it.
_MIN_BUDGET_WAIT_S = 0.05
#: The first line of a websocket frame names its event: ``serverShutdown`` is Binance's notice.
_SHUTDOWN_NOTICE = b'"serverShutdown"'
_NOTICE_PREFIX = 80
#: The ``reason`` detail of the RESTART marker written when the fold skips its backlog.
FOLD_SKIP_REASON = "fold_behind"
#: The ``stream`` detail of a trade gap's GAP marker (a depth gap's marker has no ``stream``).
TRADE_GAP_STREAM = "trade"


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """Open connection ``connection`` for ``symbols``' streams."""

    connection: int
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """``replaces`` is gone (``reason``): open ``connection`` for the same symbols after ``after_s``."""

    connection: int
    replaces: int
    symbols: tuple[str, ...]
    after_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class HandOver:
    """Open ``new`` beside ``old``, which stays the feed until ``new`` has caught up (``reason``)."""

    old: int
    new: int
    symbols: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``connection`` now: its successor has taken over. Not a failure."""

    connection: int


@dataclass(frozen=True, slots=True)
class JournalAndFold:
    """Append ``record`` to the journal and fold it, with no ``await`` between; report it with ``folded``."""

    record: JournalRecord


@dataclass(frozen=True, slots=True)
class WriteMarker:
    """Journal and fold a ``kind`` marker for each of ``symbols``; ``recv_ns`` None: stamp it now."""

    kind: EventKind
    symbols: tuple[str, ...]
    detail: tuple[tuple[str, object], ...] = ()
    recv_ns: int | None = None


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """GET the depth snapshot; answer with ``snapshot_received`` or ``snapshot_failed``."""

    symbol: str
    limit: int


@dataclass(frozen=True, slots=True)
class Wait:
    """The session's next deadline moved earlier: tick it at ``until`` (monotonic seconds)."""

    until: float


@dataclass(frozen=True, slots=True)
class PublishEntries:
    """Minute rows closed by the last fold: publish them once the journal that closed them is durable."""

    rows: tuple[MinuteRow, ...]


@dataclass(frozen=True, slots=True)
class RollJournal:
    """Open a new journal and roll the old one into segments."""


@dataclass(frozen=True, slots=True)
class FlushJournal:
    """Fsync the journal now, frames or not."""


@dataclass(frozen=True, slots=True)
class LogHealth:
    """Log every symbol's health line."""


@dataclass(frozen=True, slots=True)
class Log:
    """Something worth a log line (``symbol`` None: the recorder's own log)."""

    level: int
    message: str
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop recording; ``failure`` says why when it is not a normal end."""

    failure: ExchangeError | None = None


@dataclass(frozen=True, slots=True)
class SkipFolds:
    """Drop the records waiting for the fold (``waiting`` of them): they stay journaled, unfolded."""

    waiting: int


Action = Union[Connect, Reconnect, HandOver, Close, JournalAndFold, WriteMarker, FetchSnapshot, Wait, PublishEntries,
               RollJournal, FlushJournal, LogHealth, Log, Stop, SkipFolds]


# --- state -----------------------------------------------------------------------------------


@dataclass
class _Connection:
    symbols: tuple[str, ...]
    failures: int = 0  # failed attempts of this line of connections (stalls not counted)
    incoming: Handover[JournalRecord] | None = None  # this one is taking over from an older one
    outgoing: Handover[JournalRecord] | None = None  # a successor is taking over from this one
    opened_at: float | None = None

    def may_hand_over(self) -> bool:
        """One handover at a time: not while this one is still taking over, nor twice."""
        return self.outgoing is None and (self.incoming is None or self.incoming.done)


@dataclass
class _Timer:
    every_s: float | None
    due: float = float("inf")

    def start(self, now: float) -> None:
        self.due = now + self.every_s if self.every_s else float("inf")

    def fire(self, now: float) -> bool:
        if now < self.due or self.every_s is None:
            return False
        self.due += self.every_s
        if self.due <= now:  # late (a long pause): no burst of catch-up ticks
            self.due = now + self.every_s
        return True


@dataclass
class _WeightBudget:
    """Binance REST request weight per rolling minute, so snapshots never earn a 429."""

    per_minute: int
    spent: deque[tuple[float, int]] = field(default_factory=deque)
    banned_until: float = 0.0

    def free_at(self, now: float, weight: int) -> float:
        """When ``weight`` may be spent (``now`` if at once)."""
        if now < self.banned_until:
            return self.banned_until
        while self.spent and now - self.spent[0][0] >= WEIGHT_WINDOW_S:
            self.spent.popleft()
        if sum(w for _, w in self.spent) + weight <= self.per_minute:
            return now
        return now + max(_MIN_BUDGET_WAIT_S, WEIGHT_WINDOW_S - (now - self.spent[0][0]))

    def spend(self, now: float, weight: int) -> None:
        self.spent.append((now, weight))


# --- the session -----------------------------------------------------------------------------


class RecorderSession:
    """Every decision of one recording (the rules in the module docstring); no I/O, no clock."""

    def __init__(self, config: RecorderConfig) -> None:
        self.config = config
        self.symbols = tuple(config.symbols)
        self.stopping = False
        self._weight = depth_weight(config.snapshot_limit, config.market)
        self._budget = _WeightBudget(config.weight_per_minute)
        self._connections: dict[int, _Connection] = {}  # the open ones (and those opening)
        self._next_id = 0
        self._in_flight: set[str] = set()  # symbols with a snapshot requested and not yet answered
        self._attempts: dict[str, int] = {}  # failed snapshot attempts of the request in flight
        self._pending: list[tuple[float, str]] = []  # (not before, symbol): snapshots waiting to go out
        self._checkpoint = _Timer(config.snapshot_every_s)
        self._roll = _Timer(config.roll_every_s)
        self._health = _Timer(config.health_every_s)
        self._flush = _Timer(config.journal_flush_s)
        self._end = float("inf")
        self._announced = float("inf")  # the deadline the shell was last told of
        self._out: list[Action] = []
        self._now = 0.0  # the time of the latest input
        self._fold_lagging = False  # a lag warning was logged and the fold has not caught up since
        self.fold_skips = 0

    # --- inputs ------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """The recording begins: RESTART markers, then the connections."""
        self._now = now
        for timer in (self._checkpoint, self._roll, self._health, self._flush):
            timer.start(now)
        if self.config.duration_s is not None:
            self._end = now + self.config.duration_s
        self._out.append(WriteMarker(EventKind.RESTART, self.symbols))
        size = self.config.streams_per_connection
        for i in range(0, len(self.symbols), size):
            group = self.symbols[i : i + size]
            self._out.append(Connect(self._new_connection(_Connection(group)), group))
        return self._take()

    def connection_opened(self, connection: int, now: float) -> list[Action]:
        self._now = now
        conn = self._connections.get(connection)
        if conn is None:
            return []
        conn.opened_at = now
        self._out.append(WriteMarker(EventKind.CONNECT, conn.symbols, (("streams", len(conn.symbols)),)))
        return self._take()

    def frame(self, connection: int, record: JournalRecord, now: float) -> list[Action]:
        """A websocket frame arrived on ``connection`` (``record`` carries its receive time)."""
        self._now = now
        conn = self._connections.get(connection)
        if conn is None:
            return []  # closed already: a frame still queued behind the close
        if _SHUTDOWN_NOTICE in record.payload[:_NOTICE_PREFIX]:
            # Binance announces its 24 h cut (or maintenance): hand over now, not at the close.
            self._out.append(Log(logging.WARNING, f"stream {','.join(conn.symbols)}: the exchange announced "
                                                  "serverShutdown"))
            if conn.may_hand_over():
                self._hand_over(connection, conn, "serverShutdown")
            return self._take()
        if conn.incoming is not None and not conn.incoming.done:
            conn.incoming.new_frame(record)  # held until the old connection has delivered it too
        elif conn.outgoing is not None:
            if conn.outgoing.old_frame(record):  # the successor has caught up: close this one
                del self._connections[connection]
                conn.outgoing.old_gone()
                self._out.append(Close(connection))
                return self._take()
        else:
            self._deliver(record)
        if conn.opened_at is not None and conn.may_hand_over() \
                and now - conn.opened_at >= self.config.max_connection_age_s:
            # Replace the connection before Binance's 24 h cut, overlapping so nothing is lost.
            self._hand_over(connection, conn, "connection age")
        return self._take()

    def connection_failed(self, connection: int, now: float, reason: str, stalled: bool = False) -> list[Action]:
        """``connection`` failed (``reason``), or ``stalled``: no frame within ``stale_after_s``."""
        self._now = now
        conn = self._connections.pop(connection, None)  # a failed connection is done with
        if conn is None or self.stopping:
            return []
        if stalled:
            reason = DisconnectReason.STALE_FEED
        if conn.outgoing is not None:
            # The successor is already connecting: it is the feed now, no reconnect from here.
            self._out.append(Log(logging.WARNING, f"stream {','.join(conn.symbols)}: {reason} during the handover"))
            self._out.append(WriteMarker(EventKind.DISCONNECT, conn.symbols, (("reason", reason),)))
            conn.outgoing.old_gone()
            return self._take()
        failures = conn.failures + (0 if stalled else 1)
        delay = self.config.reconnect_delay_s if stalled else self._backoff(failures)
        self._out.append(WriteMarker(EventKind.DISCONNECT, conn.symbols, (("reason", reason),)))
        if self.config.max_retries is not None and failures > self.config.max_retries:
            self._stop(ExchangeError(f"gave up after {failures} failed connections: {reason}"))
            return self._take()
        successor = _Connection(conn.symbols, failures, incoming=conn.incoming)
        self._out.append(Reconnect(self._new_connection(successor), connection, conn.symbols, delay, reason))
        return self._take()

    def connection_closed(self, connection: int, now: float) -> list[Action]:
        """The exchange closed ``connection`` without an error: as a failure, it is not the feed any more."""
        return self.connection_failed(connection, now, "closed by the exchange")

    def folded(self, result: Ingested, now: float) -> list[Action]:
        """What folding a journaled record did (the ``Ingestor``'s answer to ``JournalAndFold``)."""
        self._now = now
        if result.rows:
            self._out.append(PublishEntries(tuple(result.rows)))
        outcome = result.outcome
        if isinstance(outcome, Gap):
            assert result.event is not None
            self._out.append(Log(logging.WARNING, f"gap: expected U={outcome.expected}, got {outcome.got}",
                                 result.symbol))
            self._out.append(WriteMarker(EventKind.GAP, (result.symbol,),
                                         (("expected", outcome.expected), ("got", outcome.got)), result.event.recv_ns))
        elif isinstance(outcome, StaleSnapshot):
            self._out.append(Log(logging.WARNING, f"snapshot {outcome.last_update_id} older than buffered diffs",
                                 result.symbol))
        elif isinstance(outcome, Crossed):
            self._out.append(Log(logging.WARNING, f"crossed book after update {outcome.update_id}: resyncing",
                                 result.symbol))
        elif isinstance(outcome, BboMismatch):
            self._out.append(Log(logging.WARNING, f"book differs from the exchange's bookTicker at update "
                                                  f"{outcome.update_id}: resyncing", result.symbol))
        if result.trade_gap is not None:
            assert result.event is not None
            gap = result.trade_gap
            self._out.append(Log(logging.WARNING, f"trade gap: expected t={gap.expected}, got {gap.got}",
                                 result.symbol))
            self._out.append(WriteMarker(EventKind.GAP, (result.symbol,), (("stream", TRADE_GAP_STREAM),
                                         ("expected", gap.expected), ("got", gap.got)), result.event.recv_ns))
        if result.needs_snapshot:
            self._request_snapshot(result.symbol, _RESYNC_REASONS.get(type(outcome), ResyncReason.SYNC), now)
        return self._take()

    def fold_backlog(self, waiting: int, lag_s: float, now: float) -> list[Action]:
        """The fold is ``waiting`` journaled records behind capture, the oldest received ``lag_s`` ago."""
        self._now = now
        if waiting > self.config.fold_backlog_max:
            self.fold_skips += 1
            self._fold_lagging = False
            self._out.append(Log(logging.ERROR, f"fold {waiting} records ({lag_s:.1f}s) behind capture, more than "
                                                f"{self.config.fold_backlog_max}: skipping them (kept in the journal) "
                                                "and resyncing every book"))
            self._out.append(SkipFolds(waiting))
            self._out.append(WriteMarker(EventKind.RESTART, self.symbols, (("reason", FOLD_SKIP_REASON),)))
        elif lag_s > self.config.fold_lag_warn_s and not self._fold_lagging:
            self._fold_lagging = True
            self._out.append(Log(logging.WARNING, f"fold {lag_s:.1f}s behind capture ({waiting} records waiting)"))
        elif waiting == 0 and self._fold_lagging:
            self._fold_lagging = False
            self._out.append(Log(logging.INFO, "fold caught up with capture"))
        return self._take()

    def frames(self, connection: int, records: list[JournalRecord], now: float) -> list[Action]:
        """Frames that were waiting together on ``connection``, in arrival order: ``frame`` for each."""
        actions: list[Action] = []
        for record in records:
            actions += self.frame(connection, record, now)
        return actions

    def snapshot_received(self, record: JournalRecord, now: float) -> list[Action]:
        """The REST snapshot for ``record.symbol`` arrived (``record`` is its body as journaled)."""
        self._now = now
        self._in_flight.discard(record.symbol)
        self._attempts.pop(record.symbol, None)
        self._out.append(JournalAndFold(record))
        return self._take()

    def snapshot_failed(self, symbol: str, now: float, failure: RestFailure) -> list[Action]:
        self._now = now
        attempts = self._attempts.get(symbol, 0) + 1
        self._attempts[symbol] = attempts
        status = failure.status
        if status in RETRY_STATUSES:
            retry_after = DEFAULT_RETRY_AFTER_S if failure.retry_after_s is None else failure.retry_after_s
            self._out.append(Log(logging.ERROR, f"REST {status}: backing off {retry_after:.0f}s as asked"))
            self._budget.banned_until = max(self._budget.banned_until, now + retry_after)
        retryable = (status >= 500 or status in RETRY_STATUSES) if status is not None else failure.transient
        limit = self.config.max_retries
        if not retryable or self.stopping or (limit is not None and attempts > limit):
            self._in_flight.discard(symbol)
            self._attempts.pop(symbol, None)
            self._out.append(Log(logging.ERROR, f"snapshot failed: {failure.reason}", symbol))
            return self._take()
        self._pending.append((now + self._backoff(attempts), symbol))
        self._dispatch(now)
        return self._take()

    def tick(self, now: float) -> list[Action]:
        """Time passed: fire the timers that are due and send the snapshots that may go out now."""
        self._now = now
        if now >= self._end and not self.stopping:
            self._stop(None)
        if self._checkpoint.fire(now):
            for symbol in self.symbols:
                self._request_snapshot(symbol, ResyncReason.CHECKPOINT, now)
        if self._roll.fire(now):
            self._out.append(RollJournal())
        if self._health.fire(now):
            self._out.append(LogHealth())
        if self._flush.fire(now):
            self._out.append(FlushJournal())
        self._dispatch(now)
        actions: list[Action] = [a for a in self._take() if not isinstance(a, Wait)]
        self._announced = self.next_deadline(now)  # the shell sleeps until then after a tick
        return actions

    def stop(self) -> None:
        """Stop asked from outside (a signal): no new snapshots, no reconnects."""
        self.stopping = True

    def shutdown_markers(self) -> list[Action]:
        """What the journal records at a clean end: every symbol disconnected for ``shutdown``."""
        return [WriteMarker(EventKind.DISCONNECT, self.symbols, (("reason", DisconnectReason.SHUTDOWN),))]

    def next_deadline(self, now: float) -> float:
        """When the session next needs a ``tick`` (monotonic seconds; ``inf`` if never)."""
        deadlines = [self._end, self._checkpoint.due, self._roll.due, self._health.due, self._flush.due]
        if self._pending:
            first = min(t for t, _ in self._pending)
            deadlines.append(max(first, self._budget.free_at(max(now, first), self._weight)))
        return min(deadlines)

    # --- helpers -----------------------------------------------------------------------------

    def _new_connection(self, conn: _Connection) -> int:
        self._next_id += 1
        self._connections[self._next_id] = conn
        return self._next_id

    def _backoff(self, failures: int) -> float:
        return min(self.config.backoff_max_s, self.config.reconnect_delay_s * 2 ** (failures - 1))

    def _deliver(self, record: JournalRecord) -> None:
        self._out.append(JournalAndFold(record))

    def _hand_over(self, connection: int, conn: _Connection, reason: str) -> None:
        conn.outgoing = Handover(self._deliver)
        successor = _Connection(conn.symbols, incoming=conn.outgoing)
        self._out.append(HandOver(connection, self._new_connection(successor), conn.symbols, reason))

    def _request_snapshot(self, symbol: str, reason: str, now: float) -> None:
        if symbol in self._in_flight or self.stopping:
            return
        self._in_flight.add(symbol)
        self._out.append(WriteMarker(EventKind.RESYNC, (symbol,), (("reason", reason),)))
        self._pending.append((now, symbol))
        self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        """Send the pending snapshots that are due, in order, while the weight budget allows."""
        waiting: list[tuple[float, str]] = []
        for not_before, symbol in sorted(self._pending):
            if self.stopping:
                self._in_flight.discard(symbol)
                continue
            if not_before > now or self._budget.free_at(now, self._weight) > now:
                waiting.append((not_before, symbol))
                continue
            self._budget.spend(now, self._weight)
            self._out.append(FetchSnapshot(symbol, self.config.snapshot_limit))
        self._pending = waiting

    def _stop(self, failure: ExchangeError | None) -> None:
        self.stopping = True
        self._out.append(Stop(failure))

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        deadline = self.next_deadline(self._now)
        if deadline < self._announced:  # e.g. a snapshot retry sooner than every timer
            self._announced = deadline
            out.append(Wait(deadline))
        return out

