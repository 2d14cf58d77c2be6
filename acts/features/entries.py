"""Minute entries: what live recording and backfill store, one per symbol per minute.

One naming everywhere: an entry holds replay's columns under replay's names -- ``symbol``,
``time`` (start of the minute), ``valid``, ``last_book_update`` and one key per feature, named as
registered (``mid``, ``bias10``, ``mypkg.feat:wimb5``; a vector feature's value is a list) -- plus
``current_time`` (receive time of the diff that closed the minute) and the seed project's
``AssetDataEntry`` names as aliases (``SEED_ALIASES``: ``minute`` is ``time``, ``mid_price`` is
``mid``), so readers written for the seed keep working and the stores keep their ``(symbol,
minute)`` key. Times are ISO-8601 UTC strings (sortable, exact). Same row, same dict: live and
backfill compare field for field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from acts.core.symbols import iso_minute, iso_ms, iso_us
from acts.features.pipeline import MinuteRow

__all__ = ["DEFAULT_LEVELS", "SEED_ALIASES", "default_feature_names", "to_entry"]

DEFAULT_LEVELS = (5, 10, 20, 50)
#: Seed field name -> the name it aliases (same value). ``mid_price`` is present when ``mid`` is.
SEED_ALIASES = {"minute": "time", "mid_price": "mid"}
# (``registry.RESERVED`` keeps features from being named like these keys.)


def default_feature_names(levels: Sequence[int] = DEFAULT_LEVELS) -> list[str]:
    names = ["mid", "best_bid", "best_ask"]
    for n in levels:
        names += [f"bias{n}", f"bid_amount{n}", f"ask_amount{n}"]
    return names


def to_entry(row: MinuteRow, names: Sequence[str]) -> dict[str, Any]:
    """The stored entry of ``row``, whose values belong to the features ``names``."""
    minute = iso_minute(row.minute_ms)
    entry: dict[str, Any] = {
        "symbol": row.symbol,
        "time": minute,
        "valid": row.valid,
        "last_book_update": iso_ms(row.last_book_update_ms) if row.last_book_update_ms is not None else None,
        "current_time": iso_us(row.closing_recv_ns),
    }
    for name, value in zip(names, row.values, strict=True):
        entry[name] = list(value) if isinstance(value, tuple) else value  # a list: what the stores read back
    for alias, name in SEED_ALIASES.items():
        if name in entry:
            entry[alias] = entry[name]
    return entry
