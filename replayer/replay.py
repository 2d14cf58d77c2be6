"""Replay: fold recorded events through the feature pipeline, one row per symbol per minute.

Output depends only on the recorded events and the arguments: symbols are replayed
independently and merged by ``(minute, symbol)``, and segment boundaries are invisible to the
fold (an event never spans two files).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from acts.errors import CorruptSegmentError
from features.pipeline import MinuteRow, MinuteSampler
from features.registry import Feature
from replayer.sequencer import Gap, StaleSnapshot
from replayer.store import SegmentStore

__all__ = ["ReplayReport", "replay", "replay_symbol"]


@dataclass
class ReplayReport:
    """What happened along the way, for the closing summary (not part of the output)."""

    events: int = 0
    gaps: int = 0
    stale_snapshots: int = 0
    problems: list[str] = field(default_factory=list)


def replay_symbol(
    store: SegmentStore,
    symbol: str,
    features: Sequence[Feature],
    start_ms: int,
    end_ms: int | None,
    report: ReplayReport,
    strict: bool = False,
    on_event: Callable[[], None] | None = None,
) -> Iterator[MinuteRow]:
    """Rows for ``symbol`` with ``start_ms <= minute < end_ms`` (``end_ms`` None: to the data's end)."""

    def on_problem(exc: CorruptSegmentError) -> None:
        if strict:
            raise exc
        report.problems.append(str(exc))

    sampler = MinuteSampler(symbol, features)
    for path in store.plan(symbol, start_ms, end_ms, on_problem):
        try:
            for event in store.events(path, symbol):
                report.events += 1
                rows, outcome = sampler.apply(event)
                if isinstance(outcome, Gap):
                    report.gaps += 1
                elif isinstance(outcome, StaleSnapshot):
                    report.stale_snapshots += 1
                for row in rows:
                    if end_ms is not None and row.minute_ms >= end_ms:
                        return
                    if row.minute_ms >= start_ms:
                        yield row
        except CorruptSegmentError as exc:
            # The update-id chain breaks across the missing events, so the book goes invalid by
            # itself until the next snapshot: nothing silently wrong is produced.
            on_problem(exc)


def replay(
    store: SegmentStore,
    symbols: Sequence[str],
    features: Sequence[Feature],
    start_ms: int,
    end_ms: int | None = None,
    report: ReplayReport | None = None,
    strict: bool = False,
) -> Iterator[MinuteRow]:
    """Rows for every symbol, ordered by ``(minute, symbol)``."""
    report = report if report is not None else ReplayReport()
    streams = [replay_symbol(store, s, features, start_ms, end_ms, report, strict) for s in sorted(symbols)]
    return heapq.merge(*streams, key=lambda row: (row.minute_ms, row.symbol))
