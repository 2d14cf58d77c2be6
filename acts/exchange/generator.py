"""A seeded generator of realistic Binance spot depth streams (pure: no clock, no I/O).

Each symbol keeps a true book and emits one ``depthUpdate`` per 100 ms step: a few dozen level
changes clustered near the top, a drifting mid, deletes spelled ``"0.00000000"``, update ids
chained ``U = previous u + 1`` (each event spans several ids, as on Binance). ``snapshot()``
answers like ``GET /api/v3/depth``. With ``gap_rate > 0`` some update ids are skipped, as
when the exchange loses messages. Same seed, same symbols -> same bytes.

``MarketGenerator.step_streams`` adds, per symbol and step, the ``trade`` messages of the step
(consecutive trade ids, ``T`` within the step and ``<= E``, at the best bid (``m`` true: the seller
took) or the best ask, never more than that level holds) and a ``bookTicker`` whenever the best bid
or ask changed, whose ``u`` is the final update id of the diff it follows. Trades draw from their
own random stream, so the depth diffs are the same bytes with or without them.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from acts.core.decimals import format_decimal

__all__ = ["SymbolSpec", "spec_for", "SymbolStream", "MarketGenerator", "STEP_MS", "DEFAULT_START_MS"]

#: Diff-depth cadence of ``@depth@100ms``.
STEP_MS = 100
#: 2024-05-01T00:00:00Z, the demo's first day.
DEFAULT_START_MS = 1_714_521_600_000
_PRICE_EXP = 8
#: Trades per symbol and 100 ms step, drawn uniformly: ~11 a second, both sides.
_TRADES_PER_STEP = (0, 0, 1, 1, 1, 2, 3)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    mid: int  # starting mid price, integer at 8 decimals
    tick: int  # price tick, integer at 8 decimals
    qty_exp: int  # decimals in quantity strings (8 for BTC, 2 for SHIB)
    qty_min: int  # quantity mantissa range (at qty_exp decimals)
    qty_max: int
    qty_step: int = 1  # LOT_SIZE stepSize as a mantissa: quantities are multiples of it, as on Binance


_KNOWN = {
    "BTCUSDT": SymbolSpec("BTCUSDT", 65_000 * 10**8, 10**6, 8, 10**4, 3 * 10**8, 10**3),
    "ETHUSDT": SymbolSpec("ETHUSDT", 3_000 * 10**8, 10**6, 8, 10**5, 5 * 10**9, 10**4),
    "SOLUSDT": SymbolSpec("SOLUSDT", 150 * 10**8, 10**6, 8, 10**6, 10**10, 10**5),
    "BNBUSDT": SymbolSpec("BNBUSDT", 600 * 10**8, 10**6, 8, 10**5, 10**9, 10**5),
    # Tiny prices, huge quantities: 2-decimal quantity strings above 1e10 (whole units, "123.00").
    "SHIBUSDT": SymbolSpec("SHIBUSDT", 2_500, 1, 2, 10**8, 3 * 10**12, 100),
}


def spec_for(symbol: str) -> SymbolSpec:
    """A known spec, or a deterministic one derived from the symbol's name."""
    if symbol in _KNOWN:
        return _KNOWN[symbol]
    h = zlib.crc32(symbol.encode())
    mid = (1 + h % 500) * 10**8
    return SymbolSpec(symbol, mid, 10**4, 8, 10**5, 10**10, 10**4)


class SymbolStream:
    """One symbol's true book and its diff stream."""

    def __init__(self, spec: SymbolSpec, seed: int, depth: int = 300, changes: int = 20, gap_rate: float = 0.0):
        self.spec = spec
        self._rng = random.Random(f"{seed}:{spec.symbol}")
        self._depth = depth
        self._changes = changes
        self._gap_rate = gap_rate
        self._mid_ticks = spec.mid // spec.tick
        self.bids: dict[int, int] = {}  # price ticks -> qty mantissa
        self.asks: dict[int, int] = {}
        self.last_update_id = 1000 + self._rng.randrange(10**6)
        self._trade_rng = random.Random(f"{seed}:{spec.symbol}:trades")
        self.last_trade_id = self._trade_rng.randrange(10**6, 10**7)
        self._ticker: tuple[int, int, int, int] | None = None  # the (bid, qty, ask, qty) last sent
        for k in range(1, depth + 1):
            self.bids[self._mid_ticks - k] = self._qty()
            self.asks[self._mid_ticks + k] = self._qty()

    def _qty(self) -> int:
        spec = self.spec
        # Log-uniform sizes: many small orders, a few large ones.
        lo, hi = spec.qty_min.bit_length(), spec.qty_max.bit_length()
        raw = min(spec.qty_max, max(spec.qty_min, 1 << self._rng.randrange(lo, hi) | self._rng.getrandbits(lo)))
        return max(spec.qty_step, raw - raw % spec.qty_step)

    def _price(self, ticks: int) -> str:
        return format_decimal(ticks * self.spec.tick, _PRICE_EXP)

    def _qty_text(self, mantissa: int) -> str:
        return format_decimal(mantissa, self.spec.qty_exp)

    def step(self, event_time_ms: int) -> dict[str, Any] | None:
        """Advance 100 ms; the ``depthUpdate`` the exchange would send (None: nothing changed)."""
        rng = self._rng
        bid_changes: dict[int, int] = {}
        ask_changes: dict[int, int] = {}
        drift = rng.choice((-1, 0, 0, 0, 1))
        if drift:
            self._mid_ticks += drift
            # Keep the book uncrossed: levels the mid moved over are cancelled.
            for price in [p for p in self.bids if p >= self._mid_ticks]:
                bid_changes[price] = 0
            for price in [p for p in self.asks if p <= self._mid_ticks]:
                ask_changes[price] = 0
        for _ in range(max(1, int(rng.expovariate(1 / self._changes)))):
            distance = 1 + int(rng.expovariate(1 / 8)) % self._depth
            is_bid = rng.random() < 0.5
            price = self._mid_ticks - distance if is_bid else self._mid_ticks + distance
            changes = bid_changes if is_bid else ask_changes
            changes[price] = 0 if rng.random() < 0.25 else self._qty()
        for price, qty in bid_changes.items():
            self._set(self.bids, price, qty)
        for price, qty in ask_changes.items():
            self._set(self.asks, price, qty)
        first = self.last_update_id + 1
        if self._gap_rate and rng.random() < self._gap_rate:
            first += 1 + rng.randrange(5)  # ids lost upstream
        final = first + len(bid_changes) + len(ask_changes) - 1 + rng.randrange(3)
        self.last_update_id = final
        return {
            "e": "depthUpdate",
            "E": event_time_ms,
            "s": self.spec.symbol,
            "U": first,
            "u": final,
            "b": [[self._price(p), self._qty_text(q)] for p, q in sorted(bid_changes.items(), reverse=True)],
            "a": [[self._price(p), self._qty_text(q)] for p, q in sorted(ask_changes.items())],
        }

    def extras(self, event_time_ms: int) -> list[dict[str, Any]]:
        """The step's ``trade`` messages and, if the best bid or ask changed, a ``bookTicker`` (last).

        Call right after ``step``: the ticker's ``u`` is that diff's final update id."""
        rng = self._trade_rng
        best_bid, best_ask = self._best(self.bids, -1), self._best(self.asks, 1)
        out: list[dict[str, Any]] = []
        for trade_time in sorted(event_time_ms - rng.randrange(STEP_MS) for _ in range(rng.choice(_TRADES_PER_STEP))):
            buyer_is_maker = rng.random() < 0.5  # a seller hit the bid
            price = best_bid if buyer_is_maker else best_ask
            level = (self.bids if buyer_is_maker else self.asks)[price]
            step = self.spec.qty_step
            self.last_trade_id += 1
            out.append({"e": "trade", "E": event_time_ms, "s": self.spec.symbol, "t": self.last_trade_id,
                        "p": self._price(price), "q": self._qty_text(step * (1 + rng.randrange(max(1, level // step)))),
                        "T": trade_time, "m": buyer_is_maker, "M": True})
        ticker = (best_bid, self.bids[best_bid], best_ask, self.asks[best_ask])
        if ticker != self._ticker:
            self._ticker = ticker
            out.append({"u": self.last_update_id, "s": self.spec.symbol,
                        "b": self._price(best_bid), "B": self._qty_text(ticker[1]),
                        "a": self._price(best_ask), "A": self._qty_text(ticker[3])})
        return out

    def _best(self, side: dict[int, int], direction: int) -> int:
        """The best price of ``side``: bids all lie below the mid and asks above it (``step`` keeps it so),
        so the nearest level to the mid, a few lookups away, not a scan of the whole side."""
        price = self._mid_ticks + direction
        for _ in range(64):
            if price in side:
                return price
            price += direction
        return max(side) if direction < 0 else min(side)

    @staticmethod
    def _set(side: dict[int, int], price: int, qty: int) -> None:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)

    def snapshot(self, limit: int = 1000) -> dict[str, Any]:
        """What ``GET /api/v3/depth?symbol=..&limit=..`` returns right now."""
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return {
            "lastUpdateId": self.last_update_id,
            "bids": [[self._price(p), self._qty_text(q)] for p, q in bids],
            "asks": [[self._price(p), self._qty_text(q)] for p, q in asks],
        }


class MarketGenerator:
    """Several symbols stepping together every 100 ms of exchange time."""

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 7,
        start_ms: int = DEFAULT_START_MS,
        depth: int = 300,
        changes: int = 20,
        gap_rate: float = 0.0,
    ) -> None:
        self.streams = {s: SymbolStream(spec_for(s), seed, depth, changes, gap_rate) for s in symbols}
        self.now_ms = start_ms

    @property
    def symbols(self) -> list[str]:
        return list(self.streams)

    def step(self) -> list[dict[str, Any]]:
        """Advance one 100 ms step: one ``depthUpdate`` per symbol, in symbol order."""
        return self._step(extras=False)

    def step_streams(self) -> list[dict[str, Any]]:
        """Advance one 100 ms step: per symbol, in symbol order, its diff, then its trades and its
        ``bookTicker`` if the best bid or ask changed (``SymbolStream.extras``)."""
        return self._step(extras=True)

    def _step(self, extras: bool) -> list[dict[str, Any]]:
        self.now_ms += STEP_MS
        out = []
        for stream in self.streams.values():
            msg = stream.step(self.now_ms)
            if msg is not None:
                out.append(msg)
                if extras:
                    out += stream.extras(self.now_ms)
        return out

    def snapshot(self, symbol: str, limit: int = 1000) -> dict[str, Any]:
        return self.streams[symbol].snapshot(limit)

    def run(self, steps: int) -> Iterator[dict[str, Any]]:
        for _ in range(steps):
            yield from self.step()
