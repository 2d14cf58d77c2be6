"""What the recorder's shell needs from an exchange client, and what it hands the session.

``acts.recorder.binance_adapter`` implements these with python-binance; tests implement them with a
few queues. The shell sees nothing else of the client, so the session's decisions can be exercised
without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["RawFrame", "RestFailure", "Stream", "ExchangeClient"]


class RawFrame:
    """A websocket text frame as received, with its local receive time (ns), before anything parses it."""

    __slots__ = ("payload", "recv_ns")

    def __init__(self, payload: bytes, recv_ns: int) -> None:
        self.payload = payload
        self.recv_ns = recv_ns


@dataclass(frozen=True, slots=True)
class RestFailure:
    """A failed REST request as the session judges it.

    ``status`` is the HTTP status, None when no answer came (timeout, connection refused);
    ``retry_after_s`` the exchange's ``Retry-After``; ``transient`` False for failures a retry
    cannot fix (a bug, an unexpected answer)."""

    reason: str
    status: int | None = None
    retry_after_s: float | None = None
    transient: bool = True


class Stream(Protocol):
    """One websocket connection for a group of streams."""

    async def open(self) -> None: ...

    async def recv(self) -> RawFrame | dict[str, Any]:
        """The next frame, or the client's own error message as a dict (``{"e": "error", ...}``)."""
        ...

    def ready(self) -> list[RawFrame | dict[str, Any]]:
        """The messages already waiting, in order, without waiting (none: an empty list). The shell
        journals them all as one batch before the fold sees any."""
        ...

    async def close(self) -> None:
        """Close for good, quietly (the close is ours, not an error), without ever hanging."""
        ...


class ExchangeClient(Protocol):
    @property
    def url(self) -> str: ...

    async def exchange_info(self) -> Any: ...

    async def order_book(self, symbol: str, limit: int) -> Any: ...

    def rest_failure(self, exc: Exception) -> RestFailure:
        """How a failed ``order_book`` call is judged (status, Retry-After, transient)."""
        ...

    def stream(self, streams: list[str]) -> Stream: ...

    async def close(self) -> None: ...
