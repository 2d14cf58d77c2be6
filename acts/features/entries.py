"""Minute entries: what live recording and backfill store, one per symbol per minute.

The seed project's ``AssetDataEntry``: ``symbol``, ``minute``, ``valid``, ``last_book_update``,
``current_time`` and one key per feature (``mid`` is stored as ``mid_price``). Times are ISO-8601
UTC strings (sortable, exact). Same row, same dict: live and backfill compare field for field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from acts.core.symbols import iso_minute, iso_ms, iso_us
from acts.features.pipeline import MinuteRow

__all__ = ["DEFAULT_LEVELS", "default_feature_names", "field_name", "to_entry"]

DEFAULT_LEVELS = (5, 10, 20, 50)
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def default_feature_names(levels: Sequence[int] = DEFAULT_LEVELS) -> list[str]:
    names = ["mid", "best_bid", "best_ask"]
    for n in levels:
        names += [f"bias{n}", f"bid_amount{n}", f"ask_amount{n}"]
    return names


def field_name(feature: str) -> str:
    """Store key of a feature: ``mid`` -> ``mid_price`` (seed name); no ``.``/``$``/``:`` for MongoDB."""
    return "mid_price" if feature == "mid" else _UNSAFE.sub("_", feature)


def to_entry(row: MinuteRow, names: Sequence[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "symbol": row.symbol,
        "minute": iso_minute(row.minute_ms),
        "valid": row.valid,
        "last_book_update": iso_ms(row.last_book_update_ms) if row.last_book_update_ms is not None else None,
        "current_time": iso_us(row.closing_recv_ns),
    }
    for name, value in zip(names, row.values, strict=True):
        entry[field_name(name)] = value
    return entry
