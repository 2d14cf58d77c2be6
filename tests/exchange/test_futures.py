"""The local exchange as Binance USD-M futures: ``/fapi/v1`` REST, futures weights and the ``pu`` chain,
through raw HTTP/websockets and through python-binance's futures methods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from acts.core.events import DepthUpdate, Snapshot, decode_message
from acts.core.markets import Market
from acts.core.weights import depth_weight, futures_depth_weight
from acts.exchange.client import local_client, local_socket_manager
from acts.exchange.futures import FuturesFeed
from acts.exchange.server import LocalExchange
from tests.exchange.conftest import SPEED, SYMBOLS, make_feed, payloads, read_frames

DIFF_KEYS = ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]


@pytest.fixture
async def fex() -> AsyncIterator[LocalExchange]:
    async with LocalExchange(FuturesFeed(make_feed()), speed=SPEED, market=Market.USDM) as exchange:
        yield exchange


@pytest.fixture
async def fclient(fex: LocalExchange) -> AsyncIterator[AsyncClient]:
    client = await local_client(fex.rest_url, market=Market.USDM, requests_params={"timeout": 5})
    try:
        yield client
    finally:
        await client.close_connection()


def pu_breaks(diffs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(previous u, pu) wherever a futures diff does not follow the one before it."""
    return [(a["u"], b["pu"]) for a, b in zip(diffs, diffs[1:], strict=False) if b["pu"] != a["u"]]


def test_futures_depth_weights() -> None:
    assert [futures_depth_weight(n) for n in (5, 10, 20, 50, 100, 500, 1000)] == [2, 2, 2, 2, 5, 10, 20]
    assert depth_weight(1000, Market.USDM) == 20 and depth_weight(1000) == depth_weight(1000, Market.SPOT) == 50


def test_feed_chains_by_pu_not_by_u() -> None:
    feed = FuturesFeed(make_feed())
    diffs = [m for _ in range(50) for m in feed.step() if m["s"] == "BTCUSDT" and m.get("e") == "depthUpdate"]
    assert all(list(d) == DIFF_KEYS and d["T"] < d["E"] for d in diffs)
    assert pu_breaks(diffs) == []
    assert all(b["U"] != a["u"] + 1 for a, b in zip(diffs, diffs[1:], strict=False))  # spot's rule does not hold
    snap = feed.snapshot("BTCUSDT", 5)
    assert list(snap) == ["lastUpdateId", "E", "T", "bids", "asks"]
    assert diffs[-1]["u"] < snap["lastUpdateId"]  # the last diff sent is dropped; the next one bridges:
    (after,) = [m for m in feed.step() if m["s"] == "BTCUSDT" and m.get("e") == "depthUpdate"]
    assert after["U"] <= snap["lastUpdateId"] <= after["u"] and after["pu"] == diffs[-1]["u"]
    event = decode_message(diffs[-1], -1)
    assert isinstance(event, DepthUpdate) and event.prev_final_update_id == diffs[-2]["u"]
    assert isinstance(decode_message(snap, -1, "BTCUSDT"), Snapshot)


def test_trades_become_agg_trades_and_tickers_futures_tickers() -> None:
    """The generator's spot trade is sent as an aggTrade (``a`` = its id, fills ``f..l`` continuing the previous
    aggTrade's ``l``), its spot ticker as a futures one (``e``, ``E``/``T`` of the step, ``u`` = 4 x the diff's)."""
    trade = {"e": "trade", "E": 1_700_000_000_100, "s": "BTCUSDT", "t": 7, "p": "1.00", "q": "2.00",
             "T": 1_700_000_000_050, "m": True, "M": True}

    class Mixed:
        symbols = ["BTCUSDT"]

        def step(self) -> list[dict[str, Any]]:
            diff = {"e": "depthUpdate", "E": 1_700_000_000_100, "s": "BTCUSDT", "U": 10, "u": 12, "b": [], "a": []}
            ticker = {"u": 12, "s": "BTCUSDT", "b": "1.00", "B": "3.00", "a": "1.01", "A": "4.00"}
            return [diff, trade, {**trade, "t": 8}, ticker, {"e": "other", "s": "BTCUSDT"}]

    _, first, second, ticker, other = FuturesFeed(Mixed()).step()  # type: ignore[arg-type]
    assert list(first) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]
    assert first == {"e": "aggTrade", "E": trade["E"], "s": "BTCUSDT", "a": 7, "p": "1.00", "q": "2.00",
                     "f": 21, "l": 22, "T": trade["T"], "m": True}
    assert (second["a"], second["f"], second["l"]) == (8, 23, 25)
    assert ticker == {"e": "bookTicker", "u": 48, "E": 1_700_000_000_100, "T": 1_700_000_000_098, "s": "BTCUSDT",
                      "b": "1.00", "B": "3.00", "a": "1.01", "A": "4.00"}
    assert other == {"e": "other", "s": "BTCUSDT"}  # anything else passes through


def test_generator_gaps_break_the_pu_chain() -> None:
    from acts.exchange.feed import GeneratorFeed

    feed = FuturesFeed(GeneratorFeed(["BTCUSDT"], seed=3, gap_rate=0.2))
    diffs = [m for _ in range(100) for m in feed.step() if m.get("e") == "depthUpdate"]
    assert pu_breaks(diffs)  # ids lost upstream: pu names a diff that was never sent


async def test_rest_endpoints_are_futures_shaped(fex: LocalExchange, http: aiohttp.ClientSession) -> None:
    assert fex.rest_url.endswith("/fapi")
    async with http.get(f"{fex.rest_url}/v1/ping") as r:
        assert r.status == 200 and await r.json() == {}
    async with http.get(f"{fex.rest_url}/v1/time") as r:
        assert set(await r.json()) == {"serverTime"}
    async with http.get(f"{fex.rest_url}/v1/exchangeInfo") as r:
        info = await r.json()
    assert info["futuresType"] == "U_MARGINED" and [s["symbol"] for s in info["symbols"]] == SYMBOLS
    assert info["rateLimits"][0]["limit"] == 2400
    btc = info["symbols"][0]
    assert (btc["contractType"], btc["marginAsset"], btc["pricePrecision"]) == ("PERPETUAL", "USDT", 2)
    async with http.get(f"{fex.rest_url}/v1/depth", params={"symbol": "BTCUSDT"}) as r:
        body = await r.json()
        used = int(r.headers["X-MBX-USED-WEIGHT-1M"])
    assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"] and len(body["bids"]) > 100  # default 500
    async with http.get(f"{fex.rest_url}/v1/depth", params={"symbol": "BTCUSDT", "limit": "1000"}) as r:
        assert r.status == 200 and int(r.headers["X-MBX-USED-WEIGHT-1M"]) == used + 20
    async with http.get(f"{fex.rest_url}/v1/depth", params={"symbol": "BTCUSDT", "limit": "7"}) as r:
        assert r.status == 400 and (await r.json())["code"] == -1130
    async with http.get(f"{fex.rest_url}/v1/depth", params={"symbol": "NOPEUSDT", "limit": "5"}) as r:
        assert r.status == 400 and await r.json() == {"code": -1121, "msg": "Invalid symbol."}
    async with http.get(f"{fex.rest_url.removesuffix('/fapi')}/api/v3/depth", params={"symbol": "BTCUSDT"}) as r:
        assert r.status == 404  # a futures exchange is not a spot one


@pytest.mark.parametrize("path", ["stream", "public/stream"])
async def test_stream_frames_chain_by_pu(fex: LocalExchange, http: aiohttp.ClientSession, path: str) -> None:
    url = f"{fex.stream_url}{path}?streams=btcusdt@depth@100ms"
    async with http.ws_connect(url) as ws:
        frames = await read_frames(ws, 30)
    assert all(f["stream"] == "btcusdt@depth@100ms" for f in frames)
    diffs = payloads(frames, "BTCUSDT")
    assert len(diffs) == 30 and all(list(d) == DIFF_KEYS for d in diffs) and pu_breaks(diffs) == []


async def test_skip_fault_breaks_the_pu_chain(fex: LocalExchange, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{fex.stream_url}public/ws/btcusdt@depth@100ms") as ws:
        before = payloads(await read_frames(ws, 3), "BTCUSDT")  # the break may come right after these
        fex.inject("skip:BTCUSDT:2")
        diffs = before + payloads(await read_frames(ws, 200, timeout=8), "BTCUSDT")  # past frames queued before
    assert len(pu_breaks(diffs)) == 1


async def test_restart_fault_breaks_the_chain_once(fex: LocalExchange, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{fex.stream_url}ws/btcusdt@depth@100ms") as ws:
        before = payloads(await read_frames(ws, 3), "BTCUSDT")  # the break may come right after these
        fex.inject("restart:-5000")
        diffs = before + payloads(await read_frames(ws, 200, timeout=8), "BTCUSDT")  # past frames queued before
    assert len(pu_breaks(diffs)) == 1  # the jump, then a chain on the new numbering


async def test_python_binance_futures_methods(fex: LocalExchange, fclient: AsyncClient) -> None:
    assert await fclient.futures_ping() == {}
    info = await fclient.futures_exchange_info()
    assert [s["symbol"] for s in info["symbols"]] == SYMBOLS
    book = await fclient.futures_order_book(symbol="ETHUSDT", limit=5)
    assert len(book["bids"]) == len(book["asks"]) == 5
    with pytest.raises(BinanceAPIException) as refused:
        await fclient.futures_order_book(symbol="NOPEUSDT")
    assert refused.value.code == -1121
    manager = local_socket_manager(fclient, fex.stream_url)
    names = [f"{s.lower()}@depth@100ms" for s in SYMBOLS]
    async with manager.futures_multiplex_socket(names, category="public") as socket:
        messages = [await asyncio.wait_for(socket.recv(), 5) for _ in range(40)]
    for symbol in SYMBOLS:
        diffs = [m["data"] for m in messages if m["data"]["s"] == symbol]
        assert diffs and pu_breaks(diffs) == []
