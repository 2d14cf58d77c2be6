"""The Python API over recorded history: features at any interval, books at any time, raw events.

::

    import acts
    h = acts.open("data")                       # a folder, or s3://bucket/prefix
    t = h.features(["BTC", "ETH"], "2024-05-01", "2024-05-08", ["mid", "bias10"], every="1s")

Everything here is a thin layer over the floors below: ``SegmentStore`` finds the segments,
``replay`` runs the one fold (``MinuteSampler`` over ``Sequencer``) that live recording runs, and
``verify`` measures coverage. So a table from ``History.features`` equals ``acts replay``'s output
for the same request, row for row. Semantics of each method: docs/API.md.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import Any

import numpy as np
import pyarrow as pa

from acts.book.book import SCALE
from acts.book.protocol import BookView
from acts.book.sequencer import Sequencer
from acts.core.errors import BadDateError, CorruptSegmentError, InputError, UnknownFeatureError
from acts.core.events import DepthUpdate, Event, EventKind, Marker, Snapshot
from acts.core.markets import Market, parse_market
from acts.core.symbols import parse_symbols, parse_time_ms
from acts.features.builtin import default_registry
from acts.features.pipeline import (
    EVERY_EVENT,
    MinuteRow,
    MinuteSampler,
    NullAndReportOnce,
    OnFeatureError,
    raise_feature_error,
)
from acts.features.registry import Feature, check_names
from acts.replayer.output import DEFAULT_BATCH_ROWS, features_schema, row_batches
from acts.replayer.replay import ReplayReport, book_at, replay, sampled_rows
from acts.replayer.verify import verify_segments
from acts.storage.store import SegmentStore

__all__ = [
    "History",
    "BookSnapshot",
    "open_history",
    "parse_every",
    "features_schema",
    "EVENTS_SCHEMA",
    "DEFAULT_BATCH_ROWS",
]

#: Exact decimal type of ``events()`` prices and quantities: every storable value (at most 18
#: significant digits, at most 8 decimals) fits with room to spare.
DECIMAL = pa.decimal128(38, 18)
_TIME_MS = pa.timestamp("ms", tz="UTC")
_TIME_NS = pa.timestamp("ns", tz="UTC")

#: A feature as the API takes it: a registered name (``"bias10"``, ``"pkg.mod:func"``, an installed
#: plug-in's name), a function of the book view (named by its ``__name__``; a vector if it declares
#: ``@vector(k)``), or a ready ``Feature`` (``Feature(name, fn, size=k)``).
FeatureSpec = str | Feature | Callable[[BookView], Any]
#: A time as the API takes it: what the CLI accepts (``"2024-05-01"``, ``"2024-05-01T12:00:00Z"``)
#: or a ``datetime`` (naive means UTC).
TimeSpec = str | datetime

#: ``events()``: one row per level, the event's own fields repeated on each (a marker, or a diff
#: with no level, is one row with null side, price and qty). ``event`` numbers events from 0.
EVENTS_SCHEMA = pa.schema([
    pa.field("event", pa.int64(), nullable=False),
    pa.field("recv_time", _TIME_NS, nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("event_time", _TIME_MS),
    pa.field("first_update_id", pa.int64()),
    pa.field("final_update_id", pa.int64()),
    pa.field("side", pa.string()),
    pa.field("price", DECIMAL),
    pa.field("qty", DECIMAL),
    pa.field("detail", pa.string()),
])

_UNITS_MS = {"ms": 1, "s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_EVERY = re.compile(r"\s*(\d+)\s*(ms|s|min|h|d)\s*")


def parse_every(every: str | timedelta, name: str = "every") -> int:
    """A sampling interval as milliseconds: ``"100ms"``, ``"1s"``, ``"5s"``, ``"1min"``, ``"1h"``, ``"1d"``,
    any positive whole number of ms; ``"event"`` is ``EVERY_EVENT`` (a row after every diff). ``name``
    is how an error names the argument (the CLI's ``--every``)."""
    given = f"{name} {every!r}" if name.startswith("-") else f"{name}={every!r}"
    if isinstance(every, timedelta):
        ms, rest = divmod(every, timedelta(milliseconds=1))
        if rest or ms <= 0:
            raise InputError(f"{given} must be a positive whole number of milliseconds")
        return int(ms)
    if not isinstance(every, str):
        raise InputError(f"{given} must be text like '1s', '100ms', '1min', '1h' or 'event'")
    if every.strip() == "event":
        return EVERY_EVENT
    match = _EVERY.fullmatch(every)
    if match is None or int(match.group(1)) == 0:
        raise InputError(f"{given} is not an interval; use a positive number and a unit "
                         f"({', '.join(_UNITS_MS)}) like '100ms', '1s', '5s', '1min', '1h', or 'event'")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


@dataclass(frozen=True, slots=True, eq=False)
class BookSnapshot:
    """A symbol's book at one moment. Levels are exact: ``(N, 2)`` arrays of ``(price, qty)`` as
    integers, real value times ``scale`` (10**8), best level first (bids high to low, asks low to
    high); int64, or Python ints (dtype object) in the rare book whose values pass int64. An
    invalid book has no levels. ``bids_float()``/``asks_float()`` give float64 copies."""

    symbol: str
    time_ms: int
    valid: bool
    #: The update id the book reflects (the snapshot's ``lastUpdateId``, then each diff's ``u``); None if invalid.
    last_update_id: int | None
    #: ``E`` of the last diff applied to the book (None before the first, or after a restart).
    last_book_update_ms: int | None
    bids: np.ndarray
    asks: np.ndarray
    scale: int = SCALE

    @property
    def time(self) -> datetime:
        return _datetime(self.time_ms)

    @property
    def last_book_update(self) -> datetime | None:
        return None if self.last_book_update_ms is None else _datetime(self.last_book_update_ms)

    def bids_float(self) -> np.ndarray:
        return self.bids.astype(np.float64) / self.scale

    def asks_float(self) -> np.ndarray:
        return self.asks.astype(np.float64) / self.scale


class History:
    """Read-only access to a data folder (or ``s3://`` prefix) of recorded segments. ``acts.open(...)``.

    ``market``: ``"spot"`` (the default) or ``"usdm"`` (Binance USD-M futures, judged by the futures rules).
    """

    def __init__(self, location: str | PurePath, market: Market | str = Market.SPOT) -> None:
        self.location = str(location)
        try:
            self.market = parse_market(str(market))
        except ValueError as exc:
            raise InputError(f"market: {exc}") from None
        self.store = SegmentStore.open(location, self.market)

    def __repr__(self) -> str:
        extra = "" if self.market is Market.SPOT else f", market={self.market.value!r}"
        return f"History({self.location!r}{extra})"

    # --- what there is -----------------------------------------------------------------

    def symbols(self) -> list[str]:
        """Every recorded symbol, sorted."""
        return self.store.symbols()

    def coverage(self, symbol: str, start: TimeSpec | None = None, end: TimeSpec | None = None) -> pa.Table:
        """Per hour (exchange time) of ``[start, end)``: the share of time the book was valid and proven
        so (``coverage``), events, gaps, lost update ids, resyncs... as ``acts verify`` reports them.

        Reads every segment's footer, then only the segments that can change the answer: from the one
        before the last snapshot received at or before ``start`` (the book's state there, as replay
        starts) to the last one holding an event before ``end``."""
        chosen = self._symbol(symbol)
        start_ms = None if start is None else _time_ms(start, "start")
        end_ms = None if end is None else _time_ms(end, "end")
        _check_order(start_ms, end_ms, start, end)
        unreadable: list[str] = []
        paths = _coverage_segments(self.store, chosen, start_ms, end_ms, unreadable)
        report = verify_segments(self.store, chosen, paths, start_ms, end_ms)
        for problem in unreadable + report.corrupt:
            warnings.warn(f"skipped a corrupt segment: {problem}", RuntimeWarning, stacklevel=2)
        counts = [f.name for f in fields(report.hours[0])][2:] if report.hours else []
        columns: dict[str, Any] = {
            "hour": pa.array([h.hour_ms for h in report.hours], _TIME_MS),
            "symbol": pa.array([h.symbol for h in report.hours], pa.string()),
            "coverage": pa.array([h.coverage for h in report.hours], pa.float64()),
        }
        for name in counts:
            columns[name] = pa.array([getattr(h, name) for h in report.hours], pa.int64())
        return pa.table(columns)

    # --- features ------------------------------------------------------------------------

    def features(self, symbols: str | Sequence[str] | None, start: TimeSpec, end: TimeSpec | None = None,
                 features: Sequence[FeatureSpec] = ("mid",), every: str | timedelta = "1min", *,
                 on_feature_error: str = "raise", strict: bool = False, engine: str = "auto") -> pa.Table:
        """One row per symbol per interval of ``[start, end)`` (``end`` None: to the end of the data), as a
        ``pyarrow.Table`` ordered by ``(time, symbol)``; schema in ``features_schema``. ``every`` as
        ``parse_every`` reads it. See ``iter_features`` for the parameters."""
        resolved = self._features(features)  # once: a plug-in's module is imported once
        batches = self.iter_features(symbols, start, end, resolved, every, on_feature_error=on_feature_error,
                                     strict=strict, engine=engine)
        schema = features_schema(resolved)
        return pa.Table.from_batches(list(batches), schema=schema)

    def iter_features(self, symbols: str | Sequence[str] | None, start: TimeSpec, end: TimeSpec | None = None,
                      features: Sequence[FeatureSpec] = ("mid",), every: str | timedelta = "1min", *,
                      on_feature_error: str = "raise", strict: bool = False, engine: str = "auto",
                      batch_rows: int = DEFAULT_BATCH_ROWS,
                      report: ReplayReport | None = None) -> Iterator[pa.RecordBatch]:
        """The rows of ``features`` as record batches of at most ``batch_rows`` rows, streamed from the
        replay (memory holds one batch, whatever the length of the request).

        ``symbols``: ``"BTC"``, ``["BTC", "ETH"]`` or None (all); ``features``: registered names,
        ``"pkg.mod:func"`` plug-ins (installed or in the current folder), installed plug-ins' names
        (``acts.features`` entry points) or functions of the book view; a vector feature
        (``@vector(k)``) is a ``fixed_size_list<float64>[k]`` column; ``on_feature_error``: ``"raise"``
        (a failing feature raises ``FeatureError``) or ``"null"`` (its value is null, a warning names
        its first failure per feature and symbol); ``strict``: raise on a corrupt segment instead of
        skipping it with a warning. ``report``: a ``ReplayReport`` to fill as the replay goes (events,
        gaps; skipped segments are then listed there instead of warned about). Every argument is
        checked before this returns.
        """
        if batch_rows < 1:
            raise InputError(f"batch_rows={batch_rows} must be at least 1")
        resolved = self._features(features)
        interval_ms = parse_every(every)
        policy = _policy(on_feature_error)
        start_ms, end_ms = self._range(start, end)
        chosen = self._symbols(symbols)
        warn = report is None
        report = ReplayReport() if report is None else report
        rows = replay(self.store, chosen, resolved, start_ms, end_ms, report, strict, engine, interval_ms, policy)
        schema = features_schema(resolved)
        return _batches(rows, schema, batch_rows, report if warn else None)

    # --- books ---------------------------------------------------------------------------

    def book(self, symbol: str, at: TimeSpec, depth: int | None = 20) -> BookSnapshot:
        """The book as of ``at``: the fold of the recording up to, not including, the first event whose
        time is past ``at`` (a diff's time is its ``E``; a snapshot's or marker's, its receive time).
        ``valid`` is the sequencer's (a snapshot loaded, every diff since continued the chain);
        ``depth`` levels a side (None: all)."""
        chosen = self._symbol(symbol)
        at_ms = _time_ms(at, "at")
        _check_depth(depth)
        report = ReplayReport()
        sequencer = book_at(self.store, chosen, at_ms, report)
        _warn_skipped(report)
        valid = sequencer.valid
        view = sequencer.view()
        return _snapshot(chosen, at_ms, valid, sequencer.position if valid else None,
                         sequencer.last_event_time_ms, view.bids(depth) if valid else [],
                         view.asks(depth) if valid else [])

    def books(self, symbol: str, start: TimeSpec, end: TimeSpec | None = None, every: str | timedelta = "1min",
              depth: int | None = 10) -> Iterator[BookSnapshot]:
        """One book per interval of ``[start, end)``, at its end: ``time`` is the interval's end and the
        book is the features row's (the book after the last diff with ``E`` before ``time``, valid
        only if the next diff continued the chain). With ``every="event"``, the book after each diff,
        at its ``E``. Arguments are checked before this returns."""
        chosen = self._symbol(symbol)
        interval_ms = parse_every(every)
        start_ms, end_ms = self._range(start, end)
        _check_depth(depth)
        return self._books(chosen, start_ms, end_ms, interval_ms, depth)

    def _books(self, symbol: str, start_ms: int, end_ms: int | None, interval_ms: int,
               depth: int | None) -> Iterator[BookSnapshot]:
        samplers: list[_BookSampler] = []  # the engine's (the fast one may hand over to the reference)

        def make_sampler(sequencer: Sequencer[Any] | None) -> _BookSampler:
            samplers.append(_BookSampler(symbol, interval_ms, depth, sequencer))
            return samplers[-1]

        report = ReplayReport()
        for row in sampled_rows(self.store, symbol, make_sampler, start_ms, end_ms, report):
            # Rows come out as they are sampled (``_BookSampler`` has no compiled twin): the levels
            # captured last are this row's.
            levels = samplers[-1].captured if row.valid else None
            yield _snapshot(symbol, row.minute_ms + interval_ms, row.valid,
                            levels[0] if levels else None, row.last_book_update_ms,
                            levels[1] if levels else [], levels[2] if levels else [])
        _warn_skipped(report)

    # --- raw events ----------------------------------------------------------------------

    def events(self, symbol: str, start: TimeSpec, end: TimeSpec | None = None) -> pa.Table:
        """The recorded events received in ``[start, end)``, in recorded order, decoded: one row per
        level with exact decimal prices and quantities; schema ``EVENTS_SCHEMA``. A snapshot's
        ``lastUpdateId`` is its ``final_update_id``; a marker's details (JSON) are in ``detail``."""
        chosen = self._symbol(symbol)
        start_ms, end_ms = self._range(start, end)
        start_ns = start_ms * 1_000_000
        end_ns = None if end_ms is None else end_ms * 1_000_000
        builder = _EventColumns()
        for path in self.store.paths(chosen):
            try:
                info = self.store.info(path)
                if info.last_recv_ns < start_ns or (end_ns is not None and info.first_recv_ns >= end_ns):
                    continue
                for event in self.store.events(path, chosen):
                    if start_ns <= event.recv_ns and (end_ns is None or event.recv_ns < end_ns):
                        builder.add(event)
            except CorruptSegmentError as exc:
                warnings.warn(f"skipped a corrupt segment: {exc}", RuntimeWarning, stacklevel=2)
        return builder.table()

    # --- arguments -------------------------------------------------------------------------

    def _symbol(self, symbol: str) -> str:
        chosen = self._symbols(symbol)
        if len(chosen) != 1:
            raise InputError(f"symbol {symbol!r}: give one symbol here, like 'BTC'")
        return chosen[0]

    def _symbols(self, symbols: str | Sequence[str] | None) -> list[str]:
        if symbols is None:
            return self.store.check_symbols([])
        names = parse_symbols(symbols if isinstance(symbols, str) else list(symbols), "symbols")
        return self.store.check_symbols(names)

    @staticmethod
    def _features(specs: Sequence[FeatureSpec]) -> list[Feature]:
        if isinstance(specs, str):
            specs = [specs]
        registry = default_registry()
        out: list[Feature] = []
        for spec in specs:
            if isinstance(spec, Feature):
                out.append(spec)
            elif isinstance(spec, str):
                out += registry.resolve([spec])
            elif callable(spec):
                out.append(Feature.of(getattr(spec, "__name__", type(spec).__name__), spec))
            else:
                raise UnknownFeatureError(f"feature {spec!r} is neither a name nor a function of the book view")
        if not out:
            raise UnknownFeatureError("no feature requested; give at least one, like ['mid']")
        check_names(out, " (give a function its own name with Feature(name, fn))")
        return out

    @staticmethod
    def _range(start: TimeSpec, end: TimeSpec | None) -> tuple[int, int | None]:
        start_ms = _time_ms(start, "start")
        end_ms = None if end is None else _time_ms(end, "end")
        _check_order(start_ms, end_ms, start, end)
        return start_ms, end_ms


def open_history(location: str | PurePath, market: Market | str = Market.SPOT) -> History:
    """``acts.open``: the history recorded in a data folder, or under a filesystem URI (``s3://...``), of
    ``market`` (``"spot"`` or ``"usdm"``)."""
    return History(location, market)


# --- helpers ---------------------------------------------------------------------------------


def _coverage_segments(store: SegmentStore, symbol: str, start_ms: int | None, end_ms: int | None,
                       unreadable: list[str]) -> list[PurePath]:
    """The segments ``coverage`` reads, chosen from the footers alone (an unreadable footer is listed in
    ``unreadable``; reading that file would fail the same way).

    Strategy: only events in ``[start, end)`` are counted; the ones before matter only through the
    book they leave, which the fold rebuilds from the last snapshot at or before ``start`` (read from
    one segment earlier, whose diffs may straddle it: ``SegmentStore.plan``'s rule). A segment whose
    events (a diff's ``E``, others' receive times, both bounded by the footer) could fall in the range
    is never skipped, and reading stops after the last one with an event before ``end``.
    """
    paths = store.paths(symbol)
    spans: list[tuple[int, int] | None] = []  # (earliest, latest) event time a segment can hold
    snapshot_at: list[bool] = []  # holds a snapshot received at or before start
    for path in paths:
        try:
            info = store.info(path)
        except CorruptSegmentError as exc:
            unreadable.append(str(exc))
            spans.append(None)
            snapshot_at.append(False)
            continue
        low, high = info.first_recv_ns // 1_000_000, info.last_recv_ns // 1_000_000
        if info.first_event_ms is not None and info.last_event_ms is not None:
            low, high = min(low, info.first_event_ms), max(high, info.last_event_ms)
        spans.append((low, high))
        snapshot_at.append(start_ms is not None and any(t <= start_ms * 1_000_000 for t in info.snapshot_recv_ns))
    first, last = 0, len(paths) - 1
    if start_ms is not None:
        with_snapshot = [i for i, yes in enumerate(snapshot_at) if yes]
        first = max(0, with_snapshot[-1] - 1) if with_snapshot else 0
        reaching = [i for i, span in enumerate(spans) if span is not None and span[1] >= start_ms]
        first = min([first, *reaching[:1]])
    if end_ms is not None:
        last = max((i for i, span in enumerate(spans) if span is not None and span[0] < end_ms), default=-1)
    return [paths[i] for i in range(first, last + 1) if spans[i] is not None]


class _BookSampler(MinuteSampler):
    """The sampler with no feature that also keeps the levels of the book it samples (the levels of a
    valid row are those of the last ``sample``: rows are sampled at their closing diff)."""

    __slots__ = ("depth", "captured")

    def __init__(self, symbol: str, interval_ms: int, depth: int | None, sequencer: Sequencer[Any] | None = None,
                 ) -> None:
        super().__init__(symbol, (), sequencer, interval_ms)
        self.kernels = None  # rows need the levels: sampled here, never by the compiled lane
        self.depth = depth
        self.captured: tuple[int, list[tuple[int, int]], list[tuple[int, int]]] | None = None

    def sample(self, minute_ms: int, recv_ns: int) -> MinuteRow:
        row = super().sample(minute_ms, recv_ns)
        seq = self.sequencer
        if seq.valid:
            view = seq.view()
            self.captured = (seq.position, view.bids(self.depth), view.asks(self.depth))
        else:
            self.captured = None
        return row


def _warn_skipped(report: ReplayReport) -> None:
    for problem in report.problems:
        warnings.warn(f"skipped a corrupt segment: {problem}", RuntimeWarning, stacklevel=3)


def _policy(on_feature_error: str) -> OnFeatureError:
    if on_feature_error in ("raise", "stop"):
        return raise_feature_error
    if on_feature_error == "null":
        return NullAndReportOnce(lambda message: warnings.warn(message, RuntimeWarning, stacklevel=2))
    raise InputError(f"on_feature_error={on_feature_error!r}: use 'raise' (the default) or 'null'")


def _time_ms(value: TimeSpec, what: str) -> int:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return parse_time_ms(moment.isoformat(), what)
    if not isinstance(value, str):
        raise BadDateError(f"{what}={value!r} must be a date like 2024-05-01, an ISO time or a datetime")
    return parse_time_ms(value, what)


def _check_order(start_ms: int | None, end_ms: int | None, start: object, end: object) -> None:
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise BadDateError(f"end {end!r} is not after start {start!r}")


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, UTC) + timedelta(milliseconds=ms % 1000)


def _check_depth(depth: int | None) -> None:
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise InputError(f"depth={depth!r} must be a number of levels (0 or more), or None for all")


def _levels(levels: list[tuple[int, int]]) -> np.ndarray:
    try:
        array = np.array(levels, dtype=np.int64).reshape(len(levels), 2)
    except OverflowError:
        array = np.array(levels, dtype=object).reshape(len(levels), 2)
    array.flags.writeable = False
    return array


def _snapshot(symbol: str, time_ms: int, valid: bool, last_update_id: int | None, last_book_update_ms: int | None,
              bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> BookSnapshot:
    return BookSnapshot(symbol, time_ms, valid, last_update_id, last_book_update_ms, _levels(bids), _levels(asks))


def _batches(rows: Iterable[MinuteRow], schema: pa.Schema, batch_rows: int,
             report: ReplayReport | None) -> Iterator[pa.RecordBatch]:
    """``rows`` as record batches of ``schema``; skipped corrupt segments become warnings at the end."""
    yield from row_batches(rows, schema, batch_rows)
    for problem in report.problems if report is not None else ():
        warnings.warn(f"skipped a corrupt segment: {problem}", RuntimeWarning, stacklevel=2)


class _EventColumns:
    """``events()``'s columns, filled one event at a time."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in EVENTS_SCHEMA.names}
        self.count = 0

    def add(self, event: Event) -> None:
        head: tuple[int | None, int | None, int | None, str | None]
        if isinstance(event, DepthUpdate):
            head = (event.event_time_ms, event.first_update_id, event.final_update_id, None)
        elif isinstance(event, Snapshot):
            head = (None, None, event.last_update_id, None)
        elif not isinstance(event, Marker):
            raise ValueError(f"{event.kind.name} events are not shown as book rows yet")
        else:
            head = (None, None, None, event.detail)
        levels: list[tuple[str | None, str | None, str | None]] = []
        if isinstance(event, (DepthUpdate, Snapshot)):
            levels += [("bid", price, qty) for price, qty in event.bids]
            levels += [("ask", price, qty) for price, qty in event.asks]
        if not levels:
            levels.append((None, None, None))
        kind = EventKind(event.kind).name.lower()
        c = self.columns
        for side, price, qty in levels:
            c["event"].append(self.count)
            c["recv_time"].append(event.recv_ns)
            c["kind"].append(kind)
            c["event_time"].append(head[0])
            c["first_update_id"].append(head[1])
            c["final_update_id"].append(head[2])
            c["side"].append(side)
            c["price"].append(price)
            c["qty"].append(qty)
            c["detail"].append(head[3])
        self.count += 1

    def table(self) -> pa.Table:
        arrays = []
        for field in EVENTS_SCHEMA:
            data = self.columns[field.name]
            if field.type == DECIMAL:
                # Arrow parses the decimal strings exactly (and refuses any it could not hold).
                arrays.append(pa.array(data, pa.string()).cast(DECIMAL))
            else:
                arrays.append(pa.array(data, field.type))
        return pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA)
