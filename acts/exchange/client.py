"""python-binance pointed at a local exchange, without ever touching api.binance.com.

``AsyncClient.create()`` pings and reads ``/time`` before returning, so setting ``API_URL`` on the
instance afterwards is too late offline; a subclass with ``API_URL`` as a class attribute makes
``create()`` itself talk to the local exchange. A futures exchange (``Market.USDM``) serves only
``/fapi``: its client has ``FUTURES_URL`` set instead, and ``create()`` pings the futures API.
"""

from __future__ import annotations

from typing import Any

from acts.core.markets import Market
from acts.recorder.binance_adapter import AsyncClient, BinanceSocketManager

__all__ = ["local_client", "local_socket_manager"]


async def local_client(rest_url: str, market: Market = Market.SPOT, **kwargs: Any) -> AsyncClient:
    """``AsyncClient.create(**kwargs)`` against ``rest_url`` (e.g. ``ex.rest_url``); close it when done."""
    attrs: dict[str, Any] = {"API_URL": rest_url}
    if market is Market.USDM:
        attrs = {"FUTURES_URL": rest_url, "ping": AsyncClient.futures_ping, "get_server_time": AsyncClient.futures_time}
    client_class: type[AsyncClient] = type("LocalAsyncClient", (AsyncClient,), attrs)
    client: AsyncClient = await client_class.create(**kwargs)
    return client


def local_socket_manager(client: AsyncClient, stream_url: str, **kwargs: Any) -> BinanceSocketManager:
    """A ``BinanceSocketManager`` whose streams, spot and futures, connect to ``stream_url`` (``ex.stream_url``)."""
    manager = BinanceSocketManager(client, **kwargs)
    manager.STREAM_URL = stream_url
    manager.FSTREAM_URL = stream_url
    return manager
