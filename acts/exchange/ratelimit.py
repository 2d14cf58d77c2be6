"""Binance's REST request-weight limit, sans-I/O: the caller passes the time in, a ``Verdict`` comes out.

Rules (as on Binance spot, per client IP):

* every request costs a weight (``depth_weight``; ``exchangeInfo`` 20; ``ping``/``time`` 1), counted
  in a window aligned on the wall-clock minute and reported as ``X-MBX-USED-WEIGHT-1M``;
* a request that would go past the limit gets **429** with ``Retry-After`` = seconds to the next
  minute, and is not counted;
* a client that keeps sending before that ``Retry-After`` is over gets 429 again, and at the
  ``ban_after``-th such request **418**: an IP ban of ``ban_s`` seconds, doubling for each repeat
  ban up to ``max_ban_s`` (Binance: "from 2 minutes to 3 days"). While banned, every request gets
  418 with the seconds left in ``Retry-After``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from acts.core.timeunits import DAY_S, MINUTE_MS
from acts.core.weights import depth_weight

__all__ = ["Weight", "depth_weight", "Verdict", "WeightLimiter", "DEFAULT_WEIGHT_LIMIT"]

#: Binance spot's ``REQUEST_WEIGHT`` per minute.
DEFAULT_WEIGHT_LIMIT = 6000


class Weight(IntEnum):
    """Request weights of the endpoints the local exchange serves."""

    PING = 1
    TIME = 1
    EXCHANGE_INFO = 20


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to answer: ``status`` 200 (go on), 429 or 418, the weight used this minute, ``Retry-After``."""

    status: int
    used: int
    retry_after_s: int = 0
    banned_until_ms: int = 0

    @property
    def admitted(self) -> bool:
        return self.status == 200


@dataclass(slots=True)
class _Client:
    minute: int = -1
    used: int = 0
    backoff_until_ms: int = 0  # the Retry-After of the last 429
    early: int = 0  # requests sent before that Retry-After was over
    banned_until_ms: int = 0
    bans: int = 0


def _ceil_s(ms: int) -> int:
    return max(1, -(-ms // 1000))


class WeightLimiter:
    """Request-weight accounting for one exchange (state per client key, usually the IP)."""

    def __init__(self, limit: int = DEFAULT_WEIGHT_LIMIT, ban_after: int = 2, ban_s: int = 120,
                 max_ban_s: int = 3 * DAY_S) -> None:
        if limit < 1 or ban_after < 1 or ban_s < 1:
            raise ValueError(f"limit ({limit}), ban_after ({ban_after}) and ban_s ({ban_s}) must be >= 1")
        self.limit = limit
        self.ban_after = ban_after
        self.ban_s = ban_s
        self.max_ban_s = max_ban_s
        self._clients: dict[str, _Client] = {}

    def admit(self, key: str, weight: int, now_ms: int) -> Verdict:
        """Count a request of ``weight`` from ``key`` at ``now_ms`` (wall clock, ms) and say how to answer."""
        client = self._clients.setdefault(key, _Client())
        minute = now_ms // MINUTE_MS
        if minute != client.minute:
            client.minute, client.used = minute, 0
        if now_ms < client.banned_until_ms:
            return Verdict(418, client.used, _ceil_s(client.banned_until_ms - now_ms), client.banned_until_ms)
        if now_ms < client.backoff_until_ms:
            client.early += 1
            if client.early >= self.ban_after:
                client.bans += 1
                ban_s = min(self.ban_s * 2 ** (client.bans - 1), self.max_ban_s)
                client.banned_until_ms = now_ms + ban_s * 1000
                client.backoff_until_ms, client.early = 0, 0
                return Verdict(418, client.used, ban_s, client.banned_until_ms)
            return Verdict(429, client.used, _ceil_s(client.backoff_until_ms - now_ms))
        client.early = 0
        if client.used + weight > self.limit:
            client.backoff_until_ms = (minute + 1) * MINUTE_MS
            return Verdict(429, client.used, _ceil_s(client.backoff_until_ms - now_ms))
        client.used += weight
        return Verdict(200, client.used)
