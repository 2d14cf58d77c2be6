"""What a book is, as types: ``BookView`` (what features read) and ``BookLike`` (what ``Sequencer`` drives).

Two books implement both: the reference ``Book`` (sorted dicts, levels as the exchange's strings)
and the fast path's ``ArrayBook`` (sorted integer arrays, levels as book-scale integer arrays). A
book is generic in how it takes levels (``LevelsT``), so ``Sequencer(book=ArrayBook())`` takes
events whose levels are arrays, and ``Sequencer()`` events whose levels are strings.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

__all__ = ["BookView", "BookLike"]

LevelsT_contra = TypeVar("LevelsT_contra", contravariant=True)


class BookView(Protocol):
    """Read-only access for features: integer levels best-first (value * ``scale``), exact.

    Features sum these integers exactly and divide once, so results never depend on which book
    was built, or in what order.
    """

    @property
    def scale(self) -> int:
        """Integer prices and quantities are real values times this (``book.SCALE``)."""
        ...

    def bids(self, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` bid levels ``(price, qty)`` from the best (highest) down; all with ``None``."""
        ...

    def asks(self, n: int | None = None) -> list[tuple[int, int]]:
        """Top ``n`` ask levels ``(price, qty)`` from the best (lowest) up; all with ``None``."""
        ...

    @property
    def bid_depth(self) -> int: ...

    @property
    def ask_depth(self) -> int: ...

    def best_bid(self) -> int | None: ...

    def best_ask(self) -> int | None: ...

    def is_crossed(self) -> bool: ...


class BookLike(Protocol[LevelsT_contra]):
    """A book the sequencer can drive: levels in, a ``BookView`` out. Knows nothing of update ids."""

    def clear(self) -> None: ...

    def apply(self, bids: LevelsT_contra, asks: LevelsT_contra) -> None:
        """Set each level's absolute quantity; quantity zero removes the level."""
        ...

    def load(self, bids: LevelsT_contra, asks: LevelsT_contra) -> None:
        """Replace the whole book (a snapshot)."""
        ...

    def view(self) -> BookView: ...

    def is_crossed(self) -> bool: ...
