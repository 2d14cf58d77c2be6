"""The sink interface every store implements (contract tests in tests/features/test_sinks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Sink"]


class Sink(Protocol):
    def write(self, entries: Sequence[dict[str, Any]], timeout_s: float | None = None) -> int:
        """Upsert by ``(symbol, minute)``: a second write of a key replaces the first. Returns the count.
        A remote store gives up (``SinkError``) after ``timeout_s`` at most; a local one ignores it."""
        ...

    def read(self, symbols: Sequence[str] | None = None, start: str | None = None,
             end: str | None = None) -> list[dict[str, Any]]:
        """Entries sorted by minute then symbol; ``start`` inclusive, ``end`` exclusive (ISO minutes)."""
        ...

    def close(self) -> None: ...
