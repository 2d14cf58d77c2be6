"""Symbol and time arguments as users type them."""

from __future__ import annotations

from datetime import UTC, datetime

from acts.errors import BadDateError, InputError

__all__ = ["normalize_symbol", "parse_symbols", "parse_time_ms", "iso_minute", "iso_ms", "iso_us"]

#: Quote assets recognised at the end of a symbol; a bare base asset gets ``DEFAULT_QUOTE``.
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY")
DEFAULT_QUOTE = "USDT"


def normalize_symbol(text: str) -> str:
    """``"btc"`` -> ``"BTCUSDT"``; ``"ethbtc"`` -> ``"ETHBTC"``; ``"BTCUSDT"`` unchanged."""
    symbol = text.strip().upper()
    if not symbol.isalnum():
        raise InputError(f"symbol {text!r} must be letters and digits, like BTC or BTCUSDT")
    if any(symbol.endswith(q) and len(symbol) > len(q) for q in QUOTES):
        return symbol
    return symbol + DEFAULT_QUOTE


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
