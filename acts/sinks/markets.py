"""Where each market's minute entries are kept.

An entry is keyed by ``(symbol, minute)`` only, and a symbol name such as BTCUSDT belongs to spot and
to USD-M futures alike: one store holding both would let a futures entry replace the spot entry of the
same minute. So each market has its own store, as it has its own folder of segments: spot keeps the
names it always had (``entries.sqlite``, the ``minute_entries`` collection), so existing stores read
on unchanged; USD-M futures add the market to them (``entries-usdm.sqlite``, ``minute_entries_usdm``).
``acts record`` and ``acts backfill`` both reach their store through these names.
"""

from __future__ import annotations

from pathlib import Path

from acts.core.markets import Market

__all__ = ["ENTRIES_COLLECTION", "entries_collection", "entries_file"]

#: The MongoDB collection of spot entries (``MongoSink``'s default).
ENTRIES_COLLECTION = "minute_entries"


def entries_collection(market: Market) -> str:
    """The MongoDB collection of ``market``'s entries: ``minute_entries``, ``minute_entries_usdm``."""
    return ENTRIES_COLLECTION if market is Market.SPOT else f"{ENTRIES_COLLECTION}_{market}"


def entries_file(path: Path, market: Market) -> Path:
    """``market``'s version of a spot entry file: ``entries.sqlite`` -> ``entries-usdm.sqlite``."""
    return path if market is Market.SPOT else path.with_name(f"{path.stem}-{market}{path.suffix}")
