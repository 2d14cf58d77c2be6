"""Binance spot REST request weights: what the recorder budgets for and the local exchange charges."""

from __future__ import annotations

__all__ = ["depth_weight"]


def depth_weight(limit: int) -> int:
    """``GET /api/v3/depth`` weight for ``limit`` (1-100: 5, -500: 25, -1000: 50, -5000: 250)."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
