"""Names of the features the compiled lane computes itself (no numba here: the live path imports it).

``features.builtin`` tags its built-ins with these; ``book.arraybook._features`` implements them.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EXACT_LIMIT", "Kernel"]


class Kernel(IntEnum):
    """A compiled feature. Each equals its Python twin bit for bit: both divide two exact integers
    once, and the lane only does so while both fit a double exactly (``EXACT_LIMIT``, or for
    ``MICROPRICE``/``DEPTH`` the same ratio in lowest terms); past that, or where an int64 product
    could wrap, it hands the row to Python."""

    MID = 0
    BEST_BID = 1
    BEST_ASK = 2
    SPREAD = 3
    BIAS = 4  #: parameter: levels
    BID_AMOUNT = 5  #: parameter: levels
    ASK_AMOUNT = 6  #: parameter: levels
    MICROPRICE = 7
    DEPTH = 8  #: parameter: basis points of mid


#: Integers up to this size convert to float64 exactly, so one float division of two of them is
#: correctly rounded -- what Python's ``int / int`` gives.
EXACT_LIMIT = 2**53
