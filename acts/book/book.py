"""The L2 order book: price -> quantity per side, as exact integers at ``BOOK_SCALE``.

Pure data structure; it knows nothing of update ids (that is the sequencer's job).
``SortedBookView`` is the read-only face that features see (a ``book.protocol.BookView``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sortedcontainers import SortedDict

from acts.core.decimals import BOOK_SCALE, to_book
from acts.core.events import Level

__all__ = ["Book", "SortedBookView", "SCALE"]

#: Integer prices and quantities are real values times this.
SCALE = 10**BOOK_SCALE


class Book:
    """Two sorted sides. Quantity zero (any spelling) removes a level. A ``BookLike[Levels]``."""

    __slots__ = ("_bids", "_asks")

    def __init__(self) -> None:
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        _apply_side(self._bids, bids)
        _apply_side(self._asks, asks)

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.clear()
        self.apply(bids, asks)

    def view(self) -> SortedBookView:
        return SortedBookView(self._bids, self._asks)

    def is_crossed(self) -> bool:
        return bool(self._bids and self._asks and self._bids.keys()[-1] >= self._asks.keys()[0])


def _apply_side(side: SortedDict, levels: Iterable[Level]) -> None:
    for price_text, qty_text in levels:
        qty = to_book(qty_text)
        if qty:
            side[to_book(price_text)] = qty
        else:
            side.pop(to_book(price_text), None)


class SortedBookView:
    """``BookView`` over a ``Book``: integer levels best-first.

    Integers are exact (value * ``SCALE``); floats are computed from exact integer sums with a
    single correctly-rounded division, so results never depend on summation order.
    """

    __slots__ = ("_bids", "_asks")
    scale = SCALE

    def __init__(self, bids: SortedDict, asks: SortedDict) -> None:
        self._bids = bids
        self._asks = asks

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` bid levels ``(price, qty)`` from the best (highest) down."""
        keys = self._bids.keys()
        count = len(keys) if n is None else min(n, len(keys))
        return [(keys[-1 - i], self._bids[keys[-1 - i]]) for i in range(count)]

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` ask levels ``(price, qty)`` from the best (lowest) up."""
        keys = self._asks.keys()
        count = len(keys) if n is None else min(n, len(keys))
        return [(keys[i], self._asks[keys[i]]) for i in range(count)]

    @property
    def bid_depth(self) -> int:
        return len(self._bids)

    @property
    def ask_depth(self) -> int:
        return len(self._asks)

    def best_bid(self) -> int | None:
        return self._bids.keys()[-1] if self._bids else None

    def best_ask(self) -> int | None:
        return self._asks.keys()[0] if self._asks else None

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask
