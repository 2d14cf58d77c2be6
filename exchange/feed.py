"""What the local exchange serves: a ``Feed`` steps 100 ms at a time and answers depth snapshots.

The protocol is deliberately small so a feed replaying recorded segments fits it too: the server
owns pacing, fan-out and every fault (update-id jumps included), the feed only owns the market.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from exchange.generator import DEFAULT_START_MS, MarketGenerator, SymbolSpec, spec_for

__all__ = ["Feed", "GeneratorFeed"]


class Feed(Protocol):
    """A market the exchange can serve."""

    @property
    def symbols(self) -> list[str]:
        """Upper-case symbols, e.g. ``["BTCUSDT", "ETHUSDT"]``."""
        ...

    def step(self) -> list[dict[str, Any]]:
        """The next 100 ms of ``depthUpdate`` messages (each names its symbol in ``"s"``)."""
        ...

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        """``GET /api/v3/depth`` for ``symbol`` as of the last step."""
        ...

    def spec(self, symbol: str) -> SymbolSpec:
        """Tick and lot sizes for ``exchangeInfo``."""
        ...


class GeneratorFeed:
    """The seeded ``MarketGenerator`` as a feed (exchange time starts at ``start_ms``, rounded to 100 ms)."""

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
