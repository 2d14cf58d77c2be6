"""USD-M futures ``aggTrade`` and ``bookTicker`` frames, in Binance's own shape: decoded exactly, and ``to_wire``
gives back what was received (all but a ticker's ``T``, which is not stored, as a futures diff's ``T``)."""

from __future__ import annotations

from typing import Any

import pytest

from acts.core.errors import MalformedMessageError
from acts.core.events import BookTicker, Trade, decode_message, to_wire

E_MS = 1_717_171_717_171
RECV_NS = (E_MS + 3) * 1_000_000
#: Binance USD-M ``<symbol>@aggTrade``: aggregate id ``a``, its fills ``f``..``l``; no ``M`` (spot's trade has one).
AGG_TRADE = {"e": "aggTrade", "E": E_MS, "s": "BTCUSDT", "a": 5933014, "p": "67012.10", "q": "0.125",
             "f": 100, "l": 105, "T": E_MS - 1, "m": True}
#: Binance USD-M ``<symbol>@bookTicker``: ``e``, ``u`` (the depth diffs' numbering), ``E`` and ``T``.
FUTURES_TICKER = {"e": "bookTicker", "u": 400900214, "E": E_MS, "T": E_MS - 2, "s": "BTCUSDT",
                  "b": "67012.10", "B": "31.214", "a": "67012.20", "A": "40.66"}


def test_an_agg_trade_decodes_to_a_trade_chained_by_its_aggregate_id() -> None:
    trade = decode_message(AGG_TRADE, RECV_NS)
    assert trade == Trade("BTCUSDT", E_MS, 5933014, "67012.10", "0.125", E_MS - 1, True, RECV_NS, 100, 105)
    assert isinstance(trade, Trade) and trade.aggregate


def test_an_agg_trade_goes_back_to_the_wire_as_received() -> None:
    trade = decode_message(AGG_TRADE, RECV_NS)
    assert to_wire(trade) == AGG_TRADE
    assert list(to_wire(trade)) == list(AGG_TRADE)  # Binance's key order too
    assert decode_message({"stream": "btcusdt@aggTrade", "data": AGG_TRADE}, RECV_NS) == trade


def test_a_spot_trade_stays_a_spot_trade() -> None:
    spot = {"e": "trade", "E": E_MS, "s": "BTCUSDT", "t": 12, "p": "1.00", "q": "2.0", "T": E_MS, "m": False,
            "M": True}
    trade = decode_message(spot, RECV_NS)
    assert isinstance(trade, Trade) and not trade.aggregate and trade.first_trade_id is None
    assert to_wire(trade) == spot


def test_a_futures_book_ticker_keeps_its_event_time_and_drops_only_t() -> None:
    ticker = decode_message(FUTURES_TICKER, RECV_NS)
    assert ticker == BookTicker("BTCUSDT", 400900214, "67012.10", "31.214", "67012.20", "40.66", RECV_NS, E_MS)
    wire = to_wire(ticker)
    assert wire == {k: v for k, v in FUTURES_TICKER.items() if k != "T"}
    assert list(wire) == [k for k in FUTURES_TICKER if k != "T"]


def test_a_spot_book_ticker_has_no_event_time() -> None:
    spot = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000",
            "A": "40.66000000"}
    ticker = decode_message(spot, -1)
    assert isinstance(ticker, BookTicker) and ticker.event_time_ms is None and to_wire(ticker) == spot


@pytest.mark.parametrize(("change", "message"), [
    ({"f": 106}, "aggTrade with f=106 > l=105"),
    ({"a": -1}, "field 'a' must be a non-negative integer"),
    ({"l": None}, "field 'l' must be a non-negative integer"),
    ({"m": "true"}, "aggTrade field 'm' must be true or false"),
    ({"s": None}, "aggTrade without a symbol 's'"),
    ({"q": 0.125}, "field 'q' must be a decimal string"),
])
def test_a_bad_agg_trade_is_one_clear_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedMessageError, match=message):
        decode_message({**AGG_TRADE, **change}, RECV_NS)
