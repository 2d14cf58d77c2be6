"""A Binance-compatible market-data server on 127.0.0.1, for tests, demos and bot testing.

REST (``/api/v3/ping``, ``time``, ``exchangeInfo``, ``depth``) with Binance's request weights,
``X-MBX-USED-WEIGHT-1M``, 429 + ``Retry-After`` past the limit and 418 for clients that keep
going; WebSocket diff-depth streams, raw (``/ws/btcusdt@depth@100ms``) and combined
(``/stream?streams=a/b``), with server pings and a maximum connection age after which it sends
``serverShutdown`` and closes (Binance: 24 h). python-binance talks to it after setting
``client.API_URL = ex.rest_url`` and ``socket_manager.STREAM_URL = ex.stream_url``.
Faults are injected through ``ex.faults`` / ``ex.inject(spec)`` (see ``exchange.faults``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import WSCloseCode, web

from acts.clock import Clock, SystemClock
from exchange.faults import Faults, ScheduledFault, parse_fault
from exchange.feed import Feed, GeneratorFeed, SegmentFeed
from recorder.decimals import format_decimal

__all__ = ["LocalExchange", "ExchangeThread", "run_exchange", "depth_weight"]

log = logging.getLogger("acts.exchange")

_STREAM = re.compile(r"([a-z0-9]+)@depth(?:@100ms)?")
WEIGHT_LIMIT = 6000
BAN_S = 120


def depth_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class _Subscriber:
    __slots__ = ("ws", "symbols", "combined", "opened")

    def __init__(self, ws: web.WebSocketResponse, symbols: set[str], combined: bool, opened: float) -> None:
        self.ws = ws
        self.symbols = symbols
        self.combined = combined
        self.opened = opened


class LocalExchange:
    """``async with LocalExchange(feed, speed=20) as ex:`` then point python-binance at ``ex``."""

    def __init__(self, feed: Feed, host: str = "127.0.0.1", port: int = 0, speed: float = 1.0,
                 clock: Clock | None = None, weight_limit: int = WEIGHT_LIMIT,
                 max_connection_s: float = 86_400.0, ping_interval_s: float = 20.0,
                 schedule: Sequence[ScheduledFault] = ()) -> None:
        self.feed = feed
        self.host = host
        self.port = port
        self.speed = speed
        self.clock = clock or SystemClock()
        self.weight_limit = weight_limit
        self.max_connection_s = max_connection_s
        self.ping_interval_s = ping_interval_s
        self.faults = Faults()
        self.schedule = sorted(schedule, key=lambda f: f.at_s)
        self.steps = 0
        self.sent: list[str] = []  # every diff text sent (when ``keep_sent``), for parity tests
        self.keep_sent = False
        self._subscribers: set[_Subscriber] = set()
        self._runner: web.AppRunner | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._weight_minute = -1
        self._weight_used = 0
        self._banned_until = 0.0
        self._held: dict[str, dict[str, Any]] = {}  # reorder: a diff held back one step
        self._stall_until = 0.0
        self._started = 0.0
        self._closing = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> LocalExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/ws/{streams}", self._websocket)
        app.router.add_get("/stream", self._websocket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._started = self.clock.monotonic()
        self._pacer = asyncio.create_task(self._pace())

    async def stop(self) -> None:
        self._closing.set()
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        for sub in list(self._subscribers):
            await sub.ws.close(code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    def inject(self, spec: str) -> None:
        """Apply a fault now, e.g. ``ex.inject("skip:BTCUSDT:3")``."""
        parse_fault(spec).apply(self.faults)

    # --- REST -----------------------------------------------------------------------------

    def _weigh(self, weight: int) -> web.Response | None:
        """Binance-style rate limiting; returns the refusal, or None when the request may go on."""
        now_ms = self.clock.time_ns() // 1_000_000
        minute = now_ms // 60_000
        if minute != self._weight_minute:
            self._weight_minute, self._weight_used = minute, 0
        retry_after = 60 - (now_ms % 60_000) // 1000
        if self.clock.monotonic() < self._banned_until:
            self._banned_until = self.clock.monotonic() + BAN_S  # kept knocking while told to wait
            return self._error(418, -1003, "Way too many requests; IP banned.", {"Retry-After": str(BAN_S)})
        if self._weight_used + weight > self.weight_limit:
            self._banned_until = self.clock.monotonic() + retry_after
            return self._error(429, -1003, "Too many requests.", {"Retry-After": str(retry_after)})
        self._weight_used += weight
        return None

    def _headers(self) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": str(self._weight_used)}

    def _json(self, body: Any) -> web.Response:
        return web.json_response(body, headers=self._headers(), dumps=lambda o: json.dumps(o, separators=(",", ":")))

    def _error(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
        headers = {**self._headers(), **(headers or {})}
        return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)

    async def _ping(self, request: web.Request) -> web.Response:
        return self._weigh(1) or self._json({})

    async def _time(self, request: web.Request) -> web.Response:
        return self._weigh(1) or self._json({"serverTime": self.clock.time_ns() // 1_000_000})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        refused = self._weigh(20)
        if refused:
            return refused
        wanted = [request.query["symbol"]] if "symbol" in request.query else self.feed.symbols
        if "symbols" in request.query:
            wanted = json.loads(request.query["symbols"])
        unknown = [s for s in wanted if s not in self.feed.symbols]
        if unknown:
            return self._error(400, -1121, "Invalid symbol.")
        symbols = []
        for symbol in wanted:
            spec = self.feed.spec(symbol)
            symbols.append({
                "symbol": symbol, "status": "TRADING", "baseAsset": spec.base_asset, "quoteAsset": "USDT",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": format_decimal(spec.tick, 8)},
                    {"filterType": "LOT_SIZE", "stepSize": format_decimal(spec.qty_step * 10 ** (8 - spec.qty_exp), 8)},
                ],
            })
        return self._json({"timezone": "UTC", "serverTime": self.clock.time_ns() // 1_000_000,
                           "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                           "intervalNum": 1, "limit": self.weight_limit}], "symbols": symbols})

    async def _depth(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return self._error(400, -1100, "Illegal characters found in parameter 'limit'.")
        limit = max(1, min(limit, 5000))
        refused = self._weigh(depth_weight(limit))
        if refused:
            return refused
        symbol = request.query.get("symbol", "")
        if symbol not in self.feed.symbols:
            return self._error(400, -1121, "Invalid symbol.")
        if self.faults.rest:
            fault = self.faults.rest.popleft()
            if fault == "timeout":
                # Hang like an overloaded exchange, but let go when the server stops.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), 3600)
            if fault in ("429", "418"):
                return self._error(int(fault), -1003, "Too many requests.", {"Retry-After": "1"})
            return self._error(500, -1000, "An unknown error occurred while processing the request.")
        return self._json(self.feed.snapshot(symbol, limit))

    # --- websocket ------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        combined = request.path == "/stream"
        names = request.query.get("streams", "") if combined else request.match_info["streams"]
        symbols: set[str] = set()
        bad = []
        for name in filter(None, names.split("/")):
            match = _STREAM.fullmatch(name)
            if match and match.group(1).upper() in self.feed.symbols:
                symbols.add(match.group(1).upper())
            else:
                bad.append(name)
        ws = web.WebSocketResponse(heartbeat=self.ping_interval_s, autoping=True)
        await ws.prepare(request)
        if bad or not symbols:
            await ws.send_str(json.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown stream {bad}"}}))
            await ws.close(code=WSCloseCode.POLICY_VIOLATION)
            return ws
        sub = _Subscriber(ws, symbols, combined, self.clock.monotonic())
        self._subscribers.add(sub)
        try:
            async for _ in ws:  # clients send nothing we need; this waits for the close
                pass
        finally:
            self._subscribers.discard(sub)
        return ws

    async def _pace(self) -> None:
        interval = 0.1 / self.speed
        next_at = self.clock.monotonic()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - self.clock.monotonic()))
            self._run_schedule()
            await self._step()

    def _run_schedule(self) -> None:
        elapsed = self.clock.monotonic() - self._started
        while self.schedule and self.schedule[0].at_s <= elapsed:
            fault = self.schedule.pop(0)
            log.warning("injecting fault %s %s", fault.kind, ":".join(fault.args))
            fault.apply(self.faults)

    async def _step(self) -> None:
        faults = self.faults
        if faults.restart:
            delta = faults.restart.pop("*", 0)
            for symbol in self.feed.symbols:
                self.feed.jump_ids(symbol, delta)
        messages = self.feed.step()
        self.steps += 1
        outgoing = []
        for msg in messages:
            symbol = msg["s"]
            if faults.skip.get(symbol):
                faults.skip[symbol] -= 1
                continue
            held = self._held.pop(symbol, None)
            if faults.reorder and held is None:
                self._held[symbol] = msg
                continue
            outgoing.append(msg)
            if held is not None:
                outgoing.append(held)
        if self._held:
            faults.reorder = False
        if faults.duplicate and outgoing:
            outgoing = [m for m in outgoing for _ in (0, 1)]
            faults.duplicate -= 1
        if faults.drop:
            faults.drop = False
            for sub in list(self._subscribers):
                await sub.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dropped")
            return
        if faults.stall_s > 0:
            self._stall_until = self.clock.monotonic() + faults.stall_s
            faults.stall_s = 0.0
        if self.clock.monotonic() < self._stall_until:
            return  # the market moves on; nothing is sent, sockets stay open
        extras = []
        if faults.malformed:
            faults.malformed -= 1
            extras.append('{"e": "depthUpdate", "E": ')
        if faults.unknown:
            faults.unknown -= 1
            extras.append(json.dumps({"e": "mysteryEvent", "E": self.clock.time_ns() // 1_000_000}))
        await self._fan_out(outgoing, extras)

    async def _fan_out(self, messages: list[dict[str, Any]], extras: list[str]) -> None:
        raw = [(m["s"], json.dumps(m, separators=(",", ":"))) for m in messages]
        if self.keep_sent:
            self.sent.extend(text for _, text in raw)
        now = self.clock.monotonic()
        for sub in list(self._subscribers):
            if sub.ws.closed:
                continue
            if now - sub.opened >= self.max_connection_s:
                await sub.ws.send_str(json.dumps({"e": "serverShutdown", "E": self.clock.time_ns() // 1_000_000}))
                await sub.ws.close(code=WSCloseCode.GOING_AWAY, message=b"24h")
                continue
            try:
                for text in extras:
                    await sub.ws.send_str(text)
                for symbol, text in raw:
                    if symbol in sub.symbols:
                        if sub.combined:
                            text = f'{{"stream":"{symbol.lower()}@depth@100ms","data":{text}}}'
                        await sub.ws.send_str(text)
            except (ConnectionResetError, RuntimeError):
                continue


class ExchangeThread:
    """The exchange on its own event loop in a background thread (for synchronous callers)."""

    def __init__(self, feed: Feed, **kwargs: Any) -> None:
        self.exchange = LocalExchange(feed, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-exchange", daemon=True)

    def __enter__(self) -> LocalExchange:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.exchange.start(), self._loop).result(timeout=30)
        return self.exchange

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.exchange.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the exchange's loop (e.g. ``ex.call(ex.exchange.inject, "drop")``)."""
        self._loop.call_soon_threadsafe(fn, *args)


def run_exchange(symbols: Sequence[str], seed: int, host: str, port: int, speed: float, faults: Sequence[str],
                 gap_rate: float = 0.0, history: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM (the ``acts exchange`` command); ``history``: a data dir to replay."""
    schedule = [parse_fault(f) for f in faults]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Exchange time starts now, so E and local receive times agree as on the real exchange.
        feed: Feed = (SegmentFeed(history, symbols) if history else
                      GeneratorFeed(symbols, seed=seed, gap_rate=gap_rate, start_ms=time.time_ns() // 1_000_000))
        async with LocalExchange(feed, host=host, port=port, speed=speed, schedule=schedule) as ex:
            print(f"REST   {ex.rest_url}\nSTREAM {ex.stream_url}\nsymbols {', '.join(feed.symbols)}", flush=True)
            await stop.wait()

    asyncio.run(main())
