"""Replay: fold recorded events through the feature pipeline, one row per symbol per interval.

Output depends only on the recorded events and the arguments: symbols are replayed
independently and merged by ``(minute, symbol)``, and segment boundaries are invisible to the
fold (an event never spans two files).

Strategy (fast engine): the compiled lane folds the diffs that continue the update-id chain; when
every requested feature has a compiled twin (``features.builtin.CompiledFeature``) it also closes
intervals -- every diff, in event mode -- and samples their rows into arrays, so Python sees a
batch of rows per few thousand intervals instead of one call per interval. Everything else
(snapshots, markers, gaps, a restart's cut, user features) goes through the one sampler.

The market is the store's (``SegmentStore.market``): every sequencer here judges by its rules. The
compiled lane knows only spot's ``U == position + 1``; for USD-M futures it is handed each row
group with ``pu + 1`` in place of ``U`` (``lane_view``), which is the futures rule in spot's terms.
The audit against bookTicker (``book.sequencer`` rule 8): without trade features a ticker changes
nothing but the audit, so the lane applies the rule itself (``ArrayBook.follow_chain``): a ticker
whose ``u`` is already passed is dropped, one at the position is compared with the best levels,
and those that wait for a diff are compared right after the lane applies it; equal ones are
counted (``report.bbo_checked``). A ticker at the position that differs stops the lane before it
(the sequencer yields ``BboMismatch``); one that waited and differs ends the run after its diff
(``Sequencer.mismatched``, and the row that diff closed is invalid). Tickers still waiting where the
lane stops (an interval to close in Python, a gap, the group's end) wait in the sequencer from then on.
While a ticker waits there (``Sequencer.bbo_wait``), the lane gets the row group cut just before
the first event whose final update id reaches it (``lane_columns``), so that diff goes through the
sampler and is checked there, as the reference engine checks it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath
from typing import Any, TypeAlias

import numpy as np

from acts.book.arraybook import LANE_PENDING, MISMATCH_ROW, NO_MISMATCH, ArrayBook, ArrayLevels, LaneRows
from acts.book.sequencer import (
    MAX_BUFFERED,
    Applied,
    BboChecked,
    BboMismatch,
    Buffered,
    Crossed,
    Gap,
    Outcome,
    Sequencer,
    StaleSnapshot,
    State,
)
from acts.core.errors import CorruptSegmentError, InputError
from acts.core.events import DepthUpdate, Event, EventKind, Levels
from acts.core.markets import Market
from acts.core.timeunits import MINUTE_MS
from acts.features.pipeline import (
    EVERY_EVENT,
    NO_ROWS,
    LaneBatch,
    MinuteRow,
    MinuteSampler,
    OnFeatureError,
    Rows,
    Step,
    raise_feature_error,
)
from acts.features.registry import Feature
from acts.replayer.lane_input import (
    apply_ticker,
    lane_columns,
    lane_view,
    prefetched,
    segment_pieces,
)
from acts.storage.columnar import LevelOverflow, RowGroup
from acts.storage.store import SegmentStore

__all__ = ["Engine", "ReplayReport", "book_at", "replay", "replay_symbol", "sampled_rows"]

#: A step of the fast fold: ``MinuteSampler.apply``'s, or rows the compiled lane closed itself.
FastStep: TypeAlias = Step | tuple[LaneBatch, Outcome]


@dataclass
class ReplayReport:
    """What happened along the way, for the closing summary (not part of the output)."""

    events: int = 0
    gaps: int = 0
    stale_snapshots: int = 0
    crossed: int = 0
    bbo_checked: int = 0
    bbo_mismatched: int = 0
    problems: list[str] = field(default_factory=list)


class Engine(StrEnum):
    """How ``replay`` folds events (``--engine``); both give identical rows."""

    #: ``FAST``, falling back to ``PYTHON`` for a symbol whose levels exceed int64 at the book scale.
    AUTO = "auto"
    #: Columnar decode (``storage.columnar``) and the compiled array book (``book.arraybook``).
    FAST = "fast"
    #: The reference: string levels, sorted dicts, arbitrary-precision ints.
    PYTHON = "python"

    @classmethod
    def parse(cls, value: Engine | str) -> Engine:
        """``value`` as an engine; any other name is one ``InputError`` line naming the choices."""
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"--engine {value!r}: use one of {', '.join(cls)}") from None


def replay_symbol(
    store: SegmentStore,
    symbol: str,
    features: Sequence[Feature],
    start_ms: int,
    end_ms: int | None,
    report: ReplayReport,
    strict: bool = False,
    engine: Engine | str = Engine.AUTO,
    interval_ms: int = MINUTE_MS,
    on_feature_error: OnFeatureError = raise_feature_error,
) -> Iterator[MinuteRow]:
    """Rows for ``symbol`` with ``start_ms <= minute < end_ms`` (``end_ms`` None: to the data's end).

    ``engine``: an ``Engine`` or its name. Both engines share every sequencing and interval rule and
    give identical rows. ``interval_ms`` is the sampling interval.
    """
    def make_sampler(sequencer: Sequencer[Any] | None) -> MinuteSampler[Any]:
        return MinuteSampler(symbol, features, sequencer, interval_ms, on_feature_error)

    return sampled_rows(store, symbol, make_sampler, start_ms, end_ms, report, strict, engine)


def sampled_rows(
    store: SegmentStore,
    symbol: str,
    make_sampler: Callable[[Sequencer[Any] | None], MinuteSampler[Any]],
    start_ms: int,
    end_ms: int | None,
    report: ReplayReport,
    strict: bool = False,
    engine: Engine | str = Engine.AUTO,
) -> Iterator[MinuteRow]:
    """``replay_symbol`` with the sampler of the caller's choosing: ``make_sampler(sequencer)`` builds it
    around the engine's sequencer (None: the reference one). A sampler that samples more than its
    features (``api.History.books`` keeps the levels) sets its ``kernels`` to None, so that every row
    is sampled by its ``sample`` just before it is yielded. Arguments are checked before this returns."""
    chosen = Engine.parse(engine)
    return _sampled_rows(store, symbol, make_sampler, start_ms, end_ms, report, strict, chosen)


def _sampled_rows(store: SegmentStore, symbol: str, make_sampler: Callable[[Sequencer[Any] | None], MinuteSampler[Any]],
                  start_ms: int, end_ms: int | None, report: ReplayReport, strict: bool, chosen: Engine,
                  ) -> Iterator[MinuteRow]:
    def run(fast: bool) -> Iterator[MinuteRow]:
        def on_problem(exc: CorruptSegmentError) -> None:
            if strict:
                raise exc
            report.problems.append(str(exc))

        paths = store.plan(symbol, start_ms, end_ms, on_problem)
        steps: Iterator[FastStep | CorruptSegmentError]
        if fast:
            book = ArrayBook()
            sampler = make_sampler(Sequencer(book=book, market=store.market))
            groups = prefetched(segment_pieces(paths, lambda path: lane_view(store.row_groups(path, symbol),
                                                                             store.market)))
            steps = _fast_steps(sampler, book, groups, report)
        else:
            reference = make_sampler(None if store.market is Market.SPOT else Sequencer(market=store.market))
            steps = _reference_steps(reference, segment_pieces(paths, lambda path: store.events(path, symbol)), report)
        return _rows(steps, start_ms, end_ms, report, on_problem)

    if chosen is Engine.PYTHON:
        yield from run(fast=False)
        return
    emitted = False
    rows = run(fast=True)
    try:
        for row in rows:
            emitted = True
            yield row
            break
        yield from rows  # the rest without this frame's loop: event mode yields a row per diff
    except LevelOverflow as exc:
        if chosen is Engine.FAST or emitted:
            raise InputError(f"{symbol}: {exc}; replay it with --engine python") from None
        yield from run(fast=False)


def book_at(store: SegmentStore, symbol: str, at_ms: int, report: ReplayReport,
            engine: Engine | str = Engine.AUTO) -> Sequencer[Any]:
    """``symbol``'s sequencer (book, validity, position) after the fold of the recording up to, not
    including, the first event whose time is past ``at_ms`` (a diff's time is its ``E``; a snapshot's
    or marker's, its receive time). Corrupt segments are skipped, listed in ``report.problems``."""
    chosen = Engine.parse(engine)
    paths = store.plan(symbol, at_ms, at_ms + 1, lambda exc: report.problems.append(str(exc)))
    if chosen is not Engine.PYTHON:
        try:
            return _fast_book_at(store, symbol, paths, at_ms, report)
        except LevelOverflow as exc:
            if chosen is Engine.FAST:
                raise InputError(f"{symbol}: {exc}; use engine='python'") from None
    sequencer = Sequencer(market=store.market)
    for event in segment_pieces(paths, lambda path: store.events(path, symbol)):
        if isinstance(event, CorruptSegmentError):
            report.problems.append(str(event))
            continue
        if (event.event_time_ms if isinstance(event, DepthUpdate) else event.recv_ns // 1_000_000) > at_ms:
            break
        report.events += 1
        sequencer.apply(event)
    return sequencer


def _fast_book_at(store: SegmentStore, symbol: str, paths: Sequence[PurePath], at_ms: int,
                  report: ReplayReport) -> Sequencer[Any]:
    """``book_at`` on the fast path: the compiled lane follows the chain up to ``at_ms`` (it stops at the
    first diff past it); every other event goes through the sequencer."""
    book = ArrayBook()
    sequencer = Sequencer(book=book, market=store.market)
    for group in segment_pieces(paths, lambda path: lane_view(store.row_groups(path, symbol), store.market)):
        if isinstance(group, CorruptSegmentError):
            report.problems.append(str(group))
            continue
        i, n = 0, len(group)
        while i < n:
            if sequencer.state is State.LIVE and (lane := lane_columns(group, i, sequencer.bbo_wait)) is not None:
                j, position, last_time, crossed = book.follow_chain(lane, i, sequencer.position, at_ms + 1)
                if j > i:
                    sequencer.followed(position, None if last_time < 0 else last_time)
                    report.events += j - i
                    i = j
                    if crossed:
                        sequencer.crossed(position)
                    continue
            is_diff = group.kinds[i] == EventKind.DEPTH
            if (int(group.times[i]) if is_diff else int(group.recv[i]) // 1_000_000) > at_ms:
                return sequencer
            report.events += 1
            sequencer.apply(group.event(i))
            i += 1
    return sequencer


def _rows(steps: Iterator[FastStep | CorruptSegmentError], start_ms: int, end_ms: int | None, report: ReplayReport,
          on_problem: Callable[[CorruptSegmentError], None]) -> Iterator[MinuteRow]:
    """The rows in ``[start_ms, end_ms)`` of what the fold gave, counting its outcomes in ``report``."""
    for step in steps:
        if isinstance(step, CorruptSegmentError):
            # The update-id chain breaks across the missing events, so the book goes invalid by
            # itself until the next snapshot: nothing silently wrong is produced.
            on_problem(step)
            continue
        rows, outcome = step
        if isinstance(outcome, Gap):
            report.gaps += 1
        elif isinstance(outcome, StaleSnapshot):
            report.stale_snapshots += 1
        elif isinstance(outcome, Crossed):
            report.crossed += 1
        elif isinstance(outcome, BboChecked):
            report.bbo_checked += 1
        elif isinstance(outcome, BboMismatch):
            report.bbo_mismatched += 1
        if isinstance(rows, (Rows, LaneBatch)) and rows.stop_ms <= start_ms:
            continue  # all before the requested range: skip without visiting each carried row
        if isinstance(rows, LaneBatch) and rows.first_ms >= start_ms and (end_ms is None or rows.stop_ms <= end_ms):
            yield from rows  # all inside the range: no test per row
            continue
        for row in rows:
            if end_ms is not None and row.minute_ms >= end_ms:
                return
            if row.minute_ms >= start_ms:
                yield row


def _reference_steps(sampler: MinuteSampler[Levels], events: Iterator[Event | CorruptSegmentError],
                     report: ReplayReport) -> Iterator[Step | CorruptSegmentError]:
    """``sampler.apply`` over every event: the reference engine."""
    for event in events:
        if isinstance(event, CorruptSegmentError):
            yield event
            continue
        report.events += 1
        yield sampler.apply(event)


def _fast_steps(sampler: MinuteSampler[ArrayLevels], book: ArrayBook,
                groups: Iterator[RowGroup | CorruptSegmentError], report: ReplayReport,
                ) -> Iterator[FastStep | CorruptSegmentError]:
    """``_fold_fast`` over every decoded row group; ``book`` is the sampler's."""
    lane = None if sampler.kernels is None else _lane_rows(sampler.kernels)
    for group in groups:
        if isinstance(group, CorruptSegmentError):
            yield group
        else:
            yield from _fold_fast(sampler, book, group, report, lane)


#: What a lane step reports: the rows it closed were each closed by a diff that kept the chain.
_APPLIED = Applied()


def _fold_fast(sampler: MinuteSampler[ArrayLevels], book: ArrayBook, group: RowGroup,
               report: ReplayReport, lane: LaneRows | None = None) -> Iterator[FastStep]:
    """``sampler.apply`` over a decoded row group. While the book is LIVE, runs of diffs that continue the
    chain go through the compiled lane (no outcome: ``apply`` would give ``Applied``/``Ignored`` for
    each, or ``Crossed`` for the diff that crosses the book, which the lane stops after); every other
    event goes through ``apply``. With ``lane`` (every feature compiled), the lane also closes
    intervals and samples their rows itself (``ArrayBook.sample_chain``); without it, it stops at the
    diff that closes the open interval and leaves it to ``apply``."""
    sequencer = sampler.sequencer
    grace = _GraceStop()
    # Trades change no book: the lane steps over them unless a trade feature reads them (then each goes
    # to ``apply``, which closes the intervals' trade parts).
    skip_trades = sampler.trades is None
    # Likewise bookTickers: without trade features one reaches only the sequencer, so the lane may audit it
    # itself where rule 8 decides alone (see ``lane_columns``); with them each also feeds the trade part.
    check_tickers = sampler.trades is None and sampler.event_trades is None
    stretch_ends: np.ndarray | None = None  # where a NO_BOOK stretch must stop (built on first use)
    i, n = 0, len(group)
    while i < n:
        if sequencer.state is State.LIVE and (columns := lane_columns(
                group, i, sequencer.bbo_wait, sequencer.position if check_tickers else None)) is not None:
            # Tickers may wait for a diff in the lane only while none waits in the sequencer (see ``follow_chain``).
            pend = LANE_PENDING if check_tickers and sequencer.bbo_wait is None else 0
            if lane is not None and (open_start := sampler.lane_open()) is not None:
                last = sequencer.last_event_time_ms
                j, position, last_time, open_start, written, crossed = book.sample_chain(
                    columns, i, sequencer.position, -1 if last is None else last, open_start, sampler.interval_ms,
                    lane, skip_trades, check_tickers, pend)
                if j > i:
                    sequencer.followed(position, None if last_time < 0 else last_time)
                    _hand_waiting(sequencer, group, book.tickers_waiting)
                    sampler.lane_closed(open_start)
                    report.events += j - i
                    report.bbo_checked += book.tickers_checked
                    i = j
                    if written:
                        yield _lane_batch(sampler, lane, written), _APPLIED
                    if crossed:
                        yield NO_ROWS, sequencer.crossed(position)
                    elif book.ticker_mismatch != NO_MISMATCH:
                        rows = _mismatched_row(sampler, lane, written) if book.ticker_mismatch == MISMATCH_ROW \
                            else NO_ROWS
                        yield rows, sequencer.mismatched(position)
                    continue
            elif (open_minute := sampler.open_minute) is not None:
                limit = open_minute + sampler.interval_ms
                if sampler.trades is not None:
                    limit = min(limit, grace.limit(group, i, sampler.trades.deadline_ns()))
                j, position, last_time, crossed = book.follow_chain(columns, i, sequencer.position, limit,
                                                                    skip_trades, check_tickers, pend)
                if j > i:
                    sequencer.followed(position, None if last_time < 0 else last_time)
                    _hand_waiting(sequencer, group, book.tickers_waiting)
                    report.events += j - i
                    report.bbo_checked += book.tickers_checked
                    i = j
                    if crossed:
                        yield NO_ROWS, sequencer.crossed(position)
                    elif book.ticker_mismatch != NO_MISMATCH:  # its last diff closed no interval: no row
                        yield NO_ROWS, sequencer.mismatched(position)
                    continue
        if sequencer.state is State.NO_BOOK and (boxed := sampler.invalid_open()) is not None:
            if stretch_ends is None:
                stretch_ends = np.flatnonzero(np.isin(group.kinds, _STRETCH_ENDS))
            j = _stretch_end(stretch_ends, i, n)
            if j > i:
                yield from _invalid_stretch(sampler, group, i, j, boxed[0])
                report.events += j - i
                i = j
                continue
        report.events += 1
        if check_tickers and group.kinds[i] == _BOOK_TICKER:
            # Without trade features a ticker reaches only the sequencer (``MinuteSampler.apply``): give it the
            # integers from the columns rather than an event spelled back as strings (a busy symbol sends
            # several tickers per diff). With them (event mode's too) its receive time also decides trade parts.
            yield NO_ROWS, apply_ticker(sequencer, group, i)
        else:
            yield sampler.apply(group.event(i))
        i += 1


#: ``EventKind.BOOK_TICKER`` as a plain int: an enum member's lookup costs microseconds per row.
_BOOK_TICKER = int(EventKind.BOOK_TICKER)
#: What ends a NO_BOOK stretch: a snapshot (it loads the book) and a restart (it cuts the open interval).
#: Everything else changes nothing without a book but the buffer and the interval clock: diffs are
#: buffered, trades and tickers noted (no trade feature reads them), other markers noted.
_STRETCH_ENDS = np.array([EventKind.SNAPSHOT, EventKind.RESTART], dtype=np.int64)
#: What a diff does without a book.
_BUFFERED = Buffered()


def _stretch_end(ends: np.ndarray, i: int, n: int) -> int:
    """The first row at or after ``i`` that ``ends`` (the group's snapshot and restart rows) holds, else ``n``."""
    k = int(np.searchsorted(ends, i))
    return int(ends[k]) if k < len(ends) else n


def _invalid_stretch(sampler: MinuteSampler[ArrayLevels], group: RowGroup, i: int, j: int,
                     open_start: int | None) -> Iterator[FastStep]:
    """``sampler.apply`` over rows ``i:j`` while the book is NO_BOOK (``sampler.invalid_open()`` gave
    ``open_start``), without building the events that cannot matter.

    Strategy: without a book, a diff only closes the open interval (an invalid row of nulls whose time and
    receive time are the diff's, ``Buffered`` proves nothing) and joins the sequencer's buffer, a deque
    that keeps the last ``MAX_BUFFERED``; trades and tickers change nothing. So the rows come from the
    ``E`` and receive columns (the open interval's start is the running maximum of the diffs' interval
    starts; in event mode, the previous diff's ``E``), and only the diffs the buffer keeps are built.
    Markers other than RESTART change nothing here (the sequencer notes them, the sampler too).
    """
    sequencer = sampler.sequencer
    diffs = i + np.flatnonzero(group.kinds[i:j] == _DEPTH)
    if not diffs.size:
        return
    times, recvs = group.times[diffs], group.recv[diffs]
    symbol, last, nulls, step = sampler.symbol, sequencer.last_event_time_ms, (None,) * len(sampler.features), \
        sampler.interval_ms
    if step == EVERY_EVENT:
        minutes = times[:-1].tolist()
        closing = recvs[1:].tolist()
        if open_start is not None:
            minutes, closing = [open_start, *minutes], recvs.tolist()
        if minutes:
            yield tuple(MinuteRow(symbol, m, False, last, r, nulls) for m, r in zip(minutes, closing, strict=True)), \
                _BUFFERED
        new_open = int(times[-1])
    else:
        starts = times - times % step
        first = int(starts[0]) if open_start is None else open_start
        before = np.maximum.accumulate(np.concatenate(([first], starts)))  # the open start before each diff
        closes = np.flatnonzero(starts > before[:-1])
        for minute, stop, recv in zip(before[closes].tolist(), starts[closes].tolist(), recvs[closes].tolist(),
                                      strict=True):
            yield Rows(MinuteRow(symbol, minute, False, last, recv, nulls), stop, step), _BUFFERED
        new_open = int(before[-1])
    sampler.lane_closed(new_open)
    for k in diffs[-MAX_BUFFERED:].tolist():  # the sequencer's buffer keeps these only
        outcome = sequencer.apply(group.event(k))
        assert isinstance(outcome, Buffered)


def _hand_waiting(sequencer: Sequencer[Any], group: RowGroup, rows: list[int]) -> None:
    """Give the sequencer the bookTickers (rows of ``group``, in arrival order) the lane left waiting for a
    diff it did not apply: they wait there now, as if the sequencer had seen each when it came."""
    for k in rows:
        apply_ticker(sequencer, group, k)


class _GraceStop:
    """Where the compiled lane must stop so that ``apply`` sees the first event received at or after the
    trade part's grace deadline (``features.trades``): trade rows stop the lane anyway, but a diff's
    receive time alone may close an interval's trade part, so the lane must not swallow that diff."""

    __slots__ = ("deadline", "index", "value")

    def __init__(self) -> None:
        self.deadline = -1
        self.index = -1  # first row at or after the last asked position received at or after the deadline
        self.value = _NO_LIMIT

    def limit(self, group: RowGroup, i: int, deadline_ns: int) -> int:
        """An ``E`` limit for ``follow_chain`` from row ``i``: it then stops at or before that row."""
        if deadline_ns == self.deadline and self.index >= i:  # the deadline moves only when apply ran
            return self.value
        late = np.flatnonzero(group.recv[i:] >= deadline_ns)
        self.deadline, self.index = deadline_ns, (i + int(late[0]) if len(late) else len(group))
        self.value = (int(group.times[self.index]) if self.index < len(group) and group.kinds[self.index] == _DEPTH
                      else _NO_LIMIT)
        return self.value


#: An ``E`` no diff reaches.
_NO_LIMIT = 2**62
_DEPTH = int(EventKind.DEPTH)

#: Rows the compiled lane closes before it hands them over (its output columns' length).
LANE_ROWS = 4096
def _mismatched_row(sampler: MinuteSampler[ArrayLevels], lane: LaneRows, written: int) -> Rows | tuple[MinuteRow]:
    """The row whose closing diff a waiting bookTicker then proved wrong (the lane left it in slot ``written``):
    invalid, as ``MinuteSampler.apply`` makes a row whose closing diff is in ``BREAKS_CHAIN``."""
    last = int(lane.last[written])
    row = MinuteRow(sampler.symbol, int(lane.time[written]), False, None if last < 0 else last,
                    int(lane.recv[written]), (None,) * len(sampler.features))
    if sampler.interval_ms == EVERY_EVENT:
        return (row,)
    return Rows(row, int(lane.stop[written]), sampler.interval_ms)


def _lane_rows(kernels: tuple[tuple[int, int], ...]) -> LaneRows:
    codes = np.array([code for code, _ in kernels], dtype=np.int64)
    params = np.array([param for _, param in kernels], dtype=np.int64)
    return LaneRows(codes, params, LANE_ROWS)


def _lane_batch(sampler: MinuteSampler[ArrayLevels], lane: LaneRows, written: int) -> LaneBatch:
    """The lane's first ``written`` rows, copied out of its reused columns."""
    values = lane.values[:written]
    columns = values.T.tolist()
    for f in np.flatnonzero(np.isnan(values).any(axis=0)):  # NaN is the lane's "undefined": None, as in Python
        columns[f] = [None if v != v else v for v in columns[f]]
    rows: list[tuple[float | None, ...]] = list(zip(*columns, strict=True)) if columns else [()] * written
    return LaneBatch(sampler.symbol, sampler.interval_ms, lane.time[:written].tolist(),
                     lane.stop[:written].tolist(), lane.last[:written].tolist(), lane.recv[:written].tolist(), rows)


def replay(
    store: SegmentStore,
    symbols: Sequence[str],
    features: Sequence[Feature],
    start_ms: int,
    end_ms: int | None = None,
    report: ReplayReport | None = None,
    strict: bool = False,
    engine: Engine | str = Engine.AUTO,
    interval_ms: int = MINUTE_MS,
    on_feature_error: OnFeatureError = raise_feature_error,
) -> Iterator[MinuteRow]:
    """Rows for every symbol, ordered by ``(minute, symbol)``."""
    report = report if report is not None else ReplayReport()
    streams = [replay_symbol(store, s, features, start_ms, end_ms, report, strict, engine, interval_ms,
                             on_feature_error) for s in sorted(symbols)]
    return heapq.merge(*streams, key=lambda row: (row.minute_ms, row.symbol))
