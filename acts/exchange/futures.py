"""Binance USD-M futures on the local exchange: ``/fapi/v1`` REST and the futures diff-depth stream.

A futures exchange is a ``LocalExchange(feed, market=Market.USDM)``: one exchange serves one market, as
Binance does (``fapi.binance.com`` / ``fstream.binance.com`` apart from spot's hosts), so spot and
futures data of the same symbol never meet. This module holds what differs from spot:

* REST ``/fapi/v1/ping``, ``/fapi/v1/time``, ``/fapi/v1/exchangeInfo`` (futures shape: contract type,
  margin asset, precisions) and ``/fapi/v1/depth`` (``limit`` one of 5, 10, 20, 50, 100, 500, 1000,
  default 500; weights ``acts.core.weights.futures_depth_weight``; the answer carries ``E`` and ``T``).
* Streams on ``/ws``, ``/stream`` and Binance's routed ``/public/ws``, ``/public/stream`` (where
  python-binance's ``futures_multiplex_socket(..., category="public")`` connects): the same fan-out,
  faults and pacing as spot, with futures ``depthUpdate`` frames
  ``{"e","E","T","s","U","u","pu","b","a"}``, ``pu`` = the previous diff's ``u``; ``<symbol>@aggTrade``
  frames ``{"e","E","s","a","p","q","f","l","T","m"}`` (USD-M has no ``@trade`` stream) and
  ``<symbol>@bookTicker`` frames ``{"e","u","E","T","s","b","B","a","A"}``, ``u`` on the diffs' numbering.

Strategy: the generator's update ids are contiguous (spot's ``U = previous u + 1``); ``FuturesFeed``
spreads them out: ``U' = 4U - 2``, ``u' = 4u``, ``pu' = 4(U - 1)``, so consecutive futures diffs do not
chain by ``U`` (``U' = pu' + 2``; Binance futures ids jump too) and only ``pu`` says whether one was lost.
A snapshot taken after diff k answers ``lastUpdateId = 4 u_k + 2``: inside the next diff's ``[U', u']``,
as a Binance futures snapshot taken mid-batch lies inside the batch that follows. So the futures
procedure bridges it with diff k + 1 (diff k has ``u' < L`` and is dropped), whether or not the client
received diff k. A diff the generator lost upstream (``gap_rate``) gets ``pu`` = the lost diff's ``u``.
``pu`` is set before the exchange's faults, so a ``skip`` or ``reorder`` fault breaks the ``pu`` chain
just as a lost frame on Binance does.

The generator's trades become aggTrades: ``a`` = the trade id (consecutive, so a lost aggTrade is a jump of
``a`` as a lost trade is of ``t``), each aggregating one to three fills ``f..l`` that continue the previous
aggTrade's ``l``. Its bookTickers get ``e``, ``E``/``T`` of the step, and ``u' = 4u``: the ``u`` of the diff
they follow, so the book after that diff is the one the ticker describes (rule 8 of the audit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from acts.core.decimals import format_decimal
from acts.core.errors import InputError
from acts.core.markets import Market
from acts.core.symbols import split_symbol
from acts.core.weights import FUTURES_DEPTH_LIMITS, futures_depth_weight
from acts.exchange.feed import Feed, SegmentFeed
from acts.exchange.generator import SymbolSpec

if TYPE_CHECKING:
    from acts.exchange.server import LocalExchange

__all__ = ["USDM", "FUTURES_WEIGHT_LIMIT", "FuturesFeed", "FuturesHistory", "futures_feed", "futures_depth",
           "futures_exchange_info", "register", "STREAM_PREFIXES"]

#: The market a futures exchange serves.
USDM = Market.USDM
_DEPTH_UPDATE = "depthUpdate"
_TRADE = "trade"
#: At most this many fills make one generated aggTrade (``f``..``l``).
_MAX_FILLS = 3
#: The generated fill ids of a symbol start at its first trade id times this (any start would do).
_FILLS_PER_TRADE_ID = _MAX_FILLS
#: Binance USD-M's ``REQUEST_WEIGHT`` per minute.
FUTURES_WEIGHT_LIMIT = 2400
#: ``/fapi/v1/depth`` without ``limit``.
DEFAULT_DEPTH_LIMIT = 500
#: Where futures streams are served: the legacy paths and Binance's routed ``/public`` ones.
STREAM_PREFIXES = ("", "/public")
#: Generated ids times this (see "Strategy"): room between a diff's ``pu`` and its ``U``.
_SPREAD = 4
#: A diff's ``U`` lies this far below its spread-out first id; a snapshot's ``lastUpdateId`` this far above.
_INSIDE = 2
#: Futures ``T`` (transaction time) runs this far behind ``E`` (event time) in generated frames.
_MATCH_LAG_MS = 2
#: Futures REST answers ``exchangeInfo`` at weight 1 (spot: 20).
_INFO_WEIGHT = 1
_PING_WEIGHT = 1
_TIME_WEIGHT = 1
#: Binance's ``-1130``: a parameter's value is not allowed.
_INVALID_PARAMETER = -1130
#: Perpetual contracts on Binance carry this delivery date (2100-12-25).
_PERPETUAL_DELIVERY_MS = 4_133_404_800_000
_ONBOARD_MS = 1_569_398_400_000
_DECIMALS = 8


class FuturesFeed:
    """A spot-style feed (``GeneratorFeed``) served as USD-M futures: ids spread out, ``pu`` and ``T`` added
    (see the module's "Strategy"). Snapshots carry ``lastUpdateId`` on the same numbering, and ``E``/``T``
    of the last step."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.now_ms = 0  # E of the last step's diffs
        self._next_fill: dict[str, int] = {}  # symbol -> f of its next aggTrade

    @property
    def symbols(self) -> list[str]:
        return self.feed.symbols

    def step(self) -> list[dict[str, Any]]:
        return [self._futures(msg) for msg in self.feed.step()]

    def _futures(self, msg: dict[str, Any]) -> dict[str, Any]:
        event = msg.get("e")
        if event == _TRADE:
            return self._agg_trade(msg)
        if event is None and "u" in msg and "A" in msg:  # a spot bookTicker, which has no "e"
            return {"e": "bookTicker", "u": _SPREAD * msg["u"], "E": self.now_ms, "T": self.now_ms - _MATCH_LAG_MS,
                    "s": msg["s"], "b": msg["b"], "B": msg["B"], "a": msg["a"], "A": msg["A"]}
        if event != _DEPTH_UPDATE:
            return msg  # anything else as the wrapped feed spells it
        event_ms = msg["E"]
        self.now_ms = max(self.now_ms, event_ms)
        # U - 1 is the previous diff's u, or the u of the diffs the generator lost in between.
        return {"e": "depthUpdate", "E": event_ms, "T": event_ms - _MATCH_LAG_MS, "s": msg["s"],
                "U": _SPREAD * msg["U"] - _INSIDE, "u": _SPREAD * msg["u"], "pu": _SPREAD * (msg["U"] - 1),
                "b": msg["b"], "a": msg["a"]}

    def _agg_trade(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A generated trade as an aggTrade of 1..3 fills (``f..l``), deterministic in its trade id."""
        symbol, trade_id = msg["s"], msg["t"]
        first = self._next_fill.get(symbol, _FILLS_PER_TRADE_ID * trade_id)
        last = first + trade_id % _MAX_FILLS
        self._next_fill[symbol] = last + 1
        return {"e": "aggTrade", "E": msg["E"], "s": symbol, "a": trade_id, "p": msg["p"], "q": msg["q"],
                "f": first, "l": last, "T": msg["T"], "m": msg["m"]}

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        spot = self.feed.snapshot(symbol, limit)
        return {"lastUpdateId": _SPREAD * spot["lastUpdateId"] + _INSIDE, "E": self.now_ms,
                "T": self.now_ms - _MATCH_LAG_MS, "bids": spot["bids"], "asks": spot["asks"]}

    def spec(self, symbol: str) -> SymbolSpec:
        return self.feed.spec(symbol)


def futures_depth(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A depth answer in ``/fapi/v1/depth``'s key order: ``lastUpdateId, E, T, bids, asks``."""
    return {"lastUpdateId": snapshot["lastUpdateId"], "E": snapshot.get("E", 0), "T": snapshot.get("T", 0),
            "bids": snapshot["bids"], "asks": snapshot["asks"]}


def _precision(value: int) -> int:
    """Decimals of a value at 8 decimals once its trailing zeros go (``10**6`` -> 2: ``0.01``)."""
    digits = _DECIMALS
    while digits and value % 10 == 0:
        value //= 10
        digits -= 1
    return digits


def _symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    base, quote = split_symbol(spec.symbol)
    step = spec.qty_step * 10 ** (_DECIMALS - spec.qty_exp)
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": _PERPETUAL_DELIVERY_MS,
        "onboardDate": _ONBOARD_MS,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": _precision(spec.tick),
        "quantityPrecision": _precision(step),
        "baseAssetPrecision": _DECIMALS,
        "quotePrecision": _DECIMALS,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": format_decimal(spec.tick, _DECIMALS),
             "maxPrice": format_decimal(10**6 * 10**_DECIMALS, _DECIMALS),
             "tickSize": format_decimal(spec.tick, _DECIMALS)},
            {"filterType": "LOT_SIZE", "minQty": format_decimal(step, _DECIMALS),
             "maxQty": format_decimal(10**6 * 10**_DECIMALS, _DECIMALS), "stepSize": format_decimal(step, _DECIMALS)},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                       "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def futures_exchange_info(specs: list[SymbolSpec], server_time_ms: int, weight_limit: int) -> dict[str, Any]:
    """The ``GET /fapi/v1/exchangeInfo`` body for ``specs``."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
        ],
        "exchangeFilters": [],
        "assets": [],
        "symbols": [_symbol_info(spec) for spec in specs],
    }


def register(app: web.Application, ex: LocalExchange) -> None:
    """Add the futures REST routes and stream paths of ``ex`` to ``app``."""

    async def ping(request: web.Request) -> web.Response:
        verdict = ex._weigh(request, _PING_WEIGHT)
        return ex._answer(verdict, {}) if verdict.admitted else ex._refusal(verdict)

    async def server_time(request: web.Request) -> web.Response:
        verdict = ex._weigh(request, _TIME_WEIGHT)
        return ex._answer(verdict, {"serverTime": ex._now_ms()}) if verdict.admitted else ex._refusal(verdict)

    async def exchange_info(request: web.Request) -> web.Response:
        verdict = ex._weigh(request, _INFO_WEIGHT)
        if not verdict.admitted:
            return ex._refusal(verdict)
        specs = [ex.feed.spec(s) for s in ex.symbols]
        return ex._answer(verdict, futures_exchange_info(specs, ex._now_ms(), ex.limiter.limit))

    async def depth(request: web.Request) -> web.Response:
        raw = request.query.get("limit", str(DEFAULT_DEPTH_LIMIT))
        limit = int(raw) if raw.isdigit() else 0
        verdict = ex._weigh(request, futures_depth_weight(limit if limit in FUTURES_DEPTH_LIMITS
                                                          else DEFAULT_DEPTH_LIMIT))
        if not verdict.admitted:
            return ex._refusal(verdict)
        if limit not in FUTURES_DEPTH_LIMITS:
            return ex._answer(verdict, {"code": _INVALID_PARAMETER,
                                        "msg": "Data sent for parameter 'limit' is not valid."}, 400)
        return await ex.depth_answer(request, verdict, limit, futures_depth)

    app.router.add_get("/fapi/v1/ping", ping)
    app.router.add_get("/fapi/v1/time", server_time)
    app.router.add_get("/fapi/v1/exchangeInfo", exchange_info)
    app.router.add_get("/fapi/v1/depth", depth)
    for prefix in STREAM_PREFIXES:
        app.router.add_get(f"{prefix}/ws", ex._websocket)
        app.router.add_get(f"{prefix}/ws/{{streams:.*}}", ex._websocket)
        app.router.add_get(f"{prefix}/stream", ex._websocket)


class FuturesHistory:
    """Recorded USD-M futures segments (a ``SegmentFeed`` of a futures store) in futures frames:
    ``e,E,T,s,U,u,pu,b,a`` (``T`` is not stored: ``E`` stands in), aggTrades as recorded, bookTickers
    ``e,u,E,T,s,b,B,a,A`` (``T`` = ``E`` likewise) and snapshots with ``E``/``T``."""

    def __init__(self, feed: SegmentFeed) -> None:
        if feed.market is not USDM:
            raise InputError(f"recorded {feed.market} segments cannot be served as USD-M futures; "
                             "serve them with --market spot")
        self.feed = feed
        self.now_ms = 0

    @property
    def symbols(self) -> list[str]:
        return self.feed.symbols

    def step(self) -> list[dict[str, Any]]:
        out = []
        for msg in self.feed.step():
            if msg.get("e") == "bookTicker":
                out.append({"e": "bookTicker", "u": msg["u"], "E": msg["E"], "T": msg["E"], "s": msg["s"],
                            "b": msg["b"], "B": msg["B"], "a": msg["a"], "A": msg["A"]})
                continue
            if msg.get("e") != _DEPTH_UPDATE:
                out.append(msg)  # aggTrades as recorded
                continue
            self.now_ms = max(self.now_ms, msg["E"])
            out.append({"e": "depthUpdate", "E": msg["E"], "T": msg["E"], "s": msg["s"], "U": msg["U"],
                        "u": msg["u"], "pu": msg["pu"], "b": msg["b"], "a": msg["a"]})
        return out

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        return {**self.feed.snapshot(symbol, limit), "E": self.now_ms, "T": self.now_ms}

    def spec(self, symbol: str) -> SymbolSpec:
        return self.feed.spec(symbol)


def futures_feed(feed: Feed) -> Feed:
    """``feed`` as served by a futures exchange: a generated market becomes a ``FuturesFeed``, recorded
    futures segments (``SegmentFeed`` of a ``market=usdm`` store) a ``FuturesHistory``."""
    if isinstance(feed, SegmentFeed):
        return FuturesHistory(feed)
    return FuturesFeed(feed)
