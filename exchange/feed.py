"""What the local exchange serves: a ``Feed`` steps 100 ms at a time and answers depth snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from exchange.generator import DEFAULT_START_MS, MarketGenerator, SymbolSpec, spec_for

__all__ = ["Feed", "GeneratorFeed"]


class Feed(Protocol):
    @property
    def symbols(self) -> list[str]: ...

    def step(self) -> list[dict[str, Any]]:
        """The next 100 ms of ``depthUpdate`` messages (each names its symbol in ``"s"``)."""
        ...

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        """``GET /api/v3/depth`` for ``symbol`` as of the last step."""
        ...

    def spec(self, symbol: str) -> SymbolSpec: ...

    def jump_ids(self, symbol: str, delta: int) -> None:
        """Move update ids by ``delta`` (negative: restart lower), like an exchange restart."""
        ...


class GeneratorFeed:
    """The seeded generator as a feed."""

    def __init__(self, symbols: Sequence[str], seed: int = 7, depth: int = 300, gap_rate: float = 0.0,
                 start_ms: int = DEFAULT_START_MS) -> None:
        self.generator = MarketGenerator(list(symbols), seed=seed, depth=depth, gap_rate=gap_rate,
                                         start_ms=start_ms - start_ms % 100)

    @property
    def symbols(self) -> list[str]:
        return self.generator.symbols

    def step(self) -> list[dict[str, Any]]:
        return self.generator.step()

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        return self.generator.snapshot(symbol, limit)

    def spec(self, symbol: str) -> SymbolSpec:
        return spec_for(symbol)

    def jump_ids(self, symbol: str, delta: int) -> None:
        stream = self.generator.streams[symbol]
        stream.last_update_id = max(1, stream.last_update_id + delta)
