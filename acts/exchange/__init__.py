"""The local Binance-compatible exchange and the seeded market behind it.

Modules: ``generator`` (seeded depth streams), ``synthetic`` (a simulated recording), ``feed`` (what
the exchange serves), ``server`` (REST + websocket), ``faults`` (injectable faults and their spec
syntax), ``ratelimit`` (request weights), ``wire`` (Binance message shapes), ``client``
(python-binance pointed at a local exchange). The names below are imported on first use, so
``import acts.exchange.generator`` stays free of aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Feed", "GeneratorFeed", "LocalExchange", "ExchangeThread", "run_exchange", "parse_fault"]

_HOMES = {
    "Feed": "acts.exchange.feed",
    "GeneratorFeed": "acts.exchange.feed",
    "LocalExchange": "acts.exchange.server",
    "ExchangeThread": "acts.exchange.server",
    "run_exchange": "acts.exchange.server",
    "parse_fault": "acts.exchange.faults",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'acts.exchange' has no attribute {name!r}")
