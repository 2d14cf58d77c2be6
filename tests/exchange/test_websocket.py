"""Websocket behaviour: stream names, errors, live subscriptions, pings, maximum age, pacing."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable

import aiohttp
import pytest

from acts.core.symbols import StreamKind
from acts.exchange.server import LocalExchange
from acts.exchange.wire import Stream, parse_stream
from tests.exchange.conftest import SPEED, SYMBOLS, FakeClock, breaks, make_feed, payloads, read_frames


@pytest.mark.parametrize(("name", "expected"), [
    ("btcusdt@depth@100ms", Stream("BTCUSDT", "btcusdt@depth@100ms")),
    ("ethusdt@depth", Stream("ETHUSDT", "ethusdt@depth")),
    ("BTCUSDT@depth@100ms", Stream("BTCUSDT", "btcusdt@depth@100ms")),
    ("btcusdt@trade", Stream("BTCUSDT", "btcusdt@trade", StreamKind.TRADE)),
    ("ETHUSDT@BOOKTICKER", Stream("ETHUSDT", "ethusdt@bookTicker", StreamKind.BOOK_TICKER)),
    ("btcusdt@aggTrade", None),
    ("btcusdt@bookTicker@100ms", None),
    ("btcusdt@depth@1000ms", None),
    ("xrpusdt@depth", None),
    ("", None),
])
def test_stream_names(name: str, expected: Stream | None) -> None:
    assert parse_stream(name, SYMBOLS) == expected


async def test_raw_stream_of_several_symbols_and_the_depth_alias(http: aiohttp.ClientSession,
                                                                 ex: LocalExchange) -> None:
    async with http.ws_connect(f"{ex.stream_url}ws/btcusdt@depth/ethusdt@depth@100ms") as ws:
        frames = await read_frames(ws, 20)
    assert all("stream" not in f for f in frames)  # raw: unwrapped
    assert {f["s"] for f in frames} == set(SYMBOLS)
    async with http.ws_connect(f"{ex.stream_url}stream?streams=btcusdt@depth") as ws:
        frames = await read_frames(ws, 5)
    assert {f["stream"] for f in frames} == {"btcusdt@depth"}  # the name as subscribed


@pytest.mark.parametrize("path", ["ws/btcusdt@kline_1m", "stream?streams=btcusdt@depth@100ms/dogeusdt@depth"])
async def test_unknown_stream_is_an_error_then_a_close(http: aiohttp.ClientSession, ex: LocalExchange,
                                                       path: str) -> None:
    async with http.ws_connect(ex.stream_url + path) as ws:
        (error,) = await read_frames(ws, 2)
        msg = await asyncio.wait_for(ws.receive(), 5)
    assert error["error"]["code"] == 2 and "Invalid request: unknown stream" in error["error"]["msg"]
    assert msg.type is aiohttp.WSMsgType.CLOSED and ws.close_code == 1008


async def test_live_subscriptions(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    async with http.ws_connect(f"{ex.stream_url}ws") as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@depth@100ms"], "id": 1}))
        frames = await read_frames(ws, 10)
        assert frames[0] == {"result": None, "id": 1}
        assert {f["s"] for f in frames[1:]} == {"ETHUSDT"}
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["nope@depth"], "id": 2}))
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["ethusdt@depth@100ms"], "id": 4}))
        await ws.send_str("{not json")
        frames = await read_frames(ws, 500, timeout=1.0, until=lambda f: f.get("error", {}).get("code") == 3)
        replies = [f for f in frames if "e" not in f]
        assert replies[0]["id"] == 2 and replies[0]["error"]["code"] == 2
        assert replies[1:3] == [{"result": ["ethusdt@depth@100ms"], "id": 3}, {"result": None, "id": 4}]
        assert replies[3]["error"]["code"] == 3
        assert await read_frames(ws, 1, timeout=0.2) == []  # unsubscribed from everything


async def test_server_pings_and_clients_that_answer_stay(http: aiohttp.ClientSession) -> None:
    async with LocalExchange(make_feed(), speed=SPEED, ping_interval_s=0.05, pong_timeout_s=0.3) as ex:
        url = f"{ex.stream_url}ws/btcusdt@depth@100ms"
        async with http.ws_connect(url, autoping=False) as silent, http.ws_connect(url) as polite:
            pings = 0
            for _ in range(10_000):  # a bound on messages, not on time; it never answers
                if silent.closed:
                    break
                msg = await asyncio.wait_for(silent.receive(), 3.0)
                pings += msg.type is aiohttp.WSMsgType.PING
            assert pings >= 2 and silent.close_code == 1008  # closed for not answering
            assert len(await read_frames(polite, 5)) == 5 and not polite.closed  # aiohttp answers pings


async def test_connection_closes_at_its_maximum_age(http: aiohttp.ClientSession, clock: FakeClock) -> None:
    # Connection ages are read from the injected clock: the cut comes when the clock says so, not after a real second.
    async with LocalExchange(make_feed(), speed=SPEED, clock=clock, max_connection_s=60.0) as ex:
        async with http.ws_connect(f"{ex.stream_url}stream?streams=btcusdt@depth@100ms") as ws:
            frames = await read_frames(ws, 10)
            clock.advance(59.5)  # half a second short of the maximum age: steps go on, nothing is said
            frames += await read_frames(ws, 10)
            assert len(frames) == 20 and all(f["data"]["e"] == "depthUpdate" for f in frames) and not ws.closed
            clock.advance(0.5)  # exactly the maximum age: the next step notifies and closes
            frames += await read_frames(ws, 100_000, timeout=5.0)  # bound only: stops at the close
    assert [f for f in frames if "data" not in f] == [{"e": "serverShutdown", "E": clock.time_ns() // 1_000_000}]
    assert frames[-1]["e"] == "serverShutdown"  # the notice is the last frame before the close
    assert breaks(payloads(frames, "BTCUSDT")) == [] and ws.close_code == 1001


async def test_maximum_age_follows_the_injected_clock(http: aiohttp.ClientSession, clock: FakeClock) -> None:
    async with LocalExchange(make_feed(), speed=SPEED, clock=clock, shutdown_notice_s=600) as ex:
        async with http.ws_connect(f"{ex.stream_url}ws/ethusdt@depth@100ms") as ws:
            await read_frames(ws, 5)
            clock.advance(86_400 - 600)  # 10 minutes before the 24 h cut: the notice
            frames = await read_frames(ws, 10_000, until=lambda f: f.get("e") == "serverShutdown")
            notice = [f for f in frames if f.get("e") == "serverShutdown"]
            assert notice == [{"e": "serverShutdown", "E": clock.time_ns() // 1_000_000}] and not ws.closed
            clock.advance(600)
            await read_frames(ws, 100_000, timeout=5.0)
            assert ws.close_code == 1001


async def _until(done: Callable[[], bool], what: str, polls: int = 1000) -> None:
    """Let the loop run until ``done()``; bounded by a count of polls, never asserted on time."""
    for _ in range(polls):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached: {what}")


async def test_the_market_moves_without_subscribers_faster_at_a_higher_speed() -> None:
    # Both markets pace on the same event loop, so however loaded the machine, the one ten times as fast
    # is ahead when the slow one has taken a few steps. No step count is tied to seconds elapsed.
    async with LocalExchange(make_feed(), speed=50) as fast, LocalExchange(make_feed(), speed=5) as slow:
        await _until(lambda: slow.steps >= 5, "five steps of the slow market")
        steps = fast.steps, slow.steps
        assert fast.connections == slow.connections == 0
    assert steps[0] > steps[1]


@pytest.mark.slow
async def test_a_client_that_stops_reading_is_cut_off() -> None:
    # No lead limit: this is about a full send queue, which real-time pacing would take too long to fill.
    async with LocalExchange(make_feed(), speed=200, send_queue=20, max_lead_s=None) as ex:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
            sock.settimeout(5)
            sock.connect(("127.0.0.1", ex.port))
            sock.sendall(b"GET /ws/btcusdt@depth@100ms HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")
            await _until(lambda: ex.connections == 1, "the upgrade")
            await _until(lambda: ex.connections == 0, "the cut (it never reads: the send queue fills up)")
