"""Binance spot wire shapes the local exchange sends: error bodies, ``exchangeInfo``, stream names.

Pure functions over plain values, so the server stays a thin shell and the shapes are testable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from acts.core.decimals import format_decimal
from acts.core.markets import Market
from acts.core.symbols import FUTURES_TRADE_STREAM, StreamKind, split_symbol, stream_name
from acts.exchange.generator import SymbolSpec

__all__ = [
    "ErrorCode",
    "error_body",
    "symbol_info",
    "exchange_info",
    "Stream",
    "parse_stream",
    "message_kind",
    "combined",
    "dumps",
    "SERVER_SHUTDOWN",
    "UNKNOWN_EVENT",
]

#: Event type sent before the server closes a connection that reached its maximum age.
SERVER_SHUTDOWN = "serverShutdown"
#: Event type of the ``unknown`` fault: no Binance stream sends it.
UNKNOWN_EVENT = "unknownEvent"
_STREAM = re.compile(r"([a-z0-9]+)@(depth(?:@100ms)?|trade|aggtrade|bookticker)")
_KINDS = {"depth": StreamKind.DEPTH, "depth@100ms": StreamKind.DEPTH, "bookticker": StreamKind.BOOK_TICKER}
#: Each market's trade stream: spot's ``@trade``, USD-M's ``@aggTrade`` (it has no ``@trade``).
_TRADE_STREAMS = {Market.SPOT: "trade", Market.USDM: FUTURES_TRADE_STREAM.lower()}
_PRICE_DECIMALS = 8


class ErrorCode(IntEnum):
    """Binance REST error codes the local exchange answers with."""

    UNKNOWN = -1000
    DISCONNECTED = -1001
    TOO_MANY_REQUESTS = -1003
    ILLEGAL_CHARS = -1100
    MANDATORY_PARAM = -1102
    BAD_SYMBOL = -1121


def error_body(code: ErrorCode, msg: str) -> dict[str, Any]:
    """``{"code": -1121, "msg": "Invalid symbol."}``."""
    return {"code": int(code), "msg": msg}


def dumps(obj: Any) -> str:
    """Compact JSON, as Binance sends it."""
    return json.dumps(obj, separators=(",", ":"))


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    """One entry of ``exchangeInfo.symbols``: status, assets, PRICE_FILTER and LOT_SIZE at 8 decimals."""
    base, quote = split_symbol(spec.symbol)
    step = spec.qty_step * 10 ** (_PRICE_DECIMALS - spec.qty_exp)
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": _PRICE_DECIMALS,
        "quoteAsset": quote,
        "quotePrecision": _PRICE_DECIMALS,
        "quoteAssetPrecision": _PRICE_DECIMALS,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": format_decimal(spec.tick, _PRICE_DECIMALS),
                "maxPrice": format_decimal(10**6 * 10**_PRICE_DECIMALS, _PRICE_DECIMALS),
                "tickSize": format_decimal(spec.tick, _PRICE_DECIMALS),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": format_decimal(step, _PRICE_DECIMALS),
                "maxQty": format_decimal(9 * 10**10 * 10**_PRICE_DECIMALS, _PRICE_DECIMALS),
                "stepSize": format_decimal(step, _PRICE_DECIMALS),
            },
        ],
    }


def exchange_info(specs: Sequence[SymbolSpec], server_time_ms: int, weight_limit: int) -> dict[str, Any]:
    """The ``GET /api/v3/exchangeInfo`` body for ``specs``."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(spec) for spec in specs],
    }


@dataclass(frozen=True, slots=True)
class Stream:
    """A subscribed stream: its symbol, its name as the wrapper ``"stream"`` spells it, and its kind."""

    symbol: str
    name: str
    kind: StreamKind = StreamKind.DEPTH

    @property
    def key(self) -> tuple[str, StreamKind]:
        """What a message is routed by: its symbol and the kind of stream it belongs to."""
        return self.symbol, self.kind


def parse_stream(name: str, symbols: Collection[str], market: Market = Market.SPOT) -> Stream | None:
    """``"btcusdt@depth@100ms"`` -> ``Stream("BTCUSDT", "btcusdt@depth@100ms")``; None if not served.

    ``<symbol>@depth`` (Binance's 1000 ms stream) is accepted and served at 100 ms as well;
    ``<symbol>@bookTicker`` is served too, and the market's trade stream: ``<symbol>@trade`` on spot,
    ``<symbol>@aggTrade`` on USD-M futures (never the other one). Matched case-insensitively; the
    wrapper spells the name as Binance does (``btcusdt@bookTicker``).
    """
    match = _STREAM.fullmatch(name.lower())
    if match is None or match.group(1).upper() not in symbols:
        return None
    symbol, stream = match.group(1).upper(), match.group(2)
    if stream in _TRADE_STREAMS.values():
        if stream != _TRADE_STREAMS[market]:
            return None
        kind = StreamKind.TRADE
    else:
        kind = _KINDS[stream]
    return Stream(symbol, match.group(0) if kind is StreamKind.DEPTH else stream_name(kind, symbol, market), kind)


def message_kind(msg: dict[str, Any]) -> StreamKind:
    """The stream a feed message goes out on: ``trade`` or ``aggTrade``, a ``bookTicker`` (spot's carries no
    ``e``), else depth."""
    event = msg.get("e")
    if event == "trade" or event == "aggTrade":
        return StreamKind.TRADE
    if event == "bookTicker" or (event is None and "u" in msg and "b" in msg):
        return StreamKind.BOOK_TICKER
    return StreamKind.DEPTH


def combined(stream: str, data_text: str) -> str:
    """The combined-stream wrapper around an already serialized payload (no re-serialization)."""
    return f'{{"stream":"{stream}","data":{data_text}}}'
