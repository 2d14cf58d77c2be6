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
8. The audit: a ``bookTicker`` with update id ``u`` is Binance's best bid and ask right after the
   diff whose final update id is ``u``. Depth diffs come batched (100 ms) on another stream, so a
   ticker may be folded before or after that diff:

   * ``u`` == the position (last ``u`` applied, or the snapshot's ``L``) and the book is valid:
     checked now;
   * ``u`` > the position, book valid: pending (at most ``MAX_PENDING_TICKERS``, the oldest dropped),
     checked right after a diff with final ``u`` == its ``u`` is applied; dropped unchecked once
     the position passes it without equality, or when the book goes invalid or reloads;
   * otherwise (``u`` < the position, or no valid book): unchecked (``Noted``).

   Check: the book's best bid (price, quantity) and best ask equal the ticker's, exactly at the
   book scale; an empty side matches only a ticker side of quantity zero. Equal: ``BboChecked(u)``
   (for a diff, instead of ``Applied``). Not equal: ``BboMismatch(u)``, the book is invalid until
   the next snapshot, as after ``Crossed``; and it is in ``BREAKS_CHAIN``: what was sampled since
   the last proof is not proven.

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
anything else and hands that event to ``apply``. It must also stop before any diff with final
``u >= bbo_wait`` (a pending ticker waits for it), so that every pending check happens here. The
tickers it meets itself it audits by this rule (``ArrayBook.follow_chain``); one that waited for a
diff it applied and differs it reports with ``mismatched``.

A sequencer is generic in how its book takes levels: ``Sequencer()`` drives the reference ``Book``
with events as the exchange spelled them, ``Sequencer(book=ArrayBook())`` takes the fast path's
array events; the rules are the same code.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum, IntEnum, auto
from typing import Any, Generic, NamedTuple, TypeAlias, overload

from acts.book.book import Book
from acts.book.protocol import BookLike, BookView
from acts.core.decimals import to_book
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
    "BboChecked",
    "BboMismatch",
    "BREAKS_CHAIN",
    "Noted",
    "Outcome",
    "Sequencer",
    "MAX_BUFFERED",
    "MAX_PENDING_TICKERS",
]

#: Diff events kept while waiting for a snapshot (~100 s of a 100 ms stream); older ones are dropped.
MAX_BUFFERED = 1000
#: bookTickers kept waiting for the diff that reaches their ``u`` (~100 ms of a busy symbol's tickers);
#: older ones are dropped unchecked.
MAX_PENDING_TICKERS = 1024


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
class BboChecked:
    """The book's best bid and ask equal the bookTicker's at update id ``update_id`` (rule 8). From a
    diff, it also means the diff was applied."""

    update_id: int


@dataclass(frozen=True, slots=True)
class BboMismatch:
    """The book's best bid or ask differs from the bookTicker's at update id ``update_id`` (rule 8):
    corrupt, invalid until the next snapshot."""

    update_id: int


@dataclass(frozen=True, slots=True)
class Noted:
    pass


Outcome: TypeAlias = (Applied | Ignored | Buffered | Synced | Loaded | Checkpoint | Gap | StaleSnapshot | Crossed
                      | BboChecked | BboMismatch | Noted)

#: Outcomes that leave nothing sampled since the last good diff proven: a diff that does not continue
#: the update-id chain (updates were lost at an unknown moment since the last diff applied), or a
#: book that Binance's own best bid/ask proves wrong.
BREAKS_CHAIN = (Gap, StaleSnapshot, BboMismatch)


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

    __slots__ = ("_book", "_state", "_position", "_buffer", "_market", "_tickers", "_ticker_min",
                 "last_event_time_ms")

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
        self._tickers: deque[_Ticker] = deque(maxlen=MAX_PENDING_TICKERS)  # pending (rule 8)
        # The smallest pending u (None: none pending). After the oldest fell out it may be too small,
        # never too large: it only makes a check look earlier.
        self._ticker_min: int | None = None
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

    @property
    def bbo_wait(self) -> int | None:
        """The smallest update id a pending bookTicker waits for (None: none): whoever applies diffs
        without ``apply`` (the compiled lane) must stop before a diff whose final ``u`` reaches it."""
        return self._ticker_min

    def view(self) -> BookView:
        return self._book.view()

    def apply(self, event: DepthUpdate[LevelsT] | Snapshot[LevelsT] | Trade | BookTicker | Marker) -> Outcome:
        if isinstance(event, DepthUpdate):
            return self._on_diff(event)
        if isinstance(event, Snapshot):
            return self._on_snapshot(event)
        if isinstance(event, BookTicker):
            return self.apply_ticker(event.update_id, to_book(event.bid_price), to_book(event.bid_qty),
                                     to_book(event.ask_price), to_book(event.ask_qty))
        if not isinstance(event, Marker):  # trades never change the book
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
            if self._ticker_min is not None and self._ticker_min <= self._position:
                return self._settle_tickers() or _APPLIED
            return _APPLIED
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
        exactly as ``apply`` would have: move to ``position`` and, if any diff was applied, its ``E``.
        The owner stopped before any diff a pending ticker waits for (``bbo_wait``)."""
        assert self._state is State.LIVE and position >= self._position
        assert self._ticker_min is None or position < self._ticker_min, "the lane ran past a pending bookTicker"
        self._position = position
        if last_event_time_ms is not None:
            self.last_event_time_ms = last_event_time_ms

    def mismatched(self, update_id: int) -> BboMismatch:
        """The book's owner applied LIVE diffs up to ``update_id`` (``followed``) and found a bookTicker that
        waited for that diff unequal to the book (the compiled lane's audit): invalidate, as ``_check`` does."""
        self._invalidate()
        return BboMismatch(update_id)

    def crossed(self, update_id: int) -> Crossed:
        """The book's owner found it crossed after ``update_id`` (also the compiled lane's exit): invalidate."""
        self._invalidate()
        return Crossed(update_id)

    def _on_snapshot(self, snapshot: Snapshot[LevelsT]) -> Outcome:
        if self._state is State.LIVE:
            return Checkpoint(snapshot.last_update_id)
        self._book.load(snapshot.bids, snapshot.asks)
        self._drop_tickers()  # they waited for the book this snapshot replaces
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
            if isinstance(outcome, (Gap, StaleSnapshot, Crossed, BboMismatch)):
                self._buffer.extend(buffered[index + 1 :])
                return outcome
            applied += isinstance(outcome, (Applied, BboChecked))
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
        self._drop_tickers()

    # --- the audit against bookTicker (rule 8) ---------------------------------------------

    def apply_ticker(self, update_id: int, bid: int, bid_qty: int, ask: int, ask_qty: int) -> Outcome:
        """``apply`` of a bookTicker given as book-scale integers (the fast path reads them so from its
        columns, without building the event)."""
        if self._state is State.NO_BOOK or update_id < self._position:
            return Noted()
        ticker = _Ticker(update_id, [(bid, bid_qty)] if bid_qty else [], [(ask, ask_qty)] if ask_qty else [])
        if update_id == self._position:
            return self._check((ticker,))
        self._tickers.append(ticker)
        if self._ticker_min is None or update_id < self._ticker_min:
            self._ticker_min = update_id
        return Noted()

    def _settle_tickers(self) -> BboChecked | BboMismatch | None:
        """The position reached or passed a pending ticker's ``u``: check those at it, drop those passed."""
        position = self._position
        due = tuple(t for t in self._tickers if t.update_id == position)
        waiting = [t for t in self._tickers if t.update_id > position]
        self._tickers.clear()
        self._tickers.extend(waiting)
        self._ticker_min = min((t.update_id for t in waiting), default=None)
        return self._check(due) if due else None

    def _check(self, tickers: tuple[_Ticker, ...]) -> BboChecked | BboMismatch:
        """Compare the book with ``tickers`` (all at the position); a mismatch invalidates it."""
        view = self._book.view()
        bid, ask = view.bids(1), view.asks(1)
        if all(bid == t.bids and ask == t.asks for t in tickers):
            return BboChecked(self._position)
        self._invalidate()
        return BboMismatch(self._position)

    def _drop_tickers(self) -> None:
        self._tickers.clear()
        self._ticker_min = None


#: What most diffs return (one shared value: outcomes are immutable).
_APPLIED = Applied()


class _Ticker(NamedTuple):
    """A pending bookTicker, its sides as ``BookView.bids(1)``/``asks(1)`` would give them: one level, or
    none for quantity zero (an empty side)."""

    update_id: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
