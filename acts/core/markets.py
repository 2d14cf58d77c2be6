"""Binance markets ACTS records: spot and USD-M futures, which share symbol names but never data.

Each market has its own sequencing rule (``acts.book.sequencer``), its own folder of segments
(``acts.storage.layout``) and a ``market`` key in each segment's footer. Spot is the default
everywhere, so data recorded before markets existed reads as spot.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Market", "MARKETS", "LABELS", "parse_market"]


class Market(StrEnum):
    SPOT = "spot"  #: Binance spot (``/api/v3/depth``): each diff's ``U`` is the previous ``u`` + 1
    USDM = "usdm"  #: Binance USD-M futures (``/fapi/v1/depth``): each diff's ``pu`` is the previous ``u``


#: The ``--market`` choices, in help order.
MARKETS = tuple(m.value for m in Market)
#: How messages name each market.
LABELS = {Market.SPOT: "spot", Market.USDM: "USD-M futures"}


def parse_market(text: str) -> Market:
    """``"usdm"`` -> ``Market.USDM``; anything unknown is a ``ValueError`` naming the choices."""
    try:
        return Market(text.strip().lower())
    except ValueError:
        raise ValueError(f"unknown market {text!r}; choose one of: {', '.join(MARKETS)}") from None
