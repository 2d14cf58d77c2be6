"""Exact decimal strings <-> integers.

Binance sends prices and quantities as decimal strings ("65000.01000000", "0.00000000",
"12345678901.00"). ACTS stores each as an integer *mantissa* (the digits, point removed)
plus its *exponent* (the number of decimals), so the original string is rebuilt
byte-for-byte and no binary float ever touches stored data. The book works on one fixed
scale (``BOOK_SCALE`` decimals), which every Binance spot price and quantity fits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from acts.core.errors import PrecisionError

__all__ = ["BOOK_SCALE", "MAX_DIGITS", "parse_decimal", "format_decimal", "to_book", "is_canonical", "check_storable",
           "check_shared_scale"]

#: Decimals of the book's integer prices and quantities: Binance spot never sends more than 8.
BOOK_SCALE = 8
#: Mantissas are int64 in Parquet; 18 digits always fit (2**63 > 9.2e18).
MAX_DIGITS = 18

_CANONICAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_POW10 = [10**k for k in range(MAX_DIGITS + 1)]


def is_canonical(text: str) -> bool:
    """True when ``text`` is a plain decimal that ``format_decimal`` rebuilds exactly."""
    return _CANONICAL.fullmatch(text) is not None


def check_storable(text: str) -> None:
    """``PrecisionError`` unless ``text`` is a plain decimal the segments and the book hold exactly: at most
    ``MAX_DIGITS`` significant digits and at most ``BOOK_SCALE`` decimals (checked where messages enter)."""
    if not is_canonical(text):
        raise PrecisionError(f"{text[:40]!r} is not a plain decimal string like '65000.01000000'")
    whole, _, frac = text.partition(".")
    if len(frac) > BOOK_SCALE:
        raise PrecisionError(f"{text[:40]!r} has {len(frac)} decimals; the book holds at most {BOOK_SCALE}")
    if len(whole) + len(frac) > MAX_DIGITS:  # cheap test first: most values are short
        digits = len((whole + frac).lstrip("0"))
        if digits > MAX_DIGITS:
            raise PrecisionError(f"{text[:40]!r} has {digits} significant digits; at most {MAX_DIGITS} fit an "
                                 "int64 mantissa")


def check_shared_scale(texts: Iterable[str]) -> None:
    """``PrecisionError`` unless storable ``texts`` (see ``check_storable``) all fit an int64 at one scale: the
    finest of their significant decimals. Segments store each event's prices (and quantities) that way."""
    texts = list(texts)
    whole_digits = frac_digits = 0
    for text in texts:
        whole, _, frac = text.partition(".")
        whole_digits = max(whole_digits, len(whole.lstrip("0")))
        frac_digits = max(frac_digits, len(frac.rstrip("0")))
    if whole_digits + frac_digits <= MAX_DIGITS:  # every value < 10**18 at that scale: the common case
        return
    for text in texts:
        whole, _, frac = text.partition(".")
        if int(whole + frac.rstrip("0").ljust(frac_digits, "0")) >= 2**63:
            raise PrecisionError(f"{text[:40]!r} beside a value with {frac_digits} decimals needs more than 18 "
                                 "digits at one scale; such values cannot be stored together exactly")


def parse_decimal(text: str) -> tuple[int, int]:
    """Split ``"65000.01000000"`` into ``(6500001000000, 8)``; reject anything not exact."""
    if not isinstance(text, str) or not is_canonical(text):
        raise PrecisionError(f"{text!r} is not a plain decimal string like '65000.01000000'")
    whole, _, frac = text.partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    if len(digits) > MAX_DIGITS:
        raise PrecisionError(
            f"{text!r} has {len(digits)} significant digits; at most {MAX_DIGITS} fit an int64 mantissa"
        )
    return int(whole + frac), len(frac)


def format_decimal(mantissa: int, exponent: int) -> str:
    """Inverse of ``parse_decimal``: ``(6500001000000, 8) -> "65000.01000000"``."""
    if exponent == 0:
        return str(mantissa)
    digits = str(mantissa).rjust(exponent + 1, "0")
    return f"{digits[:-exponent]}.{digits[-exponent:]}"


def to_book(text: str) -> int:
    """The value of a canonical decimal string as an integer at ``BOOK_SCALE`` decimals."""
    whole, dot, frac = text.partition(".")
    if not dot:
        return int(whole) * _POW10[BOOK_SCALE]
    extra = len(frac) - BOOK_SCALE
    if extra <= 0:
        return int(whole + frac) * _POW10[-extra]
    if frac[BOOK_SCALE:].strip("0"):
        raise PrecisionError(f"{text!r} has more than {BOOK_SCALE} significant decimals")
    return int(whole + frac[:BOOK_SCALE])
