"""ACTS: record every raw Binance depth event, replay it into books and features."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
