"""Binance REST request weights: what the recorder budgets for and the local exchange charges.

Spot (``GET /api/v3/depth``) and USD-M futures (``GET /fapi/v1/depth``) weigh a depth snapshot
differently.
"""

from __future__ import annotations

from acts.core.markets import Market

__all__ = ["depth_weight", "futures_depth_weight", "FUTURES_DEPTH_LIMITS"]

#: The ``limit`` values ``/fapi/v1/depth`` accepts (anything else is refused with -1130).
FUTURES_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def depth_weight(limit: int, market: Market = Market.SPOT) -> int:
    """Depth snapshot weight for ``limit`` on ``market``.

    Spot: 1-100: 5, -500: 25, -1000: 50, -5000: 250. Futures: see ``futures_depth_weight``.
    """
    if market is Market.USDM:
        return futures_depth_weight(limit)
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def futures_depth_weight(limit: int) -> int:
    """``GET /fapi/v1/depth`` weight for ``limit``: 5/10/20/50: 2, 100: 5, 500: 10, 1000: 20."""
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
