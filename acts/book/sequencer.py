"""Binance depth sequencing (spot and USD-M futures): every rule in this file, as a transition table.

Rules (Binance "How to manage a local order book correctly", spot):

1. Diff events that arrive before a snapshot are buffered (the recorder stores them in
   receive order, so in a recording they precede the snapshot that they complete).
2. On a snapshot with ``lastUpdateId`` = L, drop buffered/new events with ``u <= L``.
3. The book is valid from the snapshot on (SYNCING), but the next diff must bridge it:
   ``U <= L + 1 <= u``. If the first diff left already starts after ``L + 1`` the snapshot is
   too old: ``StaleSnapshot``, book invalid.
4. Afterwards each event must continue the chain: ``U == previous u + 1``. An event with
   ``u <= previous u`` is a duplicate or stale and changes nothing. Anything else is a
   ``Gap(expected, got)``: the book is invalid until the next snapshot.
5. A snapshot that arrives while the book is LIVE is a checkpoint, not a rebuild.
6. Quantity zero removes the level (handled by ``Book``).
7. A crossed book (best bid >= best ask) after a diff or a snapshot is corruption: ``Crossed``,
   the book is invalid until the next snapshot.

USD-M futures (``Sequencer(market=Market.USDM)``; Binance's futures "How to manage a local order
book correctly", snapshot from ``/fapi/v1/depth``) differ in rules 2 to 4 only:

2'. Drop events with ``u < L`` (an event ending exactly at L still bridges the snapshot).
3'. The first diff must bridge it: ``U <= L <= u``; one starting after L means the snapshot is stale.
4'. Afterwards each event's ``pu`` (the previous event's ``u``, ``DepthUpdate.prev_final_update_id``)
    must equal the previous ``u``; ``U`` itself may jump. ``u <= previous u`` is stale, as on spot.
    Anything else, including a diff without ``pu``, is ``Gap(expected=previous u, got=pu or 0)``.

The market is the sequencer's, never guessed from an event: a spot stream is never judged by
``pu`` and a futures stream never by ``U``.

Markers (connect, disconnect, gap, resync) do not change the book: gaps are detected from
the update ids themselves, so a replay never trusts what the live process believed. The one
exception is ``RESTART``: a recorder process started with nothing known, so replay forgets
everything there too (book, position, buffered diffs, last diff time), exactly as live did.

The fast engine runs the two commonest transitions, (LIVE, OLD) and (LIVE, NEXT), in compiled
code (``book.arraybook._follow_chain``) and reports back with ``followed``; it stops at
anything else and hands that event to ``apply``.

A sequencer is generic in how its book takes levels: ``Sequencer()`` drives the reference ``Book``
with events as the exchange spelled them, ``Sequencer(book=ArrayBook())`` takes the fast path's
array events; the rules are the same code.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum, IntEnum, auto
from typing import Any, Generic, TypeAlias, overload

from acts.book.book import Book
from acts.book.protocol import BookLike, BookView
from acts.core.events import BookTicker, DepthUpdate, EventKind, Levels, LevelsT, Marker, Snapshot, Trade
from acts.core.markets import Market

__all__ = [
    "State",
    "Applied",
    "Ignored",
    "Buffered",
    "Synced",
    "Loaded",
    "Checkpoint",
    "Gap",
    "StaleSnapshot",
    "Crossed",
    "BREAKS_CHAIN",
    "Noted",
    "Outcome",
    "Sequencer",
    "MAX_BUFFERED",
]

#: Diff events kept while waiting for a snapshot (~100 s of a 100 ms stream); older ones are dropped.
MAX_BUFFERED = 1000


class State(IntEnum):  # IntEnum: hashed in C, the transition table is looked up per event
    NO_BOOK = auto()  # waiting for a snapshot; diffs are buffered
    SYNCING = auto()  # snapshot loaded (valid), the next diff must straddle L + 1
    LIVE = auto()  # valid book, following the U/u chain


# --- outcomes: what one event did (values, never log lines) -----------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    pass


@dataclass(frozen=True, slots=True)
class Ignored:
    """A duplicate or stale diff (``u`` already covered)."""

    final_update_id: int


@dataclass(frozen=True, slots=True)
class Buffered:
    pass


@dataclass(frozen=True, slots=True)
class Synced:
    """The book became valid: snapshot plus ``applied`` buffered diffs, the last one straddling it."""

    last_update_id: int
    applied: int


@dataclass(frozen=True, slots=True)
class Loaded:
    """Snapshot loaded and valid; the next diff must straddle it (``U <= L + 1 <= u``)."""

    last_update_id: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    last_update_id: int


@dataclass(frozen=True, slots=True)
class Gap:
    """The chain broke: ``expected`` was the next ``U`` (futures: the next ``pu``), ``got`` arrived instead."""

    expected: int
    got: int


@dataclass(frozen=True, slots=True)
class StaleSnapshot:
    """The snapshot ends before the earliest diff we still have: fetch a newer one."""

    last_update_id: int
    first_update_id: int


@dataclass(frozen=True, slots=True)
class Crossed:
    """The book is crossed (best bid >= best ask) after the event with update id ``update_id``:
    corrupt, invalid until the next snapshot."""

    update_id: int


@dataclass(frozen=True, slots=True)
class Noted:
    pass


Outcome: TypeAlias = (Applied | Ignored | Buffered | Synced | Loaded | Checkpoint | Gap | StaleSnapshot | Crossed
                      | Noted)

#: Outcomes of a diff that does not continue the update-id chain: updates were lost at an unknown
#: moment since the last diff applied, so nothing sampled since then is proven.
BREAKS_CHAIN = (Gap, StaleSnapshot)


# --- how a diff relates to the current position ----------------------------------------


class Relation(IntEnum):
    OLD = auto()  # u <= position: already covered
    NEXT = auto()  # continues the chain (LIVE) or straddles L + 1 (SYNCING)
    AHEAD = auto()  # starts after the position: gap (LIVE) or stale snapshot (SYNCING)


class Action(Enum):
    BUFFER = auto()
    IGNORE = auto()
    APPLY = auto()
    GAP = auto()
    STALE_SNAPSHOT = auto()


#: (state, relation) -> (action, next state). NO_BOOK has no position, so its relation is None.
TRANSITIONS: dict[tuple[State, Relation | None], tuple[Action, State]] = {
    (State.NO_BOOK, None): (Action.BUFFER, State.NO_BOOK),
    (State.SYNCING, Relation.OLD): (Action.IGNORE, State.SYNCING),
    (State.SYNCING, Relation.NEXT): (Action.APPLY, State.LIVE),
    (State.SYNCING, Relation.AHEAD): (Action.STALE_SNAPSHOT, State.NO_BOOK),
    (State.LIVE, Relation.OLD): (Action.IGNORE, State.LIVE),
    (State.LIVE, Relation.NEXT): (Action.APPLY, State.LIVE),
    (State.LIVE, Relation.AHEAD): (Action.GAP, State.NO_BOOK),
}


def _relation(state: State, position: int, event: DepthUpdate[LevelsT],
              market: Market = Market.SPOT) -> Relation | None:
    if state is State.NO_BOOK:
        return None
    if market is Market.USDM:
        return _futures_relation(state, position, event)
    if event.final_update_id <= position:
        return Relation.OLD
    if state is State.SYNCING:
        return Relation.NEXT if event.first_update_id <= position + 1 else Relation.AHEAD
    # LIVE: strict chain; an overlap that is not exactly position + 1 is a break too.
    return Relation.NEXT if event.first_update_id == position + 1 else Relation.AHEAD


def _futures_relation(state: State, position: int, event: DepthUpdate[LevelsT]) -> Relation:
    if state is State.SYNCING:  # position is the snapshot's L
        if event.final_update_id < position:
            return Relation.OLD
        return Relation.NEXT if event.first_update_id <= position else Relation.AHEAD
    if event.final_update_id <= position:
        return Relation.OLD
    # LIVE: pu names the u this event follows; None proves nothing, so it breaks the chain.
    return Relation.NEXT if event.prev_final_update_id == position else Relation.AHEAD


def _expected(market: Market, position: int) -> int:
    """What a LIVE book expects next: ``U`` on spot, ``pu`` on futures."""
    return position if market is Market.USDM else position + 1


def _reference_book() -> BookLike[Any]:
    """The reference ``Book``: without a book, ``Sequencer``'s first overload makes it a ``Sequencer[Levels]``."""
    return Book()


class Sequencer(Generic[LevelsT]):
    """One symbol's book plus its position in the update-id chain. ``apply(event) -> Outcome``."""

    __slots__ = ("_book", "_state", "_position", "_buffer", "_market", "last_event_time_ms")

    @overload
    def __init__(self: Sequencer[Levels], max_buffered: int = MAX_BUFFERED, book: None = None, *,
                 market: Market = Market.SPOT) -> None: ...

    @overload
    def __init__(self, max_buffered: int = MAX_BUFFERED, *, book: BookLike[LevelsT],
                 market: Market = Market.SPOT) -> None: ...

    def __init__(self, max_buffered: int = MAX_BUFFERED, book: BookLike[Any] | None = None, *,
                 market: Market = Market.SPOT) -> None:
        self._market = market  # whose rules judge the chain (see "USD-M futures" above)
        self._book: BookLike[LevelsT] = book if book is not None else _reference_book()
        self._state = State.NO_BOOK
        self._position = 0  # last update id reflected in the book (L, then each u)
        self._buffer: deque[DepthUpdate[LevelsT]] = deque(maxlen=max_buffered)
        #: Exchange time of the last diff applied to the book (None before the first).
        self.last_event_time_ms: int | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def valid(self) -> bool:
        """The book is known: loaded from a snapshot and, since then, every diff continued the chain."""
        return self._state is not State.NO_BOOK

    @property
    def position(self) -> int:
        return self._position

    @property
    def market(self) -> Market:
        return self._market

    def view(self) -> BookView:
        return self._book.view()

    def apply(self, event: DepthUpdate[LevelsT] | Snapshot[LevelsT] | Trade | BookTicker | Marker) -> Outcome:
        if isinstance(event, DepthUpdate):
            return self._on_diff(event)
        if isinstance(event, Snapshot):
            return self._on_snapshot(event)
        if not isinstance(event, Marker):  # trades and bookTickers never change the book
            return Noted()
        if event.kind is EventKind.RESTART:
            self._invalidate()
            self._buffer.clear()
            self._position = 0
            self.last_event_time_ms = None
        return Noted()

    def _on_diff(self, event: DepthUpdate[LevelsT]) -> Outcome:
        action, next_state = TRANSITIONS[(self._state, _relation(self._state, self._position, event, self._market))]
        expected = _expected(self._market, self._position)
        self._state = next_state
        if action is Action.BUFFER:
            self._buffer.append(event)
            return Buffered()
        if action is Action.IGNORE:
            return Ignored(event.final_update_id)
        if action is Action.APPLY:
            self._apply(event)
            if self._book.is_crossed():
                return self.crossed(event.final_update_id)
            return Applied()
        # Either way the book is invalid, and this diff is newer than anything applied: keep it
        # buffered, the next snapshot may be older than it.
        self._invalidate()
        self._buffer.append(event)
        if action is Action.GAP:
            if self._market is Market.USDM:
                return Gap(expected, event.prev_final_update_id or 0)
            return Gap(expected, event.first_update_id)
        return StaleSnapshot(self._position, event.first_update_id)

    def followed(self, position: int, last_event_time_ms: int | None) -> None:
        """The book's owner applied LIVE diffs itself (the compiled lane, ``ArrayBook.follow_chain``),
        exactly as ``apply`` would have: move to ``position`` and, if any diff was applied, its ``E``."""
        assert self._state is State.LIVE and position >= self._position
        self._position = position
        if last_event_time_ms is not None:
            self.last_event_time_ms = last_event_time_ms

    def crossed(self, update_id: int) -> Crossed:
        """The book's owner found it crossed after ``update_id`` (also the compiled lane's exit): invalidate."""
        self._invalidate()
        return Crossed(update_id)

    def _on_snapshot(self, snapshot: Snapshot[LevelsT]) -> Outcome:
        if self._state is State.LIVE:
            return Checkpoint(snapshot.last_update_id)
        self._book.load(snapshot.bids, snapshot.asks)
        self._state = State.SYNCING
        self._position = snapshot.last_update_id
        buffered = list(self._buffer)
        self._buffer.clear()
        if self._book.is_crossed():
            self._buffer.extend(buffered)
            return self.crossed(snapshot.last_update_id)
        applied = 0
        for index, event in enumerate(buffered):
            outcome = self._on_diff(event)
            if isinstance(outcome, (Gap, StaleSnapshot, Crossed)):
                self._buffer.extend(buffered[index + 1 :])
                return outcome
            applied += isinstance(outcome, Applied)
        if self._state is State.SYNCING:
            return Loaded(snapshot.last_update_id)
        return Synced(snapshot.last_update_id, applied)

    def _apply(self, event: DepthUpdate[LevelsT]) -> None:
        self._book.apply(event.bids, event.asks)
        self._position = event.final_update_id
        self.last_event_time_ms = event.event_time_ms

    def _invalidate(self) -> None:
        # ``last_event_time_ms`` stays: rows say when the book last changed, valid or not.
        self._state = State.NO_BOOK
        self._book.clear()
