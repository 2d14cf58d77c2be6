"""python-binance pointed at a local exchange, without ever touching api.binance.com.

``AsyncClient.create()`` pings and reads ``/time`` before returning, so setting ``API_URL`` on the
instance afterwards is too late offline; a subclass with ``API_URL`` as a class attribute makes
``create()`` itself talk to the local exchange.
"""

from __future__ import annotations

from typing import Any

from acts.recorder.binance_adapter import AsyncClient, BinanceSocketManager

__all__ = ["local_client", "local_socket_manager"]


async def local_client(rest_url: str, **kwargs: Any) -> AsyncClient:
    """``AsyncClient.create(**kwargs)`` against ``rest_url`` (e.g. ``ex.rest_url``); close it when done."""
    client_class: type[AsyncClient] = type("LocalAsyncClient", (AsyncClient,), {"API_URL": rest_url})
    client: AsyncClient = await client_class.create(**kwargs)
    return client


def local_socket_manager(client: AsyncClient, stream_url: str, **kwargs: Any) -> BinanceSocketManager:
    """A ``BinanceSocketManager`` whose streams connect to ``stream_url`` (e.g. ``ex.stream_url``)."""
    manager = BinanceSocketManager(client, **kwargs)
    manager.STREAM_URL = stream_url
    return manager
