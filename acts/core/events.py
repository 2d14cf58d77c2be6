"""Typed events: what the exchange sent, plus when we received it.

Every stored event carries both clocks: the exchange's event time ``E`` (ms, depth
updates only) and the local receive time (ns). Markers (connect, disconnect, gap,
resync) are events too, so a recording says what happened to the connection.

``decode_message`` is the one decoder for Binance wire messages; ``to_wire`` is its
inverse, so a stored event re-serializes to the exact strings the exchange sent. It is also
where values enter: anything the segments or the book cannot hold exactly (a price with more
than 18 significant digits or more than 8 decimals, an update id >= 2**63) and any event time
that cannot be true (outside 2017..2100, or more than ``MAX_EVENT_SKEW_MS`` from the local
receive time) is a ``MalformedMessageError`` here, so import, journal roll and recovery, and
live ingest all quarantine the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Generic, TypeAlias, TypeVar

from acts.core.decimals import check_shared_scale, check_storable
from acts.core.errors import MalformedMessageError, PrecisionError

__all__ = [
    "EventKind",
    "Side",
    "ResyncReason",
    "DisconnectReason",
    "Level",
    "Levels",
    "LevelsT",
    "DepthUpdate",
    "Snapshot",
    "Trade",
    "BookTicker",
    "Marker",
    "Event",
    "MarketEvent",
    "decode_message",
    "check_event_time",
    "MAX_UPDATE_ID",
    "MIN_TIME_MS",
    "MAX_TIME_MS",
    "MAX_EVENT_SKEW_MS",
    "to_wire",
    "marker",
]


#: Update ids are int64 columns in segments.
MAX_UPDATE_ID = 2**63 - 1
#: Plausible times, ms since the epoch: 2017-01-01 (before Binance opened) .. 2100-01-01 UTC. An ``E`` in
#: microseconds or seconds falls outside, as does any receive time a capture's clock cannot have had.
MIN_TIME_MS = 1_483_228_800_000
MAX_TIME_MS = 4_102_444_800_000
#: An event time further than this from its local receive time is malformed (10 minutes). A fixed rule,
#: not a setting: live ingest, the journal roll, crash recovery and import must all judge a message alike
#: (live == replay). The local exchange keeps its sped-up clock within it (``acts/exchange/server.py``).
MAX_EVENT_SKEW_MS = 600_000


class EventKind(IntEnum):
    """Stored in the ``kind`` column; values are part of the segment format."""

    DEPTH = 0
    SNAPSHOT = 1
    CONNECT = 2
    DISCONNECT = 3
    GAP = 4
    RESYNC = 5
    RESTART = 6  #: the recorder process started: nothing it knew before carries over
    TRADE = 7  #: one ``<symbol>@trade`` message (spot) or ``<symbol>@aggTrade`` message (USD-M futures)
    BOOK_TICKER = 8  #: one ``<symbol>@bookTicker`` message: the exchange's own best bid/ask at update id ``u``


class Side(IntEnum):
    """Which side a level is on. Stored in the ``side`` column (null: a row without a level); values are
    part of the segment format, and the fast path's row arrays use them too (-1: no level)."""

    BID = 0
    ASK = 1


class ResyncReason(StrEnum):
    """Why a ``RESYNC`` marker asks for a snapshot (its ``reason`` detail)."""

    #: The update-id chain broke (a ``Gap`` or a ``StaleSnapshot``).
    GAP = "gap"
    #: The book has no snapshot yet (after a connect or a restart).
    SYNC = "sync"
    #: A periodic snapshot of a live book: a checkpoint replay can start from.
    CHECKPOINT = "checkpoint"
    #: The book was crossed (best bid >= best ask) after a diff: corrupt until a new snapshot.
    CROSSED = "crossed"
    #: The book's best bid/ask differed from a ``bookTicker`` at the same update id: corrupt until a new snapshot.
    BBO_MISMATCH = "bbo_mismatch"


class DisconnectReason(StrEnum):
    """``reason`` details of ``DISCONNECT`` markers the recorder writes itself; any other reason is the
    connection error's own text (``"ConnectionClosed: ..."``)."""

    #: The recorder is stopping.
    SHUTDOWN = "shutdown"
    #: No frame for longer than the stall timeout.
    STALE_FEED = "stale feed"


#: One price level as the exchange spelled it: ``("65000.01000000", "0.50000000")``.
Level: TypeAlias = tuple[str, str]
#: One side's levels as the exchange spelled them: the reference representation, what every reader but
#: the fast path's gives (``storage.segments``, the journal, import).
Levels: TypeAlias = tuple[Level, ...]
#: How an event holds one side's levels. ``Levels`` (strings) everywhere but the fast path, whose
#: reader (``storage.columnar``) gives book-scale integer arrays ``(prices, quantities)`` instead,
#: for ``book.arraybook.ArrayBook``; the book that applies an event takes the same type
#: (``book.protocol.BookLike``).
LevelsT = TypeVar("LevelsT")


@dataclass(frozen=True, slots=True)
class DepthUpdate(Generic[LevelsT]):
    """A ``depthUpdate`` diff: absolute quantities for the levels that changed in ``[U, u]``."""

    symbol: str
    event_time_ms: int  # E
    first_update_id: int  # U
    final_update_id: int  # u
    bids: LevelsT
    asks: LevelsT
    recv_ns: int
    #: ``pu`` of a USD-M futures diff: the previous diff's ``u`` (None on spot, which has no ``pu``).
    prev_final_update_id: int | None = None

    @property
    def kind(self) -> EventKind:
        return EventKind.DEPTH


@dataclass(frozen=True, slots=True)
class Snapshot(Generic[LevelsT]):
    """A REST ``/api/v3/depth`` answer for one symbol."""

    symbol: str
    last_update_id: int
    bids: LevelsT
    asks: LevelsT
    recv_ns: int

    @property
    def kind(self) -> EventKind:
        return EventKind.SNAPSHOT


@dataclass(frozen=True, slots=True)
class Trade:
    """A spot ``trade`` message (one fill) or a USD-M futures ``aggTrade`` message (the fills ``f``..``l`` of
    one taker order at one price). ``buyer_is_maker`` (``m``) false means the buyer was the taker.
    Price and quantity stay the exchange's strings, as levels do."""

    symbol: str
    event_time_ms: int  # E
    #: ``t`` (spot) or the aggregate id ``a`` (futures): consecutive per symbol either way, so a jump is a
    #: trade gap.
    trade_id: int
    price: str  # p
    qty: str  # q
    trade_time_ms: int  # T: the interval a trade belongs to
    buyer_is_maker: bool  # m
    recv_ns: int
    #: ``f`` and ``l`` of an ``aggTrade``: its first and last fill's trade id (None on a spot ``trade``, which
    #: is one fill). Whether they are set says which message it was.
    first_trade_id: int | None = None
    last_trade_id: int | None = None

    @property
    def kind(self) -> EventKind:
        return EventKind.TRADE

    @property
    def aggregate(self) -> bool:
        """An ``aggTrade`` (USD-M futures), not a spot ``trade``."""
        return self.first_trade_id is not None


@dataclass(frozen=True, slots=True)
class BookTicker:
    """A ``bookTicker`` message: the exchange's best bid and ask as of update id ``u``. Spot sends no
    event time (``event_time_ms`` None); futures do (and a transaction time ``T``, not kept: as a futures
    diff's ``T``, it is not stored). A futures ticker's ``u`` is on its depth diffs' numbering."""

    symbol: str
    update_id: int  # u
    bid_price: str  # b
    bid_qty: str  # B
    ask_price: str  # a
    ask_qty: str  # A
    recv_ns: int
    event_time_ms: int | None = None  # E (futures only)

    @property
    def kind(self) -> EventKind:
        return EventKind.BOOK_TICKER


@dataclass(frozen=True, slots=True)
class Marker:
    """Something that happened to the feed: connect, disconnect, gap, resync or a recorder restart.

    ``detail`` is a short JSON object (e.g. ``{"expected": 11, "got": 15}``), kept as text so
    new details need no format change.
    """

    kind: EventKind
    symbol: str
    recv_ns: int
    detail: str = "{}"


#: A stored event with its levels as the exchange spelled them.
Event: TypeAlias = DepthUpdate[Levels] | Snapshot[Levels] | Trade | BookTicker | Marker
#: What ``decode_message`` gives: an event the exchange sent (not a marker).
MarketEvent: TypeAlias = DepthUpdate[Levels] | Snapshot[Levels] | Trade | BookTicker


def marker(kind: EventKind, symbol: str, recv_ns: int, **detail: Any) -> Marker:
    """Build a marker with its details serialized deterministically (sorted keys)."""
    return Marker(kind, symbol, recv_ns, json.dumps(detail, sort_keys=True, separators=(",", ":")))


def _levels(raw: Any, what: str) -> Levels:
    if not isinstance(raw, list):
        raise MalformedMessageError(f"{what} must be a list of [price, qty] pairs, got {type(raw).__name__}")
    out = []
    for pair in raw:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str)
        ):
            raise MalformedMessageError(f"{what} entry {pair!r} is not a [price, qty] pair of strings")
        try:
            check_storable(pair[0])
            check_storable(pair[1])
        except PrecisionError as exc:
            raise MalformedMessageError(f"{what} entry {pair!r}: {exc}") from None
        out.append((pair[0], pair[1]))
    return tuple(out)


def _int_field(msg: dict[str, Any], key: str) -> int:
    value = msg.get(key)
    if type(value) is not int or value < 0:
        raise MalformedMessageError(f"field {key!r} must be a non-negative integer, got {_short(value)}")
    if value > MAX_UPDATE_ID:
        raise MalformedMessageError(f"field {key!r} = {_short(value)} does not fit int64 (at most 2**63-1)")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def check_event_time(event_time_ms: int, recv_ns: int, max_skew_ms: int | None = MAX_EVENT_SKEW_MS) -> None:
    """``MalformedMessageError`` unless ``E`` lies in 2017..2100 and, when the receive time is known
    (``recv_ns >= 0``), within ``max_skew_ms`` of it (``None``: no skew check)."""
    if not MIN_TIME_MS <= event_time_ms < MAX_TIME_MS:
        raise MalformedMessageError(f"event time E={_short(event_time_ms)} is not a time in 2017..2100 "
                                    "(ms since the epoch)")
    if max_skew_ms is not None and recv_ns >= 0:
        skew = event_time_ms - recv_ns // 1_000_000
        if abs(skew) > max_skew_ms:
            where = "ahead of" if skew > 0 else "behind"
            raise MalformedMessageError(f"event time E={event_time_ms} is {abs(skew) / 1000:.0f} s {where} its "
                                        f"receive time; at most {max_skew_ms / 1000:.0f} s is believable")


def _symbol(value: Any, missing: str) -> str:
    """A symbol as stored: letters and digits only. It names folders and files (``symbol=BTCUSDT/``), so
    ``BTCU/DT`` or ``../X`` must never get that far, and it must be a name every command accepts."""
    if not isinstance(value, str) or not value:
        raise MalformedMessageError(missing)
    if not value.isalnum() or len(value) > 40:
        raise MalformedMessageError(f"symbol {value[:50]!r} is not letters and digits like BTCUSDT")
    return value


def decode_message(msg: Any, recv_ns: int, symbol: str | None = None,
                   max_skew_ms: int | None = MAX_EVENT_SKEW_MS) -> MarketEvent:
    """Decode one parsed Binance message into a typed event.

    Accepts a raw ``depthUpdate`` (spot, or USD-M futures with ``pu``), ``trade``, ``aggTrade`` (USD-M
    futures), ``bookTicker`` (spot's without ``e``/``E``, futures' with ``e``, ``E`` and ``T``), a
    combined-stream wrapper ``{"stream", "data"}`` and a REST depth snapshot (``symbol`` is then
    required, as the snapshot does not name it). ``recv_ns`` < 0 means the receive time is not known
    (no skew check).
    Raises ``MalformedMessageError`` naming what is wrong, including values that cannot be stored
    exactly and event times that cannot be true (see the module docstring).
    """
    if not isinstance(msg, dict):
        raise MalformedMessageError(f"expected a JSON object, got {type(msg).__name__}")
    if "stream" in msg and "data" in msg:
        return decode_message(msg["data"], recv_ns, symbol, max_skew_ms)
    event_type = msg.get("e")
    if event_type == "depthUpdate":
        return _decode_depth(msg, recv_ns, max_skew_ms)
    if event_type == "trade":
        return _decode_trade(msg, recv_ns, max_skew_ms)
    if event_type == "aggTrade":
        return _decode_agg_trade(msg, recv_ns, max_skew_ms)
    if event_type == "bookTicker" or (event_type is None and "u" in msg and "b" in msg and "A" in msg):
        return _decode_book_ticker(msg, recv_ns, max_skew_ms)
    if "lastUpdateId" in msg:
        sym = _symbol(msg.get("symbol", symbol), "depth snapshot without a symbol (pass --symbol)")
        bids, asks = _levels(msg.get("bids"), "bids"), _levels(msg.get("asks"), "asks")
        _check_shared_scales(bids, asks, "snapshot")
        return Snapshot(sym, _int_field(msg, "lastUpdateId"), bids, asks, recv_ns)
    raise MalformedMessageError(
        f"unknown message type {event_type!r}" if event_type else f"unrecognised message with keys {sorted(msg)[:6]}"
    )


def _decode_depth(msg: dict[str, Any], recv_ns: int, max_skew_ms: int | None) -> DepthUpdate[Levels]:
    sym = _symbol(msg.get("s"), "depthUpdate without a symbol 's'")
    first, final = _int_field(msg, "U"), _int_field(msg, "u")
    if first > final:
        raise MalformedMessageError(f"depthUpdate with U={first} > u={final}")
    prev = _int_field(msg, "pu") if "pu" in msg else None
    event_time = _int_field(msg, "E")
    check_event_time(event_time, recv_ns, max_skew_ms)
    bids, asks = _levels(msg.get("b"), "b"), _levels(msg.get("a"), "a")
    _check_shared_scales(bids, asks, "depthUpdate")
    return DepthUpdate(sym, event_time, first, final, bids, asks, recv_ns, prev)


def _decode_trade(msg: dict[str, Any], recv_ns: int, max_skew_ms: int | None) -> Trade:
    sym, event_time, trade_time, buyer_is_maker = _trade_head(msg, recv_ns, max_skew_ms, "trade")
    return Trade(sym, event_time, _int_field(msg, "t"), _decimal_field(msg, "p"), _decimal_field(msg, "q"),
                 trade_time, buyer_is_maker, recv_ns)


def _decode_agg_trade(msg: dict[str, Any], recv_ns: int, max_skew_ms: int | None) -> Trade:
    sym, event_time, trade_time, buyer_is_maker = _trade_head(msg, recv_ns, max_skew_ms, "aggTrade")
    first, last = _int_field(msg, "f"), _int_field(msg, "l")
    if first > last:
        raise MalformedMessageError(f"aggTrade with f={first} > l={last}")
    return Trade(sym, event_time, _int_field(msg, "a"), _decimal_field(msg, "p"), _decimal_field(msg, "q"),
                 trade_time, buyer_is_maker, recv_ns, first, last)


def _trade_head(msg: dict[str, Any], recv_ns: int, max_skew_ms: int | None, what: str) -> tuple[str, int, int, bool]:
    """What a ``trade`` and an ``aggTrade`` share: symbol, ``E``, ``T`` and ``m``, checked."""
    sym = _symbol(msg.get("s"), f"{what} without a symbol 's'")
    event_time, trade_time = _int_field(msg, "E"), _int_field(msg, "T")
    check_event_time(event_time, recv_ns, max_skew_ms)
    check_event_time(trade_time, recv_ns, max_skew_ms)
    buyer_is_maker = msg.get("m")
    if type(buyer_is_maker) is not bool:
        raise MalformedMessageError(f"{what} field 'm' must be true or false, got {_short(buyer_is_maker)}")
    return sym, event_time, trade_time, buyer_is_maker


def _decode_book_ticker(msg: dict[str, Any], recv_ns: int, max_skew_ms: int | None) -> BookTicker:
    sym = _symbol(msg.get("s"), "bookTicker without a symbol 's'")
    event_time = None
    if "E" in msg:
        event_time = _int_field(msg, "E")
        check_event_time(event_time, recv_ns, max_skew_ms)
    bid, bid_qty, ask, ask_qty = (_decimal_field(msg, key) for key in ("b", "B", "a", "A"))
    _check_shared_scale((bid, ask), "bookTicker prices")
    _check_shared_scale((bid_qty, ask_qty), "bookTicker quantities")
    return BookTicker(sym, _int_field(msg, "u"), bid, bid_qty, ask, ask_qty, recv_ns, event_time)


def _decimal_field(msg: dict[str, Any], key: str) -> str:
    value = msg.get(key)
    if not isinstance(value, str):
        raise MalformedMessageError(f"field {key!r} must be a decimal string, got {_short(value)}")
    try:
        check_storable(value)
    except PrecisionError as exc:
        raise MalformedMessageError(f"field {key!r}: {exc}") from None
    return value


def _check_shared_scales(bids: Levels, asks: Levels, what: str) -> None:
    _check_shared_scale([p for p, _ in bids] + [p for p, _ in asks], f"{what} prices")
    _check_shared_scale([q for _, q in bids] + [q for _, q in asks], f"{what} quantities")


def _check_shared_scale(texts: Sequence[str], what: str) -> None:
    """A segment stores one event's prices (and its quantities) as int64 at one scale: refuse at the door
    an event whose values cannot share one (``1e16`` beside ``1e-8``), so the roll never meets it."""
    try:
        check_shared_scale(texts)
    except PrecisionError as exc:
        raise MalformedMessageError(f"{what}: {exc}") from None


def to_wire(event: MarketEvent) -> dict[str, Any]:
    """The Binance JSON object for an event (inverse of ``decode_message``)."""
    if isinstance(event, DepthUpdate):
        wire: dict[str, Any] = {
            "e": "depthUpdate",
            "E": event.event_time_ms,
            "s": event.symbol,
            "U": event.first_update_id,
            "u": event.final_update_id,
        }
        if event.prev_final_update_id is not None:
            wire["pu"] = event.prev_final_update_id
        wire["b"] = [list(level) for level in event.bids]
        wire["a"] = [list(level) for level in event.asks]
        return wire
    if isinstance(event, Trade) and event.aggregate:
        return {"e": "aggTrade", "E": event.event_time_ms, "s": event.symbol, "a": event.trade_id, "p": event.price,
                "q": event.qty, "f": event.first_trade_id, "l": event.last_trade_id, "T": event.trade_time_ms,
                "m": event.buyer_is_maker}
    if isinstance(event, Trade):
        return {"e": "trade", "E": event.event_time_ms, "s": event.symbol, "t": event.trade_id, "p": event.price,
                "q": event.qty, "T": event.trade_time_ms, "m": event.buyer_is_maker, "M": True}
    if isinstance(event, BookTicker):
        if event.event_time_ms is not None:  # futures, in Binance's key order (T is not stored)
            return {"e": "bookTicker", "u": event.update_id, "E": event.event_time_ms, "s": event.symbol,
                    "b": event.bid_price, "B": event.bid_qty, "a": event.ask_price, "A": event.ask_qty}
        return {"u": event.update_id, "s": event.symbol, "b": event.bid_price, "B": event.bid_qty,
                "a": event.ask_price, "A": event.ask_qty}
    return {
        "lastUpdateId": event.last_update_id,
        "bids": [list(level) for level in event.bids],
        "asks": [list(level) for level in event.asks],
    }
