"""The local exchange through the real python-binance AsyncClient and BinanceSocketManager."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from acts.exchange.client import local_client, local_socket_manager
from acts.exchange.server import LocalExchange
from tests.exchange.conftest import SYMBOLS, breaks


@pytest.fixture
async def client(ex: LocalExchange) -> AsyncIterator[AsyncClient]:
    client = await local_client(ex.rest_url, requests_params={"timeout": 5})
    try:
        yield client
    finally:
        await client.close_connection()


async def _recv(socket: Any, count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(socket.recv(), 5) for _ in range(count)]


async def test_create_pings_and_reads_the_server_time(client: AsyncClient, ex: LocalExchange) -> None:
    assert client.API_URL == ex.rest_url == f"http://127.0.0.1:{ex.port}/api"
    assert ex.stream_url == f"ws://127.0.0.1:{ex.port}/"
    assert await client.ping() == {}
    server_time = (await client.get_server_time())["serverTime"]
    assert abs(server_time - time.time() * 1000) < 5_000
    assert abs(client.timestamp_offset) < 5_000  # create() measured it against the local exchange


async def test_exchange_info_is_binance_shaped(client: AsyncClient) -> None:
    info = await client.get_exchange_info()
    assert [s["symbol"] for s in info["symbols"]] == SYMBOLS
    assert info["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                                     "limit": 6000}
    btc = await client.get_symbol_info("BTCUSDT")
    assert btc is not None
    assert (btc["status"], btc["baseAsset"], btc["quoteAsset"]) == ("TRADING", "BTC", "USDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"


async def test_order_book_answers_from_the_current_book(client: AsyncClient, ex: LocalExchange) -> None:
    book = await client.get_order_book(symbol="BTCUSDT", limit=5)
    assert len(book["bids"]) == len(book["asks"]) == 5
    prices = [float(p) for p, _ in book["bids"]]
    assert prices == sorted(prices, reverse=True) and float(book["asks"][0][0]) > prices[0]
    assert client.response is not None and client.response.headers["X-MBX-USED-WEIGHT-1M"]
    first, steps = book["lastUpdateId"], ex.steps
    for _ in range(1000):  # bounded poll, not a timed wait: until the market has taken two more steps
        if ex.steps >= steps + 2:
            break
        await asyncio.sleep(0.005)
    assert (await client.get_order_book(symbol="BTCUSDT"))["lastUpdateId"] > first  # the market moves
    assert len((await client.get_order_book(symbol="BTCUSDT"))["bids"]) == 100  # the default limit


async def test_unknown_symbol_is_binance_error_1121(client: AsyncClient) -> None:
    with pytest.raises(BinanceAPIException) as info:
        await client.get_order_book(symbol="NOPEUSDT")
    assert (info.value.status_code, info.value.code, info.value.message) == (400, -1121, "Invalid symbol.")


async def test_multiplex_socket_gets_combined_messages_with_chained_ids(client: AsyncClient,
                                                                       ex: LocalExchange) -> None:
    manager = local_socket_manager(client, ex.stream_url)
    names = [f"{s.lower()}@depth@100ms" for s in SYMBOLS]
    async with manager.multiplex_socket(names) as socket:
        messages = await _recv(socket, 40)
    assert {m["stream"] for m in messages} == set(names)
    for symbol, name in zip(SYMBOLS, names, strict=True):
        diffs = [m["data"] for m in messages if m["stream"] == name]
        assert len(diffs) >= 10 and all(d["e"] == "depthUpdate" and d["s"] == symbol for d in diffs)
        assert breaks(diffs) == []
        assert all(d["U"] <= d["u"] for d in diffs)


async def test_depth_socket_gets_raw_messages(client: AsyncClient, ex: LocalExchange) -> None:
    manager = local_socket_manager(client, ex.stream_url)
    async with manager.depth_socket("ETHUSDT", interval=100) as socket:
        messages = await _recv(socket, 10)
    assert all(m["e"] == "depthUpdate" and m["s"] == "ETHUSDT" for m in messages)
    assert breaks(messages) == []


async def test_snapshot_lines_up_with_the_diff_stream(client: AsyncClient, ex: LocalExchange) -> None:
    """Binance's sync recipe works: some diff has U <= lastUpdateId + 1 <= u."""
    manager = local_socket_manager(client, ex.stream_url)
    async with manager.depth_socket("BTCUSDT", interval=100) as socket:
        first = await _recv(socket, 1)
        book = await client.get_order_book(symbol="BTCUSDT", limit=1000)
        later = first + await _recv(socket, 60)
    last = book["lastUpdateId"]
    assert later[0]["U"] <= last + 1
    assert any(d["U"] <= last + 1 <= d["u"] for d in later)
