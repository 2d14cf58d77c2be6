"""The sink interface every store implements (contract tests in tests/features/test_sinks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Sink"]


class Sink(Protocol):
    def write(self, entries: Sequence[dict[str, Any]]) -> int:
        """Upsert by ``(symbol, minute)``: a second write of a key replaces the first. Returns the count."""
        ...

    def read(self, symbols: Sequence[str] | None = None, start: str | None = None,
             end: str | None = None) -> list[dict[str, Any]]:
        """Entries sorted by minute then symbol; ``start`` inclusive, ``end`` exclusive (ISO minutes)."""
        ...

    def close(self) -> None: ...
