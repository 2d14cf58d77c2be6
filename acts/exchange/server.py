"""A Binance-compatible spot market-data server on 127.0.0.1, for tests, demos and bot testing.

REST under ``/api/v3``: ``ping``, ``time``, ``exchangeInfo`` (``symbol=`` / ``symbols=[..]``) and
``depth`` (``limit`` 1-5000, default 100), with Binance's request weights, ``X-MBX-USED-WEIGHT-1M`` on
every answer, 429 + ``Retry-After`` past the limit and 418 for clients that keep going
(``acts.exchange.ratelimit``). Errors are Binance-shaped: HTTP 400 ``{"code": -1121, "msg": "Invalid symbol."}``.

WebSocket streams ``<symbol>@depth@100ms`` (``<symbol>@depth`` is served at 100 ms too),
``<symbol>@trade`` and ``<symbol>@bookTicker`` (when the feed makes them: the generator does),
raw (``/ws/btcusdt@depth@100ms``, several joined by ``/``) or combined
(``/stream?streams=a/b``: ``{"stream": name, "data": payload}``), any number of symbols per
connection; ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` requests work as on Binance.
The server pings every ``ping_interval_s`` (Binance: 20 s) and closes a connection whose ping went
unanswered for ``pong_timeout_s`` (60 s); at ``max_connection_s`` (24 h) it sends
``{"e": "serverShutdown", "E": ms}`` and closes (1001). An unknown stream in the URL gets
``{"error": {"code": 2, "msg": "Invalid request: ..."}}`` then a close 1008; in a ``SUBSCRIBE``, the
same error with the request's ``id`` and the connection stays open. A client that reads too slowly
for ``send_queue`` frames is closed (1008).

Pacing: one feed step per ``100 ms / speed`` of the event loop's clock, subscribers or not, but the
market never runs more than ``max_lead_s`` (9 minutes) ahead of real time since the exchange started.
Strategy: a feed starts at the wall clock (``acts exchange``, ``acts demo``, the live tests), and the
recorder refuses an ``E`` more than 10 minutes from its receive time (``acts.core.events.MAX_EVENT_SKEW_MS``);
so a sped-up market runs fast until its clock is 9 minutes ahead (18.6 s at 30x, 13.8 s at 40x), then at
real time, and ``E`` stays believable however long the session. Each
message is serialized once and fanned out to the connections subscribed to its symbol, each drained
by its own writer so a slow client never holds up the others. The injected ``clock`` gives wall time
(rate-limit windows, bans, ``serverTime``, ``serverShutdown.E``) and connection ages, so tests can
jump a minute or a day with a fake clock.

python-binance talks to it after ``client.API_URL = ex.rest_url`` and
``socket_manager.STREAM_URL = ex.stream_url`` (see ``acts.exchange.client``). Faults: ``ex.inject(spec)``
(``acts.exchange.faults`` has the syntax).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from acts.core.clock import Clock, SystemClock
from acts.core.events import MAX_EVENT_SKEW_MS
from acts.core.markets import Market
from acts.core.symbols import StreamKind, stream_name
from acts.exchange import futures
from acts.exchange.faults import REST_REFUSALS, REST_TIMEOUT, DropMode, Fault, Faults, StepPlan, parse_fault
from acts.exchange.feed import Feed, GeneratorFeed, SegmentFeed
from acts.exchange.generator import STEP_MS
from acts.exchange.ratelimit import DEFAULT_WEIGHT_LIMIT, Verdict, Weight, WeightLimiter, depth_weight
from acts.exchange.wire import (
    SERVER_SHUTDOWN,
    UNKNOWN_EVENT,
    ErrorCode,
    Stream,
    combined,
    dumps,
    error_body,
    exchange_info,
    message_kind,
    parse_stream,
)

__all__ = ["LocalExchange", "ExchangeThread", "run_exchange", "DEFAULT_PORT"]

log = logging.getLogger("acts.exchange")

#: The port ``acts exchange`` binds by default (Binance's stream port).
DEFAULT_PORT = 9443
_DEFAULT_DEPTH_LIMIT = 100
#: Longest request line (and header) served: 1024 streams (Binance's per-connection limit) of long names.
_MAX_URL_BYTES = 64 * 1024
_MAX_DEPTH_LIMIT = 5000
#: Binance websocket request errors: 2 = invalid request, 3 = invalid JSON.
_WS_INVALID_REQUEST = 2
_WS_INVALID_JSON = 3
#: The frame the ``malformed`` fault sends: a diff cut off mid-object.
_MALFORMED_FRAME = '{"e":"depthUpdate","E":'
#: Pseudo-keys of fault frames: sent to every connection as they are / wrapped on combined streams.
_RAW_TO_ALL = ("*raw", StreamKind.DEPTH)
_WRAPPED_TO_ALL = ("*wrapped", StreamKind.DEPTH)
#: What a frame is routed by: (symbol, stream kind), as ``wire.Stream.key``.
_Key = tuple[str, StreamKind]
_T = TypeVar("_T")
#: Exchange time per feed step (``acts.exchange.feed``), in seconds.
_STEP_S = STEP_MS / 1000
#: How far the market may run ahead of real time (see "Pacing"): one minute inside the recorder's limit.
MAX_LEAD_S = MAX_EVENT_SKEW_MS / 1000 - 60


@dataclass(frozen=True, slots=True)
class _Close:
    """Why a connection is being closed: the close code and reason sent to the client."""

    code: int
    reason: bytes


class _Connection:
    """One websocket client: its streams ((symbol, kind) -> name) and a bounded queue drained by its writer.

    Closing is asked for (``request_close``) and done by the connection's own handler, the task
    that reads the socket, so the close handshake completes (the client sees its code, not 1006).
    """

    __slots__ = ("ws", "request", "streams", "is_combined", "opened", "queue", "ping_sent", "notified",
                 "close_queued", "close_request", "finished")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, streams: dict[_Key, str],
                 is_combined: bool, opened: float, queue_size: int) -> None:
        self.ws = ws
        self.request = request
        self.streams = streams
        self.is_combined = is_combined
        self.opened = opened
        self.queue: asyncio.Queue[str | _Close] = asyncio.Queue(queue_size)
        self.ping_sent: float | None = None  # loop time of the oldest unanswered ping
        self.notified = False  # serverShutdown sent
        self.close_queued = False
        self.close_request: asyncio.Future[_Close] = asyncio.get_running_loop().create_future()
        self.finished = asyncio.Event()

    @property
    def closing(self) -> bool:
        return self.close_request.done()

    def offer(self, text: str) -> bool:
        """Queue a frame; False when the client has fallen ``queue_size`` frames behind."""
        if self.closing:
            return True
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True

    def request_close(self, code: int, reason: bytes) -> None:
        """Close now; frames still queued are not sent."""
        if not self.closing:
            self.close_request.set_result(_Close(code, reason))

    def close_after_queued(self, code: int, reason: bytes) -> None:
        """Close once the frames queued so far are sent."""
        if self.closing or self.close_queued:
            return
        self.close_queued = True
        try:
            self.queue.put_nowait(_Close(code, reason))
        except asyncio.QueueFull:
            self.request_close(code, reason)


class LocalExchange:
    """``async with LocalExchange(feed, speed=20) as ex:`` then point python-binance at ``ex``.

    ``schedule`` holds faults (spec strings or ``Fault``) armed when the exchange starts, each
    ``@DELAY`` after the start. The pacer, stalls and fault delays use the event loop's clock;
    ``clock`` gives wall time and connection ages (see the module docstring).
    """

    def __init__(self, feed: Feed, host: str = "127.0.0.1", port: int = 0, speed: float = 1.0,
                 clock: Clock | None = None, weight_limit: int | None = None,
                 max_connection_s: float = 86_400.0, shutdown_notice_s: float = 0.0,
                 ping_interval_s: float = 20.0, pong_timeout_s: float = 60.0,
                 schedule: Sequence[str | Fault] = (), send_queue: int = 10_000,
                 rest_hang_s: float = 3600.0, limiter: WeightLimiter | None = None,
                 max_lead_s: float | None = MAX_LEAD_S, market: Market = Market.SPOT) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (1 = real time), got {speed}")
        self.feed = feed
        self.symbols = list(feed.symbols)
        self.host = host
        self.port = port
        self.speed = speed
        self.max_lead_s = max_lead_s  # None: no limit (a market far ahead of the clock is refused by the recorder)
        self.clock: Clock = clock or SystemClock()
        self.market = market  # USDM: USD-M futures (``acts.exchange.futures``)
        if weight_limit is None:
            weight_limit = futures.FUTURES_WEIGHT_LIMIT if market == futures.USDM else DEFAULT_WEIGHT_LIMIT
        self.limiter = limiter or WeightLimiter(weight_limit)
        self.max_connection_s = max_connection_s
        self.shutdown_notice_s = shutdown_notice_s
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.send_queue = send_queue
        self.rest_hang_s = rest_hang_s
        self.faults = Faults(self.symbols)
        self.steps = 0  # feed steps taken
        self.keep_sent = False  # when True, ``sent`` collects every diff text sent (parity tests) ...
        self.sent: list[str] = []
        self.sent_other: list[str] = []  # ... and ``sent_other`` every trade and bookTicker text
        self._schedule = [self.faults.check(f) for f in schedule]
        self._connections: set[_Connection] = set()
        self._backlog: list[tuple[_Key, str]] = []  # frames held by a ``stall:..:burst``
        self._runner: web.AppRunner | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> LocalExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind, start serving and start the market."""
        if self._runner is not None:
            raise RuntimeError("the local exchange is already running")
        self._stopping = asyncio.Event()
        # A combined-stream URL of hundreds of symbols, three streams each, runs past aiohttp's 8 KiB
        # request line (200 symbols: ~10 KiB); the exchange accepts what 1024 streams spell.
        app = web.Application(handler_args={"max_line_size": _MAX_URL_BYTES, "max_field_size": _MAX_URL_BYTES})
        if self.market == futures.USDM:
            futures.register(app, self)
        else:
            app.router.add_get("/api/v3/ping", self._ping)
            app.router.add_get("/api/v3/time", self._time)
            app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
            app.router.add_get("/api/v3/depth", self._depth)
            app.router.add_get("/ws", self._websocket)
            app.router.add_get("/ws/{streams:.*}", self._websocket)
            app.router.add_get("/stream", self._websocket)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = _bind(self.host, self.port)
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = sock.getsockname()[1]
        now = asyncio.get_running_loop().time()
        for fault in self._schedule:
            self.faults.inject(fault, now)
        self._pacer = asyncio.create_task(self._pace(), name="local-exchange-pacer")

    async def stop(self) -> None:
        """Stop the market, close every connection (1001), release hung requests, unbind."""
        if self._stopping is not None:
            self._stopping.set()
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
            self._pacer = None
        connections = list(self._connections)
        for conn in connections:
            conn.request_close(WSCloseCode.GOING_AWAY, b"server stopping")
        if connections:
            _, late = await asyncio.wait([asyncio.ensure_future(c.finished.wait()) for c in connections], timeout=3.0)
            for task in late:
                task.cancel()
            for conn in connections:
                if not conn.finished.is_set():
                    _abort(conn.request)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT/api``: python-binance's ``client.API_URL`` (futures: ``.../fapi``,
        its ``client.FUTURES_URL``)."""
        base = "fapi" if self.market == futures.USDM else "api"
        return f"http://{_url_host(self.host)}:{self.port}/{base}"

    @property
    def stream_url(self) -> str:
        """``ws://127.0.0.1:PORT/``: python-binance's ``socket_manager.STREAM_URL`` (futures: ``FSTREAM_URL``)."""
        return f"ws://{_url_host(self.host)}:{self.port}/"

    @property
    def connections(self) -> int:
        """Open websocket connections."""
        return len(self._connections)

    def inject(self, fault: str | Fault) -> Fault:
        """Arm a fault now (or ``@DELAY`` from now), e.g. ``ex.inject("skip:BTCUSDT:3")``.

        Call it on the exchange's event loop (``ExchangeThread.inject`` from other threads).
        Raises ``InputError`` for a bad spec or a symbol that is not served.
        """
        parsed = self.faults.inject(fault, asyncio.get_running_loop().time())
        log.warning("fault %s %s", parsed.spec or parsed.kind.value,
                    f"in {parsed.delay_s:g}s" if parsed.delay_s else "armed")
        return parsed

    # --- REST -----------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return self.clock.time_ns() // 1_000_000

    def _weigh(self, request: web.Request, weight: int) -> Verdict:
        return self.limiter.admit(request.remote or "?", weight, self._now_ms())

    @staticmethod
    def _headers(verdict: Verdict) -> dict[str, str]:
        used = str(verdict.used)
        return {"X-MBX-USED-WEIGHT": used, "X-MBX-USED-WEIGHT-1M": used}

    def _answer(self, verdict: Verdict, body: Any, status: int = 200,
                headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(body, status=status, headers={**self._headers(verdict), **(headers or {})},
                                 dumps=dumps)

    def _refusal(self, verdict: Verdict) -> web.Response:
        limit = self.limiter.limit
        if verdict.status == 429:
            msg = (f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
                   "Please use WebSocket Streams for live updates to avoid polling the API.")
        else:
            msg = (f"Way too much request weight used; IP banned until {verdict.banned_until_ms}. "
                   "Please use WebSocket Streams for live updates to avoid bans.")
        return self._answer(verdict, error_body(ErrorCode.TOO_MANY_REQUESTS, msg), verdict.status,
                            {"Retry-After": str(verdict.retry_after_s)})

    async def _ping(self, request: web.Request) -> web.Response:
        verdict = self._weigh(request, Weight.PING)
        return self._answer(verdict, {}) if verdict.admitted else self._refusal(verdict)

    async def _time(self, request: web.Request) -> web.Response:
        verdict = self._weigh(request, Weight.TIME)
        return self._answer(verdict, {"serverTime": self._now_ms()}) if verdict.admitted else self._refusal(verdict)

    async def _exchange_info(self, request: web.Request) -> web.Response:
        verdict = self._weigh(request, Weight.EXCHANGE_INFO)
        if not verdict.admitted:
            return self._refusal(verdict)
        wanted = self.symbols
        if "symbol" in request.query:
            wanted = [request.query["symbol"].upper()]
        elif "symbols" in request.query:
            parsed = _symbol_list(request.query["symbols"])
            if parsed is None:
                return self._answer(verdict, error_body(
                    ErrorCode.ILLEGAL_CHARS, "Illegal characters found in parameter 'symbols'; "
                    'legal range is \'["BTCUSDT","ETHUSDT"]\'.'), 400)
            wanted = parsed
        if any(s not in self.symbols for s in wanted):
            return self._answer(verdict, error_body(ErrorCode.BAD_SYMBOL, "Invalid symbol."), 400)
        body = exchange_info([self.feed.spec(s) for s in wanted], self._now_ms(), self.limiter.limit)
        return self._answer(verdict, body)

    async def _depth(self, request: web.Request) -> web.Response:
        raw_limit = request.query.get("limit", str(_DEFAULT_DEPTH_LIMIT))
        limit = min(int(raw_limit), _MAX_DEPTH_LIMIT) if raw_limit.isdigit() else 0
        verdict = self._weigh(request, depth_weight(limit or _DEFAULT_DEPTH_LIMIT))
        if not verdict.admitted:
            return self._refusal(verdict)
        if limit < 1:
            return self._answer(verdict, error_body(
                ErrorCode.ILLEGAL_CHARS,
                f"Illegal characters found in parameter 'limit'; legal range is '1' to '{_MAX_DEPTH_LIMIT}'."), 400)
        return await self.depth_answer(request, verdict, limit)

    async def depth_answer(self, request: web.Request, verdict: Verdict, limit: int,
                           shape: Callable[[dict[str, Any]], dict[str, Any]] = lambda body: body) -> web.Response:
        """After the weight and the limit: the symbol checks, a ``rest`` fault, then the snapshot in
        ``shape`` (spot's and the futures depth endpoint share all of it)."""
        symbol = request.query.get("symbol", "").upper()
        if not symbol:
            return self._answer(verdict, error_body(
                ErrorCode.MANDATORY_PARAM, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
                400)
        if symbol not in self.symbols:
            return self._answer(verdict, error_body(ErrorCode.BAD_SYMBOL, "Invalid symbol."), 400)
        failure = self.faults.take_rest_failure()
        if failure is not None:
            return await self._fail(verdict, failure)
        return self._answer(verdict, shape(self.faults.renumber_snapshot(symbol, self.feed.snapshot(symbol, limit))))

    async def _fail(self, verdict: Verdict, failure: str) -> web.Response:
        """A ``rest`` fault: hang, refuse (429/418, ``Retry-After: 1``) or fail (5xx)."""
        if failure == REST_TIMEOUT:
            # Hang like an overloaded exchange; let go when the exchange stops.
            assert self._stopping is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.rest_hang_s)
            failure = "503"  # then answer like a gateway that gave up
        if failure in REST_REFUSALS:
            body = error_body(ErrorCode.TOO_MANY_REQUESTS, "Too much request weight used (injected fault).")
            return self._answer(verdict, body, int(failure), {"Retry-After": "1"})
        body = error_body(ErrorCode.UNKNOWN, "An unknown error occurred while processing the request.")
        return self._answer(verdict, body, int(failure))

    # --- websocket ------------------------------------------------------------------------

    def _resolve(self, names: Sequence[str]) -> tuple[list[Stream], list[str]]:
        streams, bad = [], []
        for name in names:
            stream = parse_stream(name, self.symbols, self.market)
            if stream is None:
                bad.append(name)
            else:
                streams.append(stream)
        return streams, bad

    def _invalid(self, bad: Sequence[str], request_id: Any = None) -> str:
        served = ", ".join(stream_name(kind, "<symbol>", self.market) for kind in StreamKind)
        msg = (f"Invalid request: unknown stream {', '.join(bad)}; this exchange serves "
               f"{served} for {', '.join(s.lower() for s in self.symbols)}")
        body: dict[str, Any] = {"error": {"code": _WS_INVALID_REQUEST, "msg": msg}}
        if request_id is not None:
            body["id"] = request_id
        return dumps(body)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        is_combined = request.path.endswith("/stream")  # futures: also /public/stream
        names = request.query.get("streams", "") if is_combined else request.match_info.get("streams", "")
        streams, bad = self._resolve([n for n in names.split("/") if n])
        ws = web.WebSocketResponse(autoping=False, compress=False, timeout=1.0)
        await ws.prepare(request)
        if bad:
            await ws.send_str(self._invalid(bad))
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"unknown stream")
            return ws
        conn = _Connection(ws, request, {s.key: s.name for s in streams}, is_combined,
                           self.clock.monotonic(), self.send_queue)
        self._connections.add(conn)
        helpers = [asyncio.create_task(self._writer(conn)), asyncio.create_task(self._keepalive(conn))]
        try:
            await self._read(conn)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._connections.discard(conn)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            conn.finished.set()
        return ws

    async def _read(self, conn: _Connection) -> None:
        """Answer pings, note pongs, serve requests; close when asked to, or stop when the client does."""
        ws = conn.ws
        while True:
            receiving: asyncio.Future[Any] = asyncio.ensure_future(ws.receive())
            await asyncio.wait([receiving, conn.close_request], return_when=asyncio.FIRST_COMPLETED)
            if not receiving.done():
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiving
                close = conn.close_request.result()
                try:
                    await asyncio.wait_for(ws.close(code=close.code, message=close.reason), 2.0)
                except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                    _abort(conn.request)  # the client does not read: cut it
                return
            msg = receiving.result()
            if msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                conn.ping_sent = None
            elif msg.type is WSMsgType.TEXT:
                self._command(conn, msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    def _command(self, conn: _Connection, text: str) -> None:
        """Binance's live subscription requests: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS."""
        try:
            req = json.loads(text)
            method, params, request_id = req.get("method"), req.get("params", []), req.get("id")
        except (ValueError, AttributeError):
            conn.offer(dumps({"error": {"code": _WS_INVALID_JSON, "msg": f"Invalid JSON: {text[:80]!r}"}}))
            return
        if method == "LIST_SUBSCRIPTIONS":
            conn.offer(dumps({"result": list(conn.streams.values()), "id": request_id}))
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            conn.offer(dumps({"error": {"code": _WS_INVALID_REQUEST, "msg": f"Invalid request: method {method!r}"},
                              "id": request_id}))
            return
        streams, bad = self._resolve([str(p) for p in params])
        if bad:
            conn.offer(self._invalid(bad, request_id))
            return
        for stream in streams:
            if method == "SUBSCRIBE":
                conn.streams[stream.key] = stream.name
            else:
                conn.streams.pop(stream.key, None)
        conn.offer(dumps({"result": None, "id": request_id}))

    async def _writer(self, conn: _Connection) -> None:
        try:
            while True:
                item = await conn.queue.get()
                if isinstance(item, _Close):
                    conn.request_close(item.code, item.reason)
                    return
                await conn.ws.send_str(item)
        except (ConnectionError, RuntimeError):
            pass  # the client went away; the reader sees it too

    async def _keepalive(self, conn: _Connection) -> None:
        """Ping every ``ping_interval_s``; close when a ping stays unanswered ``pong_timeout_s``."""
        loop = asyncio.get_running_loop()
        try:
            while not conn.ws.closed:
                await asyncio.sleep(min(self.ping_interval_s, self.pong_timeout_s))
                now = loop.time()
                if conn.ping_sent is not None and now - conn.ping_sent >= self.pong_timeout_s:
                    conn.request_close(WSCloseCode.POLICY_VIOLATION, b"pong timeout")
                    return
                await conn.ws.ping(str(self._now_ms()).encode())
                if conn.ping_sent is None:
                    conn.ping_sent = now
        except (ConnectionError, RuntimeError):
            pass

    # --- the market -----------------------------------------------------------------------

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 0.1 / self.speed
        started = next_at = loop.time()
        while True:
            next_at += interval
            if self.max_lead_s is not None:  # step n may not come before n * 100 ms - the lead, in real time
                next_at = max(next_at, started + (self.steps + 1) * _STEP_S - self.max_lead_s)
            now = loop.time()
            if next_at - now > 0:
                await asyncio.sleep(next_at - now)
            else:
                await asyncio.sleep(0)
                if now - next_at > 1.0:
                    next_at = now  # the loop was blocked: resume the pace rather than burst a backlog
            try:
                self._step(loop.time())
            except Exception:
                log.exception("feed step %d failed; the exchange stops sending", self.steps)
                raise

    def _step(self, now: float) -> None:
        """One step: advance the feed, apply faults, fan out."""
        for fault in self.faults.arm_due(now):
            log.warning("fault %s fired", fault.spec or fault.kind.value)
        plan = self.faults.plan(self.feed.step(), now)
        self.steps += 1
        self._expire_connections()
        if plan.drop:
            self._backlog.clear()
            for conn in list(self._connections):
                if plan.drop is DropMode.RESET:
                    _abort(conn.request)
                else:
                    conn.request_close(WSCloseCode.GOING_AWAY, b"dropped")
            return
        frames = self._frames(plan)
        if plan.stalled:
            if plan.burst:
                self._backlog.extend(frames)
            return
        if self._backlog:
            frames, self._backlog = self._backlog + frames, []
        self._fan_out(frames)

    def _frames(self, plan: StepPlan) -> list[tuple[_Key, str]]:
        """((symbol, kind), text) per frame; ``_RAW_TO_ALL`` / ``_WRAPPED_TO_ALL`` for the fault frames.

        Only messages someone subscribed to are serialized: trades and tickers nobody asked for cost
        next to nothing (a recorder of depth alone sees the same exchange load as before)."""
        frames: list[tuple[_Key, str]] = []
        if plan.malformed:
            frames.append((_RAW_TO_ALL, _MALFORMED_FRAME))
        if plan.unknown:
            frames.append((_WRAPPED_TO_ALL, dumps({"e": UNKNOWN_EVENT, "E": self._now_ms()})))
        wanted = {key for conn in self._connections for key in conn.streams}
        for msg in plan.messages:
            key = (msg["s"], message_kind(msg))
            if key in wanted or self.keep_sent:
                frames.append((key, dumps(msg)))
        return frames

    def _fan_out(self, frames: list[tuple[_Key, str]]) -> None:
        connections = [c for c in self._connections if not c.closing]
        slow: set[_Connection] = set()
        for key, text in frames:
            if key in (_RAW_TO_ALL, _WRAPPED_TO_ALL):
                for conn in connections:
                    first = next(iter(conn.streams.values()), None)
                    wrap = key == _WRAPPED_TO_ALL and conn.is_combined and first is not None
                    if not conn.offer(combined(first, text) if wrap and first is not None else text):
                        slow.add(conn)
                continue
            if self.keep_sent:
                (self.sent if key[1] is StreamKind.DEPTH else self.sent_other).append(text)
            wrapped: dict[str, str] = {}  # stream name -> the combined text, built once
            for conn in connections:
                name = conn.streams.get(key)
                if name is None:
                    continue
                if conn.is_combined:
                    if name not in wrapped:
                        wrapped[name] = combined(name, text)
                    ok = conn.offer(wrapped[name])
                else:
                    ok = conn.offer(text)
                if not ok:
                    slow.add(conn)
        for conn in slow:
            log.warning("closing a websocket client %d frames behind", self.send_queue)
            conn.request_close(WSCloseCode.POLICY_VIOLATION, b"slow consumer")

    def _expire_connections(self) -> None:
        """``serverShutdown`` then close, for connections at their maximum age."""
        now = self.clock.monotonic()
        for conn in list(self._connections):
            if conn.closing:
                continue
            age = now - conn.opened
            if not conn.notified and age >= self.max_connection_s - self.shutdown_notice_s:
                conn.notified = True
                conn.offer(dumps({"e": SERVER_SHUTDOWN, "E": self._now_ms()}))
            if age >= self.max_connection_s:
                conn.close_after_queued(WSCloseCode.GOING_AWAY, b"connection reached its maximum age")


def _symbol_list(text: str) -> list[str] | None:
    """``symbols=["BTCUSDT","ETHUSDT"]`` (Binance's form) or ``BTCUSDT,ETHUSDT``; None if neither."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
            return None
        return [s.upper() for s in value]
    parts = [p.strip().upper() for p in text.split(",")]
    return parts if all(p.isalnum() for p in parts) else None


def _abort(request: web.Request) -> None:
    """Drop the TCP connection without a close frame (RST), as a network failure would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class ExchangeThread:
    """The exchange on its own event loop in a background thread, for synchronous callers.

    ``with ExchangeThread(feed, speed=20) as ex:`` then ``ex.rest_url``, ``ex.stream_url``,
    ``ex.inject("drop")`` (thread-safe) and ``ex.exchange`` for the ``LocalExchange`` itself.
    """

    def __init__(self, feed: Feed, **kwargs: Any) -> None:
        self.exchange = LocalExchange(feed, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-exchange", daemon=True)

    def __enter__(self) -> ExchangeThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        try:
            self._run(self.exchange.start(), timeout)
        except BaseException:
            self._shutdown_loop()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._run(self.exchange.stop(), timeout)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def call(self, fn: Callable[..., _T], *args: Any, timeout: float = 30.0) -> _T:
        """Run ``fn(*args)`` on the exchange's loop and return its result."""

        async def wrapper() -> _T:
            return fn(*args)

        return self._run(wrapper(), timeout)

    def inject(self, fault: str | Fault) -> Fault:
        """``LocalExchange.inject`` from any thread."""
        return self.call(self.exchange.inject, fault)

    @property
    def port(self) -> int:
        return self.exchange.port

    @property
    def rest_url(self) -> str:
        return self.exchange.rest_url

    @property
    def stream_url(self) -> str:
        return self.exchange.stream_url


def run_exchange(symbols: Sequence[str], seed: int, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 speed: float = 1.0, faults: Sequence[str] = (), gap_rate: float = 0.0,
                 history: str | None = None, market: Market = Market.SPOT) -> None:
    """Serve the seeded generator (or, with ``history``, recorded segments) until SIGINT/SIGTERM, printing
    the bound URLs (``acts exchange``); ``Market.USDM`` serves it as USD-M futures.

    Bad fault specs raise ``InputError`` before anything is bound.
    """
    from acts.storage.store import SegmentStore

    schedule = [parse_fault(f) for f in faults]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Exchange time starts now, so E and local receive times agree as on the real exchange (speed 1).
        # Recorded history is moved to now (whole minutes), so the recorder believes its event times.
        now_ms = time.time_ns() // 1_000_000
        feed: Feed = (SegmentFeed(SegmentStore.open(history, market), symbols, rebase_to_ms=now_ms)
                      if history else GeneratorFeed(symbols, seed=seed, gap_rate=gap_rate, start_ms=now_ms))
        if market == futures.USDM:
            feed = futures.futures_feed(feed)
        async with LocalExchange(feed, host=host, port=port, speed=speed, schedule=schedule, market=market) as ex:
            print(f"REST   {ex.rest_url}\nSTREAM {ex.stream_url}\nsymbols {', '.join(feed.symbols)}", flush=True)
            if schedule:
                print(f"faults {', '.join(f.spec for f in schedule)}", flush=True)
            if speed > 1:  # last: scripts read the lines above by position
                print(f"speed  {speed:g}x until the market is {MAX_LEAD_S / 60:g} min ahead of the clock "
                      f"({MAX_LEAD_S / (speed - 1):.1f} s), then real time", flush=True)
            await stop.wait()

    asyncio.run(main())
