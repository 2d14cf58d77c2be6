"""The built-in features. Each is a pure function of a ``BookView``.

Numbers: the view holds exact integers (value * SCALE). Every feature sums integers exactly and
divides once at the end (Python's int/int division is correctly rounded), so results are the
same bit for bit whatever order the book was built in.

Every book built-in (not the trade features) has a twin in the compiled lane
(``book.kernels.Kernel``): ``CompiledFeature`` says which, and replay uses the twins when every
requested feature has one (same values: the twins divide the same integers, see ``Kernel``).
"""

from __future__ import annotations

from dataclasses import dataclass

from acts.book.book import SCALE
from acts.book.kernels import Kernel
from acts.book.protocol import BookView
from acts.features.registry import FeatureFn, Registry
from acts.features.trades import add_trade_features

__all__ = ["CompiledFeature", "default_registry"]


@dataclass(frozen=True, slots=True)
class CompiledFeature:
    """A built-in feature with a compiled twin: ``kernel`` with ``param`` (levels, for families)."""

    fn: FeatureFn
    kernel: Kernel
    param: int = 0

    def __call__(self, view: BookView) -> float | None:
        return self.fn(view)


def best_bid(view: BookView) -> float | None:
    bid = view.best_bid()
    return None if bid is None else bid / SCALE


def best_ask(view: BookView) -> float | None:
    ask = view.best_ask()
    return None if ask is None else ask / SCALE


def mid(view: BookView) -> float | None:
    bid, ask = view.best_bid(), view.best_ask()
    return None if bid is None or ask is None else (bid + ask) / (2 * SCALE)


def spread(view: BookView) -> float | None:
    bid, ask = view.best_bid(), view.best_ask()
    return None if bid is None or ask is None else (ask - bid) / SCALE


def microprice(view: BookView) -> float | None:
    """Best prices weighted by the *opposite* side's size: leans toward the thinner side."""
    bids, asks = view.bids(1), view.asks(1)
    if not bids or not asks:
        return None
    (bid, bid_qty), (ask, ask_qty) = bids[0], asks[0]
    return (bid * ask_qty + ask * bid_qty) / ((bid_qty + ask_qty) * SCALE)


def _side_sums(view: BookView, levels: int) -> tuple[int, int]:
    return sum(q for _, q in view.bids(levels)), sum(q for _, q in view.asks(levels))


def bias(levels: int) -> FeatureFn:
    def bias_n(view: BookView) -> float | None:
        bids, asks = _side_sums(view, levels)
        return None if bids + asks == 0 else (bids - asks) / (bids + asks)

    return CompiledFeature(bias_n, Kernel.BIAS, levels)


def bid_amount(levels: int) -> FeatureFn:
    def bid_amount_n(view: BookView) -> float | None:
        return _side_sums(view, levels)[0] / SCALE if view.bid_depth else None

    return CompiledFeature(bid_amount_n, Kernel.BID_AMOUNT, levels)


def ask_amount(levels: int) -> FeatureFn:
    def ask_amount_n(view: BookView) -> float | None:
        return _side_sums(view, levels)[1] / SCALE if view.ask_depth else None

    return CompiledFeature(ask_amount_n, Kernel.ASK_AMOUNT, levels)


def depth(bps: int) -> FeatureFn:
    """Quote notional (sum of price * qty, both sides) resting within ``bps`` basis points of mid."""

    def depth_n(view: BookView) -> float | None:
        bid, ask = view.best_bid(), view.best_ask()
        if bid is None or ask is None:
            return None
        # Within band <=> |price - mid| * 10000 <= bps * mid, in integers: mid2 = 2 * mid.
        mid2 = bid + ask
        total = 0
        for price, qty in view.bids():
            if (mid2 - 2 * price) * 10_000 > bps * mid2:
                break
            total += price * qty
        for price, qty in view.asks():
            if (2 * price - mid2) * 10_000 > bps * mid2:
                break
            total += price * qty
        return total / (SCALE * SCALE)

    return CompiledFeature(depth_n, Kernel.DEPTH, bps)


def default_registry() -> Registry:
    """A fresh registry with every built-in feature (no module-level mutable state)."""
    registry = Registry()
    registry.add("mid", CompiledFeature(mid, Kernel.MID), "(best bid + best ask) / 2")
    registry.add("best_bid", CompiledFeature(best_bid, Kernel.BEST_BID), "highest bid price")
    registry.add("best_ask", CompiledFeature(best_ask, Kernel.BEST_ASK), "lowest ask price")
    registry.add("spread", CompiledFeature(spread, Kernel.SPREAD), "best ask - best bid")
    registry.add("microprice", CompiledFeature(microprice, Kernel.MICROPRICE),
                 "(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty) at the best level")
    registry.add_family("bias", bias, "(B - A) / (B + A), B and A the summed quantities of the top N levels")
    registry.add_family("bid_amount", bid_amount, "summed quantity of the top N bid levels")
    registry.add_family("ask_amount", ask_amount, "summed quantity of the top N ask levels")
    registry.add_family("depth", depth, "quote notional (price * qty, both sides) within N basis points of mid")
    add_trade_features(registry)
    return registry
