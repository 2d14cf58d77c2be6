"""REST answers and errors, Binance-shaped."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from acts.exchange.generator import spec_for
from acts.exchange.server import LocalExchange
from acts.exchange.wire import exchange_info, symbol_info
from tests.exchange.conftest import SYMBOLS, make_feed


async def _get(http: aiohttp.ClientSession, ex: LocalExchange, path: str) -> tuple[int, Any]:
    async with http.get(f"{ex.rest_url}/v3/{path}") as resp:
        assert "X-MBX-USED-WEIGHT-1M" in resp.headers
        return resp.status, await resp.json()


@pytest.mark.parametrize(("query", "symbols"), [
    ("", SYMBOLS),
    ("?symbol=ETHUSDT", ["ETHUSDT"]),
    ("?symbols=" + quote(json.dumps(["ETHUSDT", "BTCUSDT"])), ["ETHUSDT", "BTCUSDT"]),
])
async def test_exchange_info_symbols(http: aiohttp.ClientSession, ex: LocalExchange, query: str,
                                     symbols: list[str]) -> None:
    status, body = await _get(http, ex, "exchangeInfo" + query)
    assert status == 200 and [s["symbol"] for s in body["symbols"]] == symbols


@pytest.mark.parametrize(("path", "code"), [
    ("exchangeInfo?symbol=NOPEUSDT", -1121),
    ("exchangeInfo?symbols=" + quote('["BTCUSDT","NOPEUSDT"]'), -1121),
    ("exchangeInfo?symbols=" + quote('["BTCUSDT"'), -1100),
    ("depth?symbol=NOPEUSDT", -1121),
    ("depth", -1102),
    ("depth?symbol=BTCUSDT&limit=abc", -1100),
    ("depth?symbol=BTCUSDT&limit=0", -1100),
])
async def test_errors_are_http_400_with_binance_codes(http: aiohttp.ClientSession, ex: LocalExchange, path: str,
                                                      code: int) -> None:
    status, body = await _get(http, ex, path)
    assert status == 400 and body["code"] == code and body["msg"]


async def test_depth_limits(http: aiohttp.ClientSession) -> None:
    # One feed step per 100 s: the book holds still between the request and the comparison (at
    # full speed the generated book changes size every step).
    async with LocalExchange(make_feed(), speed=0.001) as ex:
        status, body = await _get(http, ex, "depth?symbol=BTCUSDT&limit=9999")  # capped at 5000 as on Binance
        assert status == 200 and body == ex.feed.snapshot("BTCUSDT", 5000)  # the whole generated book
        assert len(body["bids"]) > 100 and len(body["asks"]) > 100  # more than the default limit
        status, body = await _get(http, ex, "depth?symbol=ETHUSDT&limit=7")
        assert set(body) == {"lastUpdateId", "bids", "asks"} and len(body["bids"]) == 7
        assert all(isinstance(p, str) and isinstance(q, str) for p, q in body["bids"] + body["asks"])


def test_filters_are_eight_decimal_strings() -> None:
    shib = symbol_info(spec_for("SHIBUSDT"))
    filters = {f["filterType"]: f for f in shib["filters"]}
    assert (shib["baseAsset"], shib["quoteAsset"]) == ("SHIB", "USDT")
    assert filters["PRICE_FILTER"]["tickSize"] == "0.00000001"
    assert filters["LOT_SIZE"]["stepSize"] == "1.00000000"  # 2-decimal quantities in steps of 100 hundredths
    odd = symbol_info(spec_for("ETHBTC"))
    assert (odd["baseAsset"], odd["quoteAsset"]) == ("ETH", "BTC")
    body = exchange_info([spec_for("BTCUSDT")], 123, 6000)
    assert body["serverTime"] == 123 and body["timezone"] == "UTC"
