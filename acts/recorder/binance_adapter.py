"""python-binance, and every piece of its internals ACTS relies on: the one module that imports it.

Strategy:

* Capture. python-binance parses every websocket frame with ``ReconnectingWebsocket.json_loads``
  inside its read loop; we replace that method on each socket with one that returns the raw text
  plus the clock's ``time_ns()``, so every frame is timestamped where it is read and journaled
  byte-for-byte before anything parses it.
* Batches. ``ready`` takes every frame waiting in python-binance's queue (``_queue``) without
  awaiting, so the shell journals a burst at once.
* ACTS owns reconnection: python-binance's own retries are switched off (``MAX_RECONNECTS = 0``).
* Closing aborts the TCP connection first and demotes python-binance's log of that close to DEBUG.
* Markets. ``Market.USDM`` takes python-binance's USD-M futures methods instead of spot's:
  ``futures_exchange_info``, ``futures_order_book`` (``/fapi/v1/depth``) and
  ``futures_multiplex_socket(..., category="public")`` (Binance routes depth streams under
  ``/public``); ``rest_url`` is then its ``FUTURES_URL`` and ``stream_url`` its ``FSTREAM_URL``.

Tested against python-binance 1.0.x (pinned in ``pyproject.toml``): these are internals, and a
new release may move them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from binance import AsyncClient, BinanceSocketManager
from binance.exceptions import BinanceAPIException, BinanceRequestException
from binance.ws.constants import WSListenerState

from acts.core.clock import Clock
from acts.core.errors import ExchangeError
from acts.core.markets import Market
from acts.recorder.transport import RawFrame, RestFailure

__all__ = ["AsyncClient", "BinanceSocketManager", "BinanceAdapter", "BinanceStream", "CLOSE_TIMEOUT_S"]

log = logging.getLogger("acts.recorder")

#: The most closing one socket may take before it is let go.
CLOSE_TIMEOUT_S = 5.0
#: Binance's own default wait before retrying after a 429/418 without a ``Retry-After`` header.
DEFAULT_RETRY_AFTER_S = 60.0
USDM = Market.USDM
#: Where Binance serves USD-M depth streams: ``wss://fstream.binance.com/public/stream?streams=...``.
_FUTURES_STREAM_CATEGORY = "public"
#: aiohttp's own bound on one REST request; the shell's tighter ``rest_timeout_s`` (on the clock) acts first.
HTTP_TIMEOUT_S = 10


class _Demoted(logging.LoggerAdapter[logging.Logger]):
    """python-binance's socket logger once we close that socket on purpose: its read loop reports the
    connection we abort as an ERROR (``ConnectionClosedError``), which at a stop, a stale-feed
    reconnect or a handover is expected. Those lines go out at DEBUG; a close we did not ask for
    happens before this is installed and is still logged as the error it is."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(min(level, logging.DEBUG), msg, *args, **kwargs)


class BinanceStream:
    """One python-binance multiplex socket, capturing raw frames."""

    def __init__(self, manager: BinanceSocketManager, streams: list[str], clock: Clock, stale_after_s: float,
                 market: Market = Market.SPOT) -> None:
        self._clock = clock
        self._socket = (manager.futures_multiplex_socket(streams, category=_FUTURES_STREAM_CATEGORY)
                        if market == USDM else manager.multiplex_socket(streams))
        self._socket.json_loads = self._capture  # type: ignore[method-assign]
        self._socket.TIMEOUT = stale_after_s
        # ACTS owns reconnection (backoff, markers, resync). python-binance's own retry loop would keep
        # the socket alive behind our back, and its __aexit__ then waits for that loop forever.
        self._socket.MAX_RECONNECTS = 0

    def _capture(self, text: str | bytes) -> RawFrame:
        payload = text if isinstance(text, bytes) else text.encode()
        return RawFrame(payload, self._clock.time_ns())

    async def open(self) -> None:
        await self._socket.__aenter__()

    async def recv(self) -> RawFrame | dict[str, Any]:
        message: RawFrame | dict[str, Any] = await self._socket.recv()
        return message

    def ready(self) -> list[RawFrame | dict[str, Any]]:
        # python-binance's read loop puts each parsed frame in this asyncio.Queue; ``recv`` takes one
        # per await (and a wait_for each), we take every one waiting at once.
        queue: asyncio.Queue[RawFrame | dict[str, Any]] = self._socket._queue
        waiting: list[RawFrame | dict[str, Any]] = []
        while True:
            try:
                waiting.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                return waiting

    async def close(self) -> None:
        """Close for good, without ever hanging the recorder on it.

        The TCP connection is aborted first: python-binance's own close waits for its read loop, and a
        connection left open with nobody reading fills up and can stall the sender's other clients.
        """
        socket = self._socket
        socket._log = _Demoted(socket._log, {})  # the abort below is ours: not an error to report
        socket.ws_state = WSListenerState.EXITING
        transport = getattr(getattr(socket, "ws", None), "transport", None)
        if transport is not None:
            transport.abort()
        try:
            await self._clock.wait_for(socket.__aexit__(None, None, None), CLOSE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 -- already failing; just let go (TimeoutError included)
            log.warning("websocket close did not finish cleanly: %r", exc)


class BinanceAdapter:
    """REST and websocket access through python-binance, pointed at ``rest_url``/``stream_url`` if given,
    to ``market``'s endpoints."""

    def __init__(self, clock: Clock, rest_url: str | None = None, stream_url: str | None = None,
                 queue_size: int = 10_000, stale_after_s: float = 10.0, market: Market = Market.SPOT) -> None:
        self._clock = clock
        self._market = market
        self._client = AsyncClient(requests_params={"timeout": HTTP_TIMEOUT_S})
        if rest_url:
            if market == USDM:
                self._client.FUTURES_URL = rest_url
            else:
                self._client.API_URL = rest_url
        self._stream_url = stream_url
        self._queue_size = queue_size
        self._stale_after_s = stale_after_s

    @property
    def url(self) -> str:
        return str(self._client.FUTURES_URL if self._market == USDM else self._client.API_URL)

    async def exchange_info(self) -> Any:
        try:
            if self._market == USDM:
                return await self._client.futures_exchange_info()
            return await self._client.get_exchange_info()
        except (BinanceAPIException, BinanceRequestException, OSError,
                aiohttp.ClientError) as exc:  # ClientError: e.g. an HTML page where JSON was due
            base = "fapi" if self._market == USDM else "api"
            raise ExchangeError(f"cannot read exchangeInfo from {self.url}: {str(exc)[:200]}; check that --rest-url "
                                f"is a Binance REST API base such as http://127.0.0.1:9443/{base}") from None

    async def order_book(self, symbol: str, limit: int) -> Any:
        if self._market == USDM:
            return await self._client.futures_order_book(symbol=symbol, limit=limit)
        return await self._client.get_order_book(symbol=symbol, limit=limit)

    def rest_failure(self, exc: Exception) -> RestFailure:
        reason = repr(exc)
        if isinstance(exc, BinanceAPIException):
            retry_after = None
            if exc.status_code in (429, 418):
                retry_after = float(exc.response.headers.get("Retry-After", DEFAULT_RETRY_AFTER_S))
            return RestFailure(reason, exc.status_code, retry_after)
        transient = isinstance(exc, (BinanceRequestException, TimeoutError, OSError, ExchangeError))
        return RestFailure(reason, transient=transient)

    def stream(self, streams: list[str]) -> BinanceStream:
        manager = BinanceSocketManager(self._client, max_queue_size=self._queue_size)
        if self._stream_url:
            manager.STREAM_URL = self._stream_url
            manager.FSTREAM_URL = self._stream_url
        return BinanceStream(manager, streams, self._clock, self._stale_after_s, self._market)

    async def close(self) -> None:
        await self._client.close_connection()
