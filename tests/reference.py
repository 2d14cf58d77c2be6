"""A naive reference book, written from Binance's rules with Decimal/Fraction -- no code shared with ACTS."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction


class ReferenceBook:
    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def load(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.bids, self.asks = {}, {}
        self.apply(bids, asks)

    def apply(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)

    def top(self, side: str, n: int) -> list[tuple[Decimal, Decimal]]:
        book = self.bids if side == "bids" else self.asks
        return sorted(book.items(), reverse=side == "bids")[:n]

    # Features, exactly, then rounded once to float.
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return float((Fraction(max(self.bids)) + Fraction(min(self.asks))) / 2)

    def bias(self, n: int) -> float | None:
        b = sum((Fraction(q) for _, q in self.top("bids", n)), Fraction(0))
        a = sum((Fraction(q) for _, q in self.top("asks", n)), Fraction(0))
        return None if b + a == 0 else float((b - a) / (b + a))

    def amount(self, side: str, n: int) -> float | None:
        levels = self.top(side, n)
        return float(sum((Fraction(q) for _, q in levels), Fraction(0))) if levels else None

    def microprice(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        (bp, bq), (ap, aq) = self.top("bids", 1)[0], self.top("asks", 1)[0]
        return float((Fraction(bp) * Fraction(aq) + Fraction(ap) * Fraction(bq)) / (Fraction(bq) + Fraction(aq)))

    def depth(self, bps: int) -> float | None:
        if not self.bids or not self.asks:
            return None
        mid = (Fraction(max(self.bids)) + Fraction(min(self.asks))) / 2
        band = mid * Fraction(bps, 10_000)
        near = [(p, q) for p, q in self.bids.items() if mid - Fraction(p) <= band]
        near += [(p, q) for p, q in self.asks.items() if Fraction(p) - mid <= band]
        return float(sum((Fraction(p) * Fraction(q) for p, q in near), Fraction(0)))
