"""The one feature pipeline: fold a symbol's events, emit one row per closed minute.

Minute rule: the row for minute M describes the book after the last event whose exchange time
``E`` lies in ``[M, M + 60 s)``. A minute closes when the first diff with ``E >= M + 60 s``
arrives, *before* that diff is applied; minutes with no diff carry the previous state; the
last, still-open minute is never emitted. Snapshots and markers carry no ``E``: they belong to
the minute that is open when they arrive. Live recording and replay run this same fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from features.registry import Feature
from recorder.events import DepthUpdate, Event
from replayer.sequencer import Outcome, Sequencer

__all__ = ["MINUTE_MS", "MinuteRow", "MinuteSampler"]

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class MinuteRow:
    symbol: str
    minute_ms: int  # start of the minute, UTC epoch ms
    valid: bool
    last_book_update_ms: int | None  # E of the last diff applied to the book
    closing_recv_ns: int  # local receive time of the diff that closed the minute
    values: tuple[float | None, ...]  # one per feature, None when the book is invalid


class MinuteSampler:
    """One symbol's sequencer plus the minute clock. ``apply(event) -> (rows, outcome)``."""

    __slots__ = ("symbol", "features", "sequencer", "_open_minute")

    def __init__(self, symbol: str, features: Sequence[Feature], sequencer: Sequencer | None = None) -> None:
        self.symbol = symbol
        self.features = tuple(features)
        self.sequencer = sequencer or Sequencer()
        self._open_minute: int | None = None

    @property
    def open_minute(self) -> int | None:
        """Start of the minute being filled (None before the first diff)."""
        return self._open_minute

    def apply(self, event: Event) -> tuple[list[MinuteRow], Outcome]:
        rows: list[MinuteRow] = []
        if isinstance(event, DepthUpdate):
            minute = event.event_time_ms - event.event_time_ms % MINUTE_MS
            if self._open_minute is None:
                self._open_minute = minute
            elif minute > self._open_minute:
                rows = self._close(minute, event.recv_ns)
        return rows, self.sequencer.apply(event)

    def _close(self, next_minute: int, recv_ns: int) -> list[MinuteRow]:
        assert self._open_minute is not None
        first = self.sample(self._open_minute, recv_ns)
        rows = [first]
        for minute in range(self._open_minute + MINUTE_MS, next_minute, MINUTE_MS):
            rows.append(MinuteRow(first.symbol, minute, first.valid, first.last_book_update_ms, recv_ns, first.values))
        self._open_minute = next_minute
        return rows

    def sample(self, minute_ms: int, recv_ns: int) -> MinuteRow:
        """The row for ``minute_ms`` from the book as it is now."""
        seq = self.sequencer
        if seq.valid:
            view = seq.view()
            values = tuple(_finite(feature.fn(view)) for feature in self.features)
        else:
            values = (None,) * len(self.features)
        return MinuteRow(self.symbol, minute_ms, seq.valid, seq.last_event_time_ms, recv_ns, values)


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None
