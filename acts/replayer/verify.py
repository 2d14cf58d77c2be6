"""``acts verify``: what a recording holds, per symbol and hour, re-derived from the raw events.

Coverage is the share of the hour (exchange time) during which the rebuilt book was valid and
proven so by the next diff (time before a diff that breaks the update-id chain is invalid: the
updates were lost at an unknown moment in it); gaps are counted with the update ids they lost
and how long the book stayed invalid; crossed books are counted; corrupt files are listed.
Nothing here trusts the recorder's own markers except as counts (a ``RESTART`` resets the book,
as it did live). USD-M futures data is judged by the futures rules (``--market usdm``: the ``pu``
chain), and a gap's ``missing_ids`` is then the span of ``u`` it skipped (``pu`` - previous ``u``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from acts.book.sequencer import BREAKS_CHAIN, Crossed, Gap, Sequencer, StaleSnapshot
from acts.core.errors import CorruptSegmentError
from acts.core.events import DepthUpdate, Event, EventKind, Marker
from acts.core.markets import Market
from acts.core.timeunits import HOUR_MS
from acts.storage.store import SegmentStore

__all__ = ["HourReport", "VerifyReport", "verify", "verify_segments"]



@dataclass
class HourReport:
    symbol: str
    hour_ms: int
    events: int = 0
    diffs: int = 0
    snapshots: int = 0
    gaps: int = 0
    missing_ids: int = 0
    invalid_ms: int = 0  # exchange time spent with an invalid book
    valid_ms: int = 0
    resyncs: int = 0
    disconnects: int = 0
    crossed_episodes: int = 0
    stale_snapshots: int = 0

    @property
    def coverage(self) -> float:
        total = self.valid_ms + self.invalid_ms
        return self.valid_ms / total if total else 0.0


@dataclass
class VerifyReport:
    hours: list[HourReport] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not self.corrupt


class _SymbolVerifier:
    def __init__(self, symbol: str, report: VerifyReport, start_ms: int | None, end_ms: int | None,
                 market: Market = Market.SPOT) -> None:
        self.symbol = symbol
        self.report = report
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.sequencer = Sequencer(market=market)
        self.hours: dict[int, HourReport] = {}
        self.last_ms: int | None = None  # exchange time of the previous diff

    def _hour(self, ms: int) -> HourReport:
        key = ms - ms % HOUR_MS
        if key not in self.hours:
            self.hours[key] = HourReport(self.symbol, key)
        return self.hours[key]

    def _in_range(self, ms: int) -> bool:
        return (self.start_ms is None or ms >= self.start_ms) and (self.end_ms is None or ms < self.end_ms)

    def feed(self, events: Iterable[Event]) -> None:
        for event in events:
            ms = event.event_time_ms if isinstance(event, DepthUpdate) else event.recv_ns // 1_000_000
            was_valid = self.sequencer.valid
            outcome = self.sequencer.apply(event)
            if not self._in_range(ms):
                continue
            hour = self._hour(ms)
            hour.events += 1
            if isinstance(event, DepthUpdate):
                hour.diffs += 1
                if self.last_ms is not None and ms > self.last_ms:
                    # Time since the previous diff counts as valid if the book was, and this diff proves it.
                    if was_valid and not isinstance(outcome, BREAKS_CHAIN):
                        hour.valid_ms += ms - self.last_ms
                    else:
                        hour.invalid_ms += ms - self.last_ms
                self.last_ms = ms
            elif isinstance(event, Marker):
                hour.resyncs += event.kind is EventKind.RESYNC
                hour.disconnects += event.kind is EventKind.DISCONNECT
            else:
                hour.snapshots += 1
            if isinstance(outcome, Gap):
                hour.gaps += 1
                hour.missing_ids += max(0, outcome.got - outcome.expected)
            elif isinstance(outcome, StaleSnapshot):
                hour.stale_snapshots += 1
            elif isinstance(outcome, Crossed):
                hour.crossed_episodes += 1


def verify(data_dir: Path | str, symbols: list[str], start_ms: int | None = None,
           end_ms: int | None = None, on_segment: Callable[[int, int], None] | None = None,
           market: Market = Market.SPOT) -> VerifyReport:
    """Replay every segment of ``symbols`` (all recorded ones when empty) of ``market`` and report per hour.

    ``on_segment(done, total)`` is called after each segment (for a progress bar)."""
    store = SegmentStore.open(data_dir, market)
    report = VerifyReport()
    chosen = store.check_symbols(symbols)
    paths = {symbol: store.paths(symbol) for symbol in chosen}
    total = sum(len(p) for p in paths.values())
    done = 0
    for symbol in chosen:
        verifier = _SymbolVerifier(symbol, report, start_ms, end_ms, store.market)
        for path in paths[symbol]:
            try:
                verifier.feed(store.events(path, symbol))
            except CorruptSegmentError as exc:
                report.corrupt.append(str(exc))
            done += 1
            if on_segment is not None:
                on_segment(done, total)
        report.hours += [verifier.hours[k] for k in sorted(verifier.hours)]
    return report


def verify_segments(store: SegmentStore, symbol: str, paths: Sequence[PurePath], start_ms: int | None = None,
                    end_ms: int | None = None) -> VerifyReport:
    """``verify`` of one symbol over ``paths`` only, in that order: the caller chose, from the footers,
    the segments that can change the report of ``[start_ms, end_ms)`` (``History.coverage``)."""
    report = VerifyReport()
    verifier = _SymbolVerifier(symbol, report, start_ms, end_ms, store.market)
    for path in paths:
        try:
            verifier.feed(store.events(path, symbol))
        except CorruptSegmentError as exc:
            report.corrupt.append(str(exc))
    report.hours += [verifier.hours[k] for k in sorted(verifier.hours)]
    return report
