"""ACTS: record every raw Binance depth event, replay it into books and features.

``acts.open(location)`` opens recorded history for research (``acts.api``, docs/API.md). It is
loaded on first use, so ``import acts.core.errors`` and the CLI's start stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["__version__", "open"]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from acts.api import open_history as open


def __getattr__(name: str) -> Any:
    if name == "open":
        from acts.api import open_history

        return open_history
    raise AttributeError(f"module 'acts' has no attribute {name!r}")
