"""Lengths of time in the units the code counts in: exchange times are ms, receive times ns, settings s."""

from __future__ import annotations

__all__ = ["SECOND_MS", "MINUTE_MS", "HOUR_MS", "DAY_MS", "HOUR_S", "DAY_S", "SECOND_NS", "HOUR_NS", "DAY_NS"]

#: Milliseconds: exchange event times (``E``), sampling intervals, partitions.
SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
#: Seconds: durations in settings.
HOUR_S = HOUR_MS // SECOND_MS
DAY_S = DAY_MS // SECOND_MS
#: Nanoseconds: local receive times (``recv_ns``), journal names.
SECOND_NS = 10**9
HOUR_NS = HOUR_MS * 1_000_000
DAY_NS = DAY_MS * 1_000_000
