"""``record_to_event`` on trade and bookTicker journal records."""

from __future__ import annotations

import json

import pytest

from acts.core.errors import MalformedMessageError
from acts.core.events import BookTicker, EventKind, Trade
from acts.storage.journal import Channel, JournalRecord
from acts.storage.records import marker_record, record_to_event

RECV = 1_714_521_600 * 10**9
E = RECV // 10**6


def _stream(msg: dict[str, object]) -> JournalRecord:
    return JournalRecord(RECV, Channel.STREAM, "BTCUSDT", json.dumps(msg).encode())


def test_trade_and_book_ticker_frames_become_their_events() -> None:
    trade = record_to_event(_stream({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": E, "s": "BTCUSDT", "t": 7, "p": "65000.10", "q": "0.5", "T": E - 1, "m": True, "M": True}}))
    assert trade == Trade("BTCUSDT", E, 7, "65000.10", "0.5", E - 1, True, RECV)
    ticker = record_to_event(_stream({"u": 9, "s": "BTCUSDT", "b": "1.0", "B": "2", "a": "1.1", "A": "3"}))
    assert ticker == BookTicker("BTCUSDT", 9, "1.0", "2", "1.1", "3", RECV)


@pytest.mark.parametrize("kind", [EventKind.TRADE, EventKind.BOOK_TICKER, EventKind.DEPTH])
def test_a_marker_record_cannot_claim_a_market_kind(kind: EventKind) -> None:
    with pytest.raises(MalformedMessageError, match="marker record"):
        record_to_event(marker_record(kind, "BTCUSDT", RECV))
