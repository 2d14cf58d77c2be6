"""The one feature pipeline: fold a symbol's events, emit one row per closed interval.

Interval rule (one minute by default): the row for interval I describes the book after the last
event whose exchange time ``E`` lies in I. I closes when the first diff with ``E`` past I arrives.
The row is sampled *before* that closing diff is applied, and its validity waits for the diff:

* the row is **valid only if** the book was valid when sampled **and** the closing diff continues
  the update-id chain (``U == previous u + 1``; right after a snapshot ``U <= L + 1 <= u``; a
  stale diff, ``u <= previous u``, does not break it);
* if the closing diff breaks the chain, updates were lost at an unknown moment since the last
  good diff: I and every empty interval carried after it are invalid.

Intervals with no diff carry I's row (same validity, same values). So a quiet market whose chain
goes on after minutes of silence keeps those minutes valid, and a dead feed does not. Snapshots
and markers carry no ``E``: they belong to the interval open when they arrive. A ``RESTART``
marker (the recorder process started) cuts the open interval off, invalid, and the fold goes on
from nothing, as the new process did. The last, still open interval is never emitted. Live
recording and replay run this same fold, so live rows equal replayed rows across outages and
restarts.

Event mode (``interval_ms=EVERY_EVENT``): one row after every diff, timed by the diff's ``E``. Each
diff closes the previous one's row, by the same rule: the row after diff d is valid only if the
book was valid after d and the next diff continues the chain. Snapshots and markers belong to the
row of the diff before them, as they belong to the open interval above; no row is ever carried.

The compiled lane (``replayer.replay``) may close intervals itself when every feature is a
``CompiledFeature``: ``kernels`` says which, ``lane_open``/``lane_closed`` hand the interval clock
over and back, and ``lane_rows`` turns what it sampled into the same rows this fold would give.

Trade features (``features.trades``, docs/FEATURES.md): with any requested, a row also waits for its
trade part, which the trade-id chain proves (or not) at the first trade with ``T`` past the interval's
end or at the first event received ``TRADE_GRACE_MS`` after it; rows still come out in time order. A
clean stop's ``DISCONNECT`` marker closes every waiting trade part (null unless proven): a row whose
book part closed is never left behind by a stop, live or in replay.
Without trade features nothing waits and trades change no row. In event mode a row's trades are those
received since the previous diff, proven the same way.

A feature is user code: if it raises or returns something that is not a finite number, the value
is null and ``on_feature_error`` hears of it (``raise_feature_error``, the default, stops with an
``ActsError`` naming feature, symbol and time).
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeAlias, overload

from acts.book.protocol import BookView
from acts.book.sequencer import BREAKS_CHAIN, Outcome, Sequencer
from acts.core.errors import FeatureError
from acts.core.events import BookTicker, DepthUpdate, EventKind, Levels, LevelsT, Marker, Snapshot, Trade
from acts.core.symbols import iso_ms
from acts.core.timeunits import MINUTE_MS
from acts.features.builtin import CompiledFeature
from acts.features.registry import Feature, FeatureValue
from acts.features.trades import EventTradeTape, TradeFeature, TradeTape, ends_the_feed

__all__ = [
    "EVERY_EVENT",
    "MinuteRow",
    "Rows",
    "NO_ROWS",
    "Step",
    "FeatureFailure",
    "OnFeatureError",
    "raise_feature_error",
    "NullAndReportOnce",
    "MinuteSampler",
    "LaneBatch",
]

#: ``interval_ms`` for event mode: a row after every diff (see the module docstring).
EVERY_EVENT = 0


@dataclass(frozen=True, slots=True)
class MinuteRow:
    symbol: str
    minute_ms: int  # start of the interval, UTC epoch ms
    valid: bool
    last_book_update_ms: int | None  # E of the last diff applied to the book (None before the first)
    closing_recv_ns: int  # local receive time of the diff that closed the interval
    values: tuple[FeatureValue, ...]  # one per feature (a vector feature's is a tuple), None when the book is invalid


@dataclass(frozen=True, slots=True)
class Rows:
    """The row of a closed interval and the empty intervals carried after it, up to ``stop_ms``.

    Lazy: a closing diff hours after the last one yields every carried row without building a list.
    """

    first: MinuteRow
    stop_ms: int
    step_ms: int

    def __iter__(self) -> Iterator[MinuteRow]:
        yield self.first
        for start in range(self.first.minute_ms + self.step_ms, self.stop_ms, self.step_ms):
            yield replace(self.first, minute_ms=start)

    def __len__(self) -> int:
        return (self.stop_ms - self.first.minute_ms) // self.step_ms

    def __bool__(self) -> bool:
        return True


#: ``MinuteRow``'s slot setters: ``LaneBatch`` builds rows through them, in half the time of the frozen
#: dataclass's ``__init__`` (which adds no check: it only sets the slots too). Event mode builds one per diff.
_LANE_FIELDS = ("symbol", "minute_ms", "valid", "last_book_update_ms", "closing_recv_ns", "values")
assert MinuteRow.__slots__ == _LANE_FIELDS, "MinuteRow changed: update _lane_row"
_ROW_SETTERS = tuple(getattr(MinuteRow, name).__set__ for name in _LANE_FIELDS)


class LaneBatch:
    """Rows the compiled lane closed, from its columns (``book.arraybook.LaneRows``), copied: every one
    valid, carried over empty intervals as ``Rows`` carries. Iterates like ``Rows``; ``stop_ms`` is
    where the last one's carried rows end, ``first_ms`` the first row's time."""

    __slots__ = ("symbol", "step_ms", "first_ms", "stop_ms", "_columns")

    def __init__(self, symbol: str, step_ms: int, times: list[int], stops: list[int], lasts: list[int],
                 recvs: list[int], values: list[tuple[float | None, ...]]) -> None:
        self.symbol = symbol
        self.step_ms = step_ms
        self.first_ms = min(times)  # event mode: E may run backwards
        # Event mode carries nothing: a row is over at its own time.
        self.stop_ms = stops[-1] if step_ms != EVERY_EVENT else max(times) + 1
        self._columns = (times, stops, lasts, recvs, values)

    def __iter__(self) -> Iterator[MinuteRow]:
        symbol, step = self.symbol, self.step_ms
        s_symbol, s_minute, s_valid, s_last, s_recv, s_values = _ROW_SETTERS
        new = object.__new__
        for time, stop, last, recv, values in zip(*self._columns, strict=True):
            row = new(MinuteRow)  # MinuteRow(symbol, time, True, last or None, recv, values)
            s_symbol(row, symbol)
            s_minute(row, time)
            s_valid(row, True)
            s_last(row, None if last < 0 else last)
            s_recv(row, recv)
            s_values(row, values)
            if step != EVERY_EVENT and stop - time > step:
                yield from Rows(row, stop, step)
            else:
                yield row


#: What ``apply`` returns when no interval closed.
NO_ROWS: tuple[MinuteRow, ...] = ()

#: What ``MinuteSampler.apply`` returns: the rows of the intervals the event closed, and what it did to the book.
Step: TypeAlias = tuple[Rows | tuple[MinuteRow, ...], Outcome]


@dataclass(frozen=True, slots=True)
class FeatureFailure:
    """A feature raised, or returned something that is not a finite number."""

    feature: str
    symbol: str
    interval_ms: int
    error: str

    def message(self) -> str:
        return f"feature {self.feature!r} failed for {self.symbol} at {iso_ms(self.interval_ms)}: {self.error}"


OnFeatureError = Callable[[FeatureFailure], None]


def raise_feature_error(failure: FeatureFailure) -> None:
    """The default policy: stop, naming the feature, the symbol and the time."""
    raise FeatureError(f"{failure.message()}; fix the feature, or replay with --on-feature-error null")


class NullAndReportOnce:
    """The policy that keeps going: the value is null, and ``say`` hears the first failure of each
    (feature, symbol) with symbol, interval and exception. Live recording and backfill use it."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, failure: FeatureFailure) -> None:
        key = (failure.feature, failure.symbol)
        if key not in self.seen:
            self.seen.add(key)
            self.say(f"{failure.message()}; its value is null whenever it fails (said once per feature and symbol)")


def _reference_sequencer() -> Sequencer[Any]:
    """A ``Sequencer[Levels]``: without a sequencer, ``MinuteSampler``'s first overload makes it a
    ``MinuteSampler[Levels]``."""
    return Sequencer()


class MinuteSampler(Generic[LevelsT]):
    """One symbol's sequencer plus the interval clock. ``apply(event) -> (rows, outcome)``.

    Generic, like its ``Sequencer``, in how events hold their levels (strings, or the fast path's arrays)."""

    __slots__ = ("symbol", "features", "sequencer", "interval_ms", "on_feature_error", "kernels", "_open_minute",
                 "_cut", "trades", "event_trades", "_trade_slots", "_waiting", "_event_waiting")

    @overload
    def __init__(self: MinuteSampler[Levels], symbol: str, features: Sequence[Feature], sequencer: None = None,
                 interval_ms: int = MINUTE_MS, on_feature_error: OnFeatureError = raise_feature_error) -> None: ...

    @overload
    def __init__(self, symbol: str, features: Sequence[Feature], sequencer: Sequencer[LevelsT],
                 interval_ms: int = MINUTE_MS, on_feature_error: OnFeatureError = raise_feature_error) -> None: ...

    def __init__(self, symbol: str, features: Sequence[Feature], sequencer: Sequencer[Any] | None = None,
                 interval_ms: int = MINUTE_MS, on_feature_error: OnFeatureError = raise_feature_error) -> None:
        self.symbol = symbol
        self.features = tuple(features)
        #: ``(kernel, param)`` per feature when every one has a compiled twin, else None (the lane
        #: then leaves every interval close to ``apply``). A subclass that samples more than the
        #: features sets it to None.
        self.kernels: tuple[tuple[int, int], ...] | None = _kernels(self.features)
        self.sequencer: Sequencer[LevelsT] = sequencer if sequencer is not None else _reference_sequencer()
        self.interval_ms = interval_ms
        self.on_feature_error = on_feature_error
        self._open_minute: int | None = None
        #: The open interval's row as a recorder restart cut it off (invalid: what came after is unknown).
        self._cut: MinuteRow | None = None
        # Trade features (``features.trades``): their positions in a row, the chain that proves them, and
        # the rows whose book part closed while their trade part is still open. None/empty without any.
        self._trade_slots = tuple(i for i, f in enumerate(self.features) if isinstance(f.fn, TradeFeature))
        self.trades: TradeTape | None = None
        self.event_trades: EventTradeTape | None = None
        if self._trade_slots:
            stats = tuple(f.fn.stat for f in self.features if isinstance(f.fn, TradeFeature))
            if interval_ms == EVERY_EVENT:
                self.event_trades = EventTradeTape(stats)
            else:
                self.trades = TradeTape(interval_ms, stats)
        self._waiting: deque[Rows] = deque()
        self._event_waiting: deque[MinuteRow] = deque()

    @property
    def open_minute(self) -> int | None:
        """Start of the interval being filled: diffs with ``E`` before its end close no row. None before
        the first diff, and always in event mode, where every diff closes one (so the compiled lane,
        which follows the chain up to the interval's end, never runs there)."""
        return None if self.interval_ms == EVERY_EVENT else self._open_minute

    def lane_open(self) -> int | None:
        """Start of the open interval when the compiled lane may close it itself (compiled features, an
        interval open, no restart cut pending), else None. Event mode included."""
        if self.kernels is None or self._cut is not None:
            return None
        return self._open_minute

    def lane_closed(self, open_start: int) -> None:
        """The lane closed intervals up to the one starting at ``open_start``, now open."""
        self._open_minute = open_start

    def invalid_open(self) -> tuple[int | None] | None:
        """For whoever closes rows of an invalid book itself (``replayer.replay``'s NO_BOOK stretch): the
        open interval's start (event mode: the last diff's ``E``; None before the first diff), boxed; None
        when it may not: trade features wait on every event, a restart's cut row is not a sample, and a
        subclass's own ``sample`` must see every row."""
        if (self._cut is not None or self.trades is not None or self.event_trades is not None
                or type(self).sample is not MinuteSampler.sample):
            return None
        return (self._open_minute,)

    def apply(self, event: DepthUpdate[LevelsT] | Snapshot[LevelsT] | Trade | BookTicker | Marker) -> Step:
        if self.trades is None:
            return self._apply_book(event) if self.event_trades is None else self._apply_event_trades(event)
        # Trade features: the book part as ever, then the trade part; a row waits for both to close.
        rows, outcome = self._apply_book(event)
        tape = self.trades
        if isinstance(event, Trade):
            tape.trade(event)
        elif isinstance(event, Marker) and event.kind is EventKind.RESTART:
            tape.restart()
        tape.received(event.recv_ns)
        if isinstance(event, Marker) and ends_the_feed(event):
            tape.stopped(self._open_minute)  # what waits for a proof goes out now: no trade can come
        if isinstance(rows, Rows):
            self._waiting.append(rows)
        return (self._ready() if self._waiting else NO_ROWS), outcome

    def _apply_event_trades(self, event: DepthUpdate[LevelsT] | Snapshot[LevelsT] | Trade | BookTicker | Marker,
                            ) -> Step:
        """Event mode with trade features: each diff's row waits for its window of trades to be decided."""
        rows, outcome = self._apply_book(event)
        tape = self.event_trades
        assert tape is not None
        if isinstance(event, Trade):
            tape.trade(event)
        elif isinstance(event, Marker) and (event.kind is EventKind.RESTART or ends_the_feed(event)):
            tape.restart()  # a clean stop too: no trade of this process can decide the closed windows
        elif isinstance(event, DepthUpdate):
            tape.diff(event.recv_ns)
        tape.received(event.recv_ns)
        waiting = self._event_waiting
        waiting.extend(rows)
        ready: list[MinuteRow] = []
        while waiting and (window := tape.pop_decided()) is not None:
            ready.append(self._with_trades(waiting.popleft(), window.values))
        return tuple(ready), outcome

    def _with_trades(self, row: MinuteRow, trade_values: tuple[float | None, ...] | None) -> MinuteRow:
        values = list(row.values)
        for j, slot in enumerate(self._trade_slots):
            values[slot] = None if trade_values is None else trade_values[j]
        return replace(row, values=tuple(values))

    def _ready(self) -> tuple[MinuteRow, ...]:
        """The waiting rows whose trade part closed, with their trade values filled in."""
        tape = self.trades
        assert tape is not None
        frontier = tape.frontier
        if frontier is None:
            return NO_ROWS
        ready: list[MinuteRow] = []
        waiting = self._waiting
        while waiting:
            rows = waiting[0]
            first = rows.first
            if first.minute_ms >= frontier:
                break
            stop = min(rows.stop_ms, frontier)
            for start in range(first.minute_ms, stop, rows.step_ms):
                ready.append(self._with_trades(replace(first, minute_ms=start), tape.values(start)))
            if stop < rows.stop_ms:
                waiting[0] = Rows(replace(first, minute_ms=stop), rows.stop_ms, rows.step_ms)
                break
            waiting.popleft()
        return tuple(ready)

    def _apply_book(self, event: DepthUpdate[LevelsT] | Snapshot[LevelsT] | Trade | BookTicker | Marker) -> Step:
        if self.interval_ms == EVERY_EVENT and isinstance(event, DepthUpdate):
            return self._apply_event_mode(event)
        if isinstance(event, DepthUpdate):
            start = event.event_time_ms - event.event_time_ms % self.interval_ms
            if self._open_minute is None:
                self._open_minute = start
            elif start > self._open_minute:
                # The closing diff: sample first, then let the diff prove (or not) what was sampled.
                if self._cut is None:
                    first = self.sample(self._open_minute, event.recv_ns)
                else:
                    first = replace(self._cut, closing_recv_ns=event.recv_ns)
                outcome = self.sequencer.apply(event)
                if first.valid and isinstance(outcome, BREAKS_CHAIN):
                    first = self._invalid(first)
                rows = Rows(first, start, self.interval_ms)
                self._open_minute, self._cut = start, None
                return rows, outcome
            else:
                # A restart inside this interval: the live process saw only what came after it.
                self._cut = None
        elif isinstance(event, Marker) and event.kind is EventKind.RESTART and self._open_minute is not None:
            self._cut = MinuteRow(self.symbol, self._open_minute, False, self.sequencer.last_event_time_ms,
                                  event.recv_ns, self._nulls())
        return NO_ROWS, self.sequencer.apply(event)

    def _apply_event_mode(self, event: DepthUpdate) -> tuple[tuple[MinuteRow, ...], Outcome]:
        """Event mode: this diff closes the row of the diff before it (if any), then opens its own."""
        if self._open_minute is None:
            self._open_minute = event.event_time_ms
            return NO_ROWS, self.sequencer.apply(event)
        if self._cut is None:
            row = self.sample(self._open_minute, event.recv_ns)
        else:
            row = replace(self._cut, closing_recv_ns=event.recv_ns)
        outcome = self.sequencer.apply(event)
        if row.valid and isinstance(outcome, BREAKS_CHAIN):
            row = self._invalid(row)
        self._open_minute, self._cut = event.event_time_ms, None
        return (row,), outcome

    def _nulls(self) -> tuple[None, ...]:
        return (None,) * len(self.features)

    def _invalid(self, row: MinuteRow) -> MinuteRow:
        return replace(row, valid=False, values=self._nulls())

    def sample(self, minute_ms: int, recv_ns: int) -> MinuteRow:
        """The row for ``minute_ms`` from the book as it is now (valid until a closing diff says otherwise)."""
        seq = self.sequencer
        if seq.valid:
            view = seq.view()
            values = tuple(self._value(feature, view, minute_ms) for feature in self.features)
        else:
            values = self._nulls()
        return MinuteRow(self.symbol, minute_ms, seq.valid, seq.last_event_time_ms, recv_ns, values)

    def _value(self, feature: Feature, view: BookView, minute_ms: int) -> FeatureValue:
        try:
            return _finite(feature.fn(view)) if feature.size is None else feature.vector(feature.fn(view))
        except Exception as exc:  # noqa: BLE001 - user code: any failure is reported, never fatal here
            self.on_feature_error(FeatureFailure(feature.name, self.symbol, minute_ms, f"{type(exc).__name__}: {exc}"))
            return None


def _kernels(features: Sequence[Feature]) -> tuple[tuple[int, int], ...] | None:
    if all(isinstance(f.fn, CompiledFeature) for f in features):
        return tuple((int(f.fn.kernel), f.fn.param) for f in features if isinstance(f.fn, CompiledFeature))
    return None


def _finite(value: object) -> float | None:
    """``value`` as a float; ``None``, NaN and infinities mean "undefined" (null); anything that is
    not a real number raises ``TypeError``, an int past float range ``OverflowError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real too
        raise TypeError(f"returned {type(value).__name__} {value!r:.40}, not a number")
    number = float(value)  # OverflowError for an int past float range
    if not math.isfinite(number):
        return None
    return number
