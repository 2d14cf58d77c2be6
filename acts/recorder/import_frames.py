"""One line of a capture: ``[<local time> ]<frame>``, and which stream the frame belongs to.

Local time (the collector's receive time), then one space, then the frame:

* a number since the epoch, integer or decimal. Its unit is read from its size: a time in 2017..2100 has
  10 integer digits in seconds, 13 in ms, 16 in µs and 19 in ns, so ``< 1e11`` is s, ``< 1e14`` ms,
  ``< 1e17`` µs, else ns. Decimals are read exactly (``1714521600.123456789`` is that ns);
* an ISO-8601 time as tardis.dev raw data files write it, ``2024-05-01T00:00:00.1234567Z``: up to 9
  decimals, ``Z`` or an offset such as ``+02:00``; without either it is taken as UTC.

Anything else where a time should be, or a time outside 2017..2100, makes the line malformed.

The frame is a raw stream payload or a combined-stream envelope ``{"stream": "btcusdt@depth@100ms",
"data": {...}}``. ``stream_type`` names the stream of a frame that is not imported (depth diffs and
snapshots, trades and bookTickers are).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from acts.core.errors import MalformedMessageError
from acts.core.events import MAX_TIME_MS, MIN_TIME_MS

__all__ = ["TimeUnit", "Line", "parse_line", "local_ns", "stream_type", "frame_symbol", "IMPORTED_STREAMS"]


class TimeUnit(StrEnum):
    """How a line's local time was written."""

    S = "s"
    MS = "ms"
    US = "µs"
    NS = "ns"
    ISO = "ISO-8601"


#: Stream types imported: diff depth, tardis.dev's generated REST snapshot frames (``btcusdt@depthSnapshot``),
#: trades and bookTickers. Any other type is counted and skipped.
IMPORTED_STREAMS = frozenset({"depth", "depthSnapshot", "trade", "bookTicker"})
#: Message types (``"e"``) imported besides ``depthUpdate`` (a bookTicker has none on spot).
_IMPORTED_TYPES = frozenset({"depthUpdate", "trade", "bookTicker"})
#: USD-M futures' trade stream (they have no ``@trade``): imported with ``--market usdm`` as trades chained by
#: the aggregate id; skipped on spot, whose trades are the ``@trade`` ones.
_FUTURES_TRADES = "aggTrade"
#: Keys only a diff-depth payload has: a payload with them but an unknown ``"e"`` is a damaged depth diff
#: (malformed), not a stream of another type.
_DIFF_KEYS = frozenset({"U", "u"})
#: Upper bounds (exclusive) of a number's magnitude per unit, and the unit's length in ns.
_UNITS = ((10**11, TimeUnit.S, 10**9), (10**14, TimeUnit.MS, 10**6), (10**17, TimeUnit.US, 10**3))
#: Larger than any time in 2017..2100 in ns.
_TOO_BIG = Decimal("1e20")
_MIN_NS, _MAX_NS = MIN_TIME_MS * 1_000_000, MAX_TIME_MS * 1_000_000
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?", re.ASCII)
#: A number as collectors write one (ASCII digits: ``Decimal`` alone would also take ``١٢٣`` and ``1_000``).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A stream name's rate suffix (``@100ms``, ``@1s``), not part of its type.
_RATE = re.compile(r"@\d+m?s$", re.ASCII)


@dataclass(frozen=True, slots=True)
class Line:
    """A parsed line: its local receive time in ns and how it was written (None: the line has none)."""

    local_ns: int | None
    unit: TimeUnit | None
    frame: Any


def local_ns(token: str) -> tuple[int, TimeUnit]:
    """``(ns since the epoch, unit)`` of a local time; ``MalformedMessageError`` if it is none in 2017..2100."""
    ns: int | Decimal
    if token.isascii() and token.isdigit():  # the common case, without the regular expressions and Decimal
        ns, unit = _integer_ns(token)
    elif (match := _ISO.fullmatch(token)) is not None:
        ns, unit = _iso_ns(token, match), TimeUnit.ISO
    else:
        ns, unit = _number_ns(token)
    if not _MIN_NS <= ns < _MAX_NS:
        raise MalformedMessageError(f"local receive time {token[:32]!r} is not a time in 2017..2100")
    return int(ns), unit


def _iso_ns(token: str, match: re.Match[str]) -> int:
    zone = match[3] or "+00:00"
    try:
        moment = datetime.fromisoformat(match[1] + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        raise MalformedMessageError(f"local receive time {token[:32]!r} is not a valid ISO-8601 time") from None
    whole = (moment - _EPOCH) // timedelta(seconds=1)  # exact: no float on the way
    return whole * 10**9 + int((match[2] or "").ljust(9, "0"))


def _integer_ns(token: str) -> tuple[int, TimeUnit]:
    if len(token) > 20:  # no time in 2017..2100 in any unit (and no huge int to build)
        raise MalformedMessageError(f"local receive time {token[:32]!r} is not a time in 2017..2100")
    value = int(token)
    for bound, unit, scale in _UNITS:
        if value < bound:
            return value * scale, unit
    return value, TimeUnit.NS


def _number_ns(token: str) -> tuple[Decimal, TimeUnit]:
    if not _NUMBER.fullmatch(token):
        raise MalformedMessageError(f"line starts with {token[:20]!r}, neither JSON nor a timestamp")
    value = Decimal(token)
    magnitude = value.copy_abs()  # no context: abs() would raise Overflow on 1e999999999
    unit, scale = next(((unit, scale) for bound, unit, scale in _UNITS if magnitude < bound), (TimeUnit.NS, 1))
    if magnitude >= _TOO_BIG:  # no time in 2017..2100 in any unit (and ``1e999999999`` must not become an int)
        raise MalformedMessageError(f"local receive time {token[:32]!r} is not a time in 2017..2100")
    try:
        return (value * scale).to_integral_value(), unit
    except ArithmeticError:  # decimal's signals, e.g. an underflow of 1e-999999
        raise MalformedMessageError(f"local receive time {token[:32]!r} is not a time in 2017..2100") from None


def parse_line(line: str) -> Line:
    """A line as ``Line``; raises ``MalformedMessageError`` naming what is wrong."""
    text = line.strip().lstrip("\ufeff")
    local: int | None = None
    unit: TimeUnit | None = None
    if text and text[0] not in "{[":
        token, _, text = text.partition(" ")
        local, unit = local_ns(token)
    try:
        return Line(local, unit, json.loads(text))
    except json.JSONDecodeError as exc:
        raise MalformedMessageError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise MalformedMessageError("JSON nested too deeply") from None


def _named_type(name: str) -> str:
    """``btcusdt@depth@100ms`` -> ``depth``, ``btcusdt@kline_1m`` -> ``kline``, ``!miniTicker@arr`` ->
    ``!miniTicker``."""
    if name.startswith("!"):
        return name.split("@", 1)[0]
    return _RATE.sub("", name.split("@", 1)[1]).split("_", 1)[0]


def stream_type(frame: Any, futures: bool = False) -> str | None:
    """The type of the stream a frame belongs to (``"aggTrade"``, ``"kline"``, ``"forceOrder"``) when it is not
    imported; None for a depth diff or snapshot, a trade (an ``aggTrade`` when ``futures``) or a bookTicker, and
    for what is neither a known nor a plausible stream frame (the decoder then says why it is malformed)."""
    imported = (IMPORTED_STREAMS | {_FUTURES_TRADES}) if futures else IMPORTED_STREAMS
    if isinstance(frame, dict) and "stream" in frame and "data" in frame:
        name = frame["stream"]
        if isinstance(name, str) and "@" in name:
            named = _named_type(name)
            return None if named in imported else named
        frame = frame["data"]
    if not isinstance(frame, dict):
        return None
    event_type = frame.get("e")
    types = (_IMPORTED_TYPES | {_FUTURES_TRADES}) if futures else _IMPORTED_TYPES
    if isinstance(event_type, str) and event_type and event_type not in types:
        return None if _DIFF_KEYS <= frame.keys() else event_type
    return None


def frame_symbol(frame: Any) -> str | None:
    """The symbol an envelope's stream name gives (``btcusdt@depthSnapshot`` -> ``BTCUSDT``), if any: the one a
    tardis.dev snapshot frame, whose data does not name it, belongs to."""
    if isinstance(frame, dict) and isinstance(name := frame.get("stream"), str) and "@" in name:
        symbol = name.split("@", 1)[0]
        return symbol.upper() if symbol and not symbol.startswith("!") else None
    return None
