"""USD-M futures trades and bookTickers on the local exchange: ``<symbol>@aggTrade`` (USD-M has no ``@trade``) and
``<symbol>@bookTicker`` in Binance's futures shape, raw, combined and by SUBSCRIBE, with spot's faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from acts.core.errors import InputError
from acts.core.events import BookTicker, Trade, decode_message, to_wire
from acts.core.markets import Market
from acts.core.symbols import StreamKind, parse_streams, stream_name
from acts.exchange.faults import Faults
from acts.exchange.futures import FuturesFeed
from acts.exchange.server import LocalExchange
from acts.exchange.wire import Stream, message_kind, parse_stream
from tests.exchange.conftest import SPEED, SYMBOLS, make_feed, read_frames

AGG_KEYS = ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]
TICKER_KEYS = ["e", "u", "E", "T", "s", "b", "B", "a", "A"]


@pytest.fixture
async def fex() -> AsyncIterator[LocalExchange]:
    async with LocalExchange(FuturesFeed(make_feed()), speed=SPEED, market=Market.USDM) as exchange:
        yield exchange


def _data(frames: list[Any]) -> list[dict[str, Any]]:
    return [f.get("data", f) for f in frames if isinstance(f, dict) and "s" in f.get("data", f)]


def _check_agg_trades(trades: list[dict[str, Any]]) -> None:
    """Binance's keys, consecutive aggregate ids, fills ``f..l`` that continue each other; decoded and back."""
    assert trades and all(list(t) == AGG_KEYS for t in trades)
    assert [t["a"] for t in trades] == list(range(trades[0]["a"], trades[0]["a"] + len(trades)))
    assert all(b["f"] == a["l"] + 1 for a, b in zip(trades, trades[1:], strict=False))
    assert all(t["f"] <= t["l"] and t["T"] <= t["E"] for t in trades)
    for t in trades:
        event = decode_message(t, -1)
        assert isinstance(event, Trade) and event.aggregate and to_wire(event) == t


def test_stream_names_follow_the_market() -> None:
    assert stream_name(StreamKind.TRADE, "BTCUSDT", Market.USDM) == "btcusdt@aggTrade"
    assert stream_name(StreamKind.TRADE, "BTCUSDT") == "btcusdt@trade"
    assert stream_name(StreamKind.BOOK_TICKER, "BTCUSDT", Market.USDM) == "btcusdt@bookTicker"
    assert parse_stream("BTCUSDT@AGGTRADE", ["BTCUSDT"], Market.USDM) == Stream("BTCUSDT", "btcusdt@aggTrade",
                                                                                 StreamKind.TRADE)
    assert parse_stream("btcusdt@trade", ["BTCUSDT"], Market.USDM) is None  # USD-M has no @trade
    assert parse_stream("btcusdt@aggTrade", ["BTCUSDT"]) is None  # spot's aggTrade is not served
    assert message_kind({"e": "aggTrade"}) is StreamKind.TRADE
    # ``--streams`` has one name for the market's trade stream; aggTrade says which one that is.
    with pytest.raises(InputError, match="'aggTrade' is named trade here; with --market usdm it subscribes"):
        parse_streams("depth,aggTrade")


@pytest.mark.parametrize("path", ["stream", "public/stream"])
async def test_combined_agg_trade_and_ticker_streams(fex: LocalExchange, http: aiohttp.ClientSession,
                                                     path: str) -> None:
    names = ["btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@depth@100ms"]
    async with http.ws_connect(f"{fex.stream_url}{path}?streams={'/'.join(names)}") as ws:
        frames = await read_frames(ws, 150)
    assert {f["stream"] for f in frames} == set(names)
    by_stream: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    last_u = None
    for frame in frames:
        data = frame["data"]
        by_stream[frame["stream"]].append(data)
        if data["e"] == "depthUpdate":
            last_u = data["u"]
        elif data["e"] == "bookTicker" and last_u is not None:
            assert data["u"] == last_u  # on the diffs' numbering: the book after that diff
    _check_agg_trades(by_stream["btcusdt@aggTrade"])
    tickers = by_stream["btcusdt@bookTicker"]
    assert tickers and all(list(t) == TICKER_KEYS and t["T"] < t["E"] for t in tickers)
    for ticker in tickers:
        event = decode_message(ticker, -1)
        assert isinstance(event, BookTicker) and event.event_time_ms == ticker["E"]


async def test_raw_agg_trade_stream_and_subscribe(fex: LocalExchange, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{fex.stream_url}public/ws/ethusdt@aggTrade") as ws:
        raw = await read_frames(ws, 20)
        assert all(f["s"] == "ETHUSDT" for f in raw)
        _check_agg_trades(raw)
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 3}))
        refused = await read_frames(ws, 1000, until=lambda f: f.get("id") == 3)
        assert "<symbol>@aggTrade" in refused[-1]["error"]["msg"]  # the error names what is served instead
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 4}))
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 5}))
        listed = await read_frames(ws, 1000, until=lambda f: f.get("id") == 5)
        assert sorted(listed[-1]["result"]) == ["btcusdt@aggTrade", "ethusdt@aggTrade"]
        later = _data(await read_frames(ws, 60))
    assert later and all(m["e"] == "aggTrade" for m in later) and {m["s"] for m in later} <= set(SYMBOLS)


def _futures_steps(faults: Faults | None, steps: int) -> list[dict[str, Any]]:
    feed = FuturesFeed(make_feed())
    return [m for step in range(steps) for m in (feed.step() if faults is None
                                                 else faults.plan(feed.step(), step / 10).messages)]


def test_skip_trades_makes_one_aggregate_id_gap() -> None:
    faults = Faults(SYMBOLS)
    faults.inject("skip_trades@1:BTCUSDT:3", 0.0)
    sent = [m for m in _futures_steps(faults, 100) if m["s"] == "BTCUSDT" and m["e"] == "aggTrade"]
    reference = [m for m in _futures_steps(None, 100) if m["s"] == "BTCUSDT" and m["e"] == "aggTrade"]
    ids = [t["a"] for t in sent]
    ((before, after),) = [(a, b) for a, b in zip(ids, ids[1:], strict=False) if b != a + 1]
    assert after == before + 4 and len(sent) == len(reference) - 3


def test_bad_ticker_doubles_one_futures_bid_quantity() -> None:
    faults = Faults(SYMBOLS)
    faults.inject("bad_ticker:ETHUSDT", 0.0)
    changed = [(a, b) for a, b in zip(_futures_steps(faults, 50), _futures_steps(None, 50), strict=True) if a != b]
    ((bad, good),) = changed
    assert bad["e"] == "bookTicker" and bad["s"] == "ETHUSDT" and list(bad) == TICKER_KEYS
    assert Decimal(bad["B"]) == 2 * Decimal(good["B"]) and {**bad, "B": good["B"]} == good


async def test_python_binance_futures_socket_carries_agg_trades_and_tickers(fex: LocalExchange) -> None:
    import asyncio

    from acts.exchange.client import local_client, local_socket_manager

    client = await local_client(fex.rest_url, market=Market.USDM, requests_params={"timeout": 5})
    try:
        manager = local_socket_manager(client, fex.stream_url)
        names = [stream_name(kind, "ETHUSDT", Market.USDM) for kind in StreamKind]
        async with manager.futures_multiplex_socket(names, category="public") as socket:
            messages = [await asyncio.wait_for(socket.recv(), 5) for _ in range(80)]
    finally:
        await client.close_connection()
    assert {m["stream"] for m in messages} == {"ethusdt@depth@100ms", "ethusdt@aggTrade", "ethusdt@bookTicker"}
    _check_agg_trades([m["data"] for m in messages if m["stream"] == "ethusdt@aggTrade"])


def test_recorded_futures_trades_and_tickers_are_served_in_futures_shape(tmp_path: Any) -> None:
    """``acts exchange --market usdm --history``: aggTrades as recorded, tickers with ``T`` (= ``E``, not stored)."""
    from acts.exchange.feed import SegmentFeed
    from acts.exchange.futures import FuturesHistory
    from acts.recorder.importer import import_jsonl
    from acts.storage.store import SegmentStore
    from tests.recorder.test_import_futures_streams import _capture

    sent = _capture(tmp_path / "capture.txt")
    import_jsonl([tmp_path / "capture.txt"], tmp_path / "data", market=Market.USDM)
    feed = FuturesHistory(SegmentFeed(SegmentStore(tmp_path / "data", market=Market.USDM)))
    served = [m for _ in range(30) for m in feed.step()]
    assert [m for m in served if m["e"] == "aggTrade"] == sent[1:]  # the first came before any diff: not served
    tickers = [m for m in served if m["e"] == "bookTicker"]
    assert len(tickers) == 20 and all(list(t) == TICKER_KEYS and t["T"] == t["E"] for t in tickers)
