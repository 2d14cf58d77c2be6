"""Symbol and time arguments as users type them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from acts.core.errors import BadDateError, InputError
from acts.core.markets import Market

__all__ = [
    "QUOTES",
    "depth_stream",
    "StreamKind",
    "DEFAULT_STREAMS",
    "stream_name",
    "FUTURES_TRADE_STREAM",
    "parse_streams",
    "DEFAULT_QUOTE",
    "normalize_symbol",
    "split_symbol",
    "parse_symbols",
    "parse_time_ms",
    "iso_minute",
    "iso_ms",
    "iso_us",
]

#: Every quote asset Binance spot (and Binance.US: ``USD``) lists or has listed, longest first so that
#: ``split_symbol`` prefers ``FDUSD`` over ``USD``. The one list: symbol parsing and the local exchange's
#: ``exchangeInfo`` both use it.
QUOTES = tuple(sorted(
    {
        # stablecoins and dollar-likes
        "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "USDS", "PAX", "DAI", "UST", "VAI", "AEUR", "EURI",
        "IDRT", "BIDR", "BVND", "BKRW", "GYEN", "USD",
        # crypto quotes
        "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT",
        # fiat
        "EUR", "GBP", "AUD", "TRY", "BRL", "RUB", "UAH", "NGN", "ZAR", "JPY", "ARS", "PLN", "RON", "MXN",
        "COP", "CZK",
    },
    key=lambda q: (-len(q), q),
))
#: The quote a bare base asset gets: ``BTC`` means ``BTCUSDT``.
DEFAULT_QUOTE = "USDT"


def depth_stream(symbol: str) -> str:
    """The diff-depth stream the recorder subscribes to: ``"BTCUSDT"`` -> ``"btcusdt@depth@100ms"``."""
    return f"{symbol.lower()}@depth@100ms"


class StreamKind(StrEnum):
    """A market-data stream of one symbol, as ``--streams`` names it (Binance's own spelling)."""

    DEPTH = "depth"
    TRADE = "trade"
    BOOK_TICKER = "bookTicker"


#: What ``acts record`` subscribes to unless ``--streams`` says otherwise.
DEFAULT_STREAMS = (StreamKind.DEPTH, StreamKind.TRADE)


#: USD-M futures publish no ``@trade`` stream: their trades come only as ``@aggTrade`` (one message per taker
#: order and price, fills ``f``..``l``), stored as trades (kind 7) chained by the aggregate id ``a``.
FUTURES_TRADE_STREAM = "aggTrade"


def stream_name(kind: StreamKind, symbol: str, market: Market = Market.SPOT) -> str:
    """Binance's stream name: ``btcusdt@depth@100ms``, ``btcusdt@trade`` (``btcusdt@aggTrade`` on USD-M
    futures), ``btcusdt@bookTicker``."""
    if kind is StreamKind.DEPTH:
        return depth_stream(symbol)
    if kind is StreamKind.TRADE and market is Market.USDM:
        return f"{symbol.lower()}@{FUTURES_TRADE_STREAM}"
    return f"{symbol.lower()}@{kind.value}"


def parse_streams(text: str, what: str = "--streams") -> tuple[StreamKind, ...]:
    """``"depth,trade"`` -> ``(DEPTH, TRADE)`` (order kept, duplicates dropped, case-insensitive);
    ``InputError`` naming the known streams for anything else. Depth is required: the book is built from it."""
    known = {k.value.lower(): k for k in StreamKind}
    out: list[StreamKind] = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        kind = known.get(item.lower())
        if item.lower() == FUTURES_TRADE_STREAM.lower():
            raise InputError(f"{what} {text!r}: {item!r} is named trade here; with --market usdm it subscribes "
                             f"<symbol>@{FUTURES_TRADE_STREAM} (USD-M has no @trade stream)")
        if kind is None:
            raise InputError(f"{what} {text!r}: unknown stream {item!r}; use some of "
                             f"{','.join(k.value for k in StreamKind)}")
        if kind not in out:
            out.append(kind)
    if StreamKind.DEPTH not in out:
        raise InputError(f"{what} {text!r} must include depth (the book is built from it), like depth,trade")
    return tuple(out)


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"ADARUB"`` -> ``("ADA", "RUB")``; ``("BTC", "")`` for a bare asset (no base before a known quote)."""
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""


def normalize_symbol(text: str) -> str:
    """A full symbol is taken verbatim (``"ethbtc"`` -> ``"ETHBTC"``, ``"ADARUB"``, ``"BTCUSDT"``); only a bare
    base asset gets ``DEFAULT_QUOTE`` (``"btc"`` -> ``"BTCUSDT"``; a quote asset alone, ``"BNB"``, is a base)."""
    symbol = text.strip().upper()
    if not symbol.isalnum():
        raise InputError(f"symbol {text!r} must be letters and digits, like BTC or BTCUSDT")
    if symbol in QUOTES or not split_symbol(symbol)[1]:
        return symbol + DEFAULT_QUOTE
    return symbol


def parse_symbols(parts: list[str] | str | None, what: str = "--symbols") -> list[str]:
    """Comma- or space-separated symbols, normalised, de-duplicated, order kept.

    ``None`` (the option left out) is ``[]``, which callers read as "all"; text that names no symbol
    at all (``","``, ``""``) is an ``InputError``: it must not silently mean "all" too.
    """
    if parts is None:
        return []
    items = parts.split(",") if isinstance(parts, str) else [p for part in parts for p in part.split(",")]
    out: list[str] = []
    for item in items:
        if item.strip() and normalize_symbol(item) not in out:
            out.append(normalize_symbol(item))
    if not out:
        given = parts if isinstance(parts, str) else " ".join(parts)
        raise InputError(f"{what} {given!r} names no symbol; give symbols like BTC,ETH")
    return out


#: ``--from``/``--to`` must lie in ``[EARLIEST, LATEST)``: every day in between can be named and
#: formatted (``9999-12-31T23:59:59-05:00`` is in year 10000 once in UTC, which cannot).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def parse_time_ms(text: str, what: str = "--from") -> int:
    """A UTC date (``2024-05-01``) or ISO time (``2024-05-01T13:30``, ``...Z``, ``...+02:00``) as epoch ms."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadDateError(
            f"{what} {text!r} is not a date; use a UTC date like 2024-05-01 or an ISO time like 2024-05-01T13:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment < LATEST:
        raise BadDateError(f"{what} {text!r} is out of range; use a time from {EARLIEST:%Y-%m-%d} up to "
                           f"(not including) {LATEST:%Y-%m-%d}")
    return int(moment.timestamp() * 1000)


def iso_minute(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_us(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 10**9 // 1000:06d}Z"
