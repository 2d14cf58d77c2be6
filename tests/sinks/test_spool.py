"""MongoDB outages through the spool, on a fake clock: spooled while down, no retry while resting,
then one drain in key order without duplicates, and a primary that fails again mid-drain.

Time is ``acts.core.clock.FakeClock`` moved by hand: no test sleeps, none measures elapsed time.
The state machine runs against ``Outage``, a stand-in for ``MongoSink`` (same interface) whose
outage a test switches on and off; the last two tests use a real ``MongoSink``: one at a closed
loopback port, one against the Mongo-wire server.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from acts.core.clock import FakeClock
from acts.core.errors import SinkError
from acts.sinks import MongoSink, SpoolingSink, SqliteSink

RETRY_AFTER_S = 30.0


def entry(minute: int, symbol: str = "BTCUSDT", **values: Any) -> dict[str, Any]:
    return {"symbol": symbol, "minute": f"2024-05-01T00:{minute:02d}:00Z", "valid": True, **values}


def keys(entries: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["minute"], e["symbol"]) for e in entries]


class Outage:
    """Stands in for ``MongoSink`` during an outage: ``write`` raises ``SinkError`` while ``down``.

    ``fail_after`` batches lets that many batches through, then goes down (a server lost mid-drain);
    with ``ack_lost`` the failing batch is stored before the error, as when MongoDB applied a write
    whose answer never came back. ``attempts`` holds the keys of every batch offered, in order.
    """

    def __init__(self, store: SqliteSink) -> None:
        self.store = store
        self.down = True
        self.fail_after: int | None = None
        self.ack_lost = False
        self.attempts: list[list[tuple[str, str]]] = []

    def write(self, entries: Sequence[dict[str, Any]], timeout_s: float | None = None) -> int:
        self.attempts.append(keys(entries))
        if self.fail_after is not None:
            if self.fail_after == 0:
                self.down = True
            self.fail_after -= 1
        if self.down:
            if self.ack_lost:
                self.store.write(entries)
            raise SinkError("cannot write entries to MongoDB at mongodb://127.0.0.1:1: connection refused")
        return self.store.write(entries)

    def read(self, symbols: Sequence[str] | None = None, start: str | None = None,
             end: str | None = None) -> list[dict[str, Any]]:
        return self.store.read(symbols, start, end)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(autojump=False)  # moves only when a test says so


@pytest.fixture
def primary(tmp_path: Path) -> Outage:
    return Outage(SqliteSink(tmp_path / "primary.sqlite"))


def _spooling(tmp_path: Path, primary: Any, clock: FakeClock, batch: int = 2) -> SpoolingSink:
    return SpoolingSink(primary, SqliteSink(tmp_path / "spool.sqlite"), batch=batch, retry_after_s=RETRY_AFTER_S,
                        clock=clock)


def test_while_the_primary_is_down_entries_go_to_the_spool(tmp_path: Path, primary: Outage,
                                                         clock: FakeClock) -> None:
    sink = _spooling(tmp_path, primary, clock)
    assert sink.write([entry(2), entry(0)]) == 2  # no exception: recording must not notice
    assert primary.attempts == [keys([entry(0), entry(2)])] and primary.store.read() == []
    assert keys(sink.spool.read()) == keys([entry(0), entry(2)]) and sink.resting
    assert "connection refused" in (sink.last_error or "")


def test_within_retry_after_no_retry_even_when_the_primary_is_back(tmp_path: Path, primary: Outage,
                                                                   clock: FakeClock) -> None:
    sink = _spooling(tmp_path, primary, clock)
    sink.write([entry(0)])
    primary.down = False  # back, but the spool does not know until it tries again
    for minute in (1, 2, 3):
        clock.advance(RETRY_AFTER_S / 4)  # 7.5, 15, 22.5 s after the failure
        sink.write([entry(minute)])
        assert sink.resting
    clock.advance(RETRY_AFTER_S / 4 - 0.5)  # 29.5 s: still resting
    sink.write([entry(4)])
    assert sink.resting and sink.pending == 5
    assert len(primary.attempts) == 1 and primary.store.read() == []  # only the first, failed try


def test_after_retry_after_one_write_drains_the_spool_in_order_without_duplicates(
        tmp_path: Path, primary: Outage, clock: FakeClock) -> None:
    sink = _spooling(tmp_path, primary, clock)
    sink.write([entry(3), entry(1, "ETHUSDT")])
    clock.advance(1)
    sink.write([entry(0), entry(3, x=1.0)])  # minute 3 again, while down: replaced in the spool
    clock.advance(1)
    sink.write([entry(2)])
    assert sink.pending == 4 and len(primary.attempts) == 1  # one failed try, then resting
    primary.down = False
    clock.advance(RETRY_AFTER_S - 2)  # exactly retry_after_s since the failure
    assert not sink.resting
    sink.write([entry(4)])
    expected = [entry(0), entry(1, "ETHUSDT"), entry(2), entry(3, x=1.0), entry(4)]
    assert primary.attempts[1:] == [keys(expected[0:2]), keys(expected[2:4]), keys(expected[4:])]  # batches of 2
    assert primary.store.read() == expected and sink.pending == 0
    assert sink.last_error is None and not sink.resting


@pytest.mark.parametrize("ack_lost", [False, True], ids=["refused", "applied-but-unanswered"])
def test_a_primary_that_fails_again_mid_drain(tmp_path: Path, primary: Outage, clock: FakeClock,
                                             ack_lost: bool) -> None:
    sink = _spooling(tmp_path, primary, clock)
    spooled = [entry(m) for m in range(5)]
    sink.write(spooled)  # down: all five spooled, resting from t=0
    primary.down, primary.fail_after, primary.ack_lost = False, 1, ack_lost  # one batch, then down again
    clock.advance(RETRY_AFTER_S)
    sink.write([])  # the first write after the rest retries
    assert primary.attempts[1:] == [keys(spooled[0:2]), keys(spooled[2:4])]  # stopped at the failure
    assert keys(sink.spool.read()) == keys(spooled[2:])  # only what the primary accepted left the spool
    assert sink.resting  # rests again from the new failure, not from the first one
    clock.advance(RETRY_AFTER_S - 1)
    sink.write([entry(5)])
    assert len(primary.attempts) == 3 and sink.resting
    primary.down, primary.fail_after = False, None
    clock.advance(1)
    sink.write([])
    assert primary.attempts[3:] == [keys(spooled[2:4]), keys([spooled[4], entry(5)])]  # resumed where it stopped
    assert primary.store.read() == [*spooled, entry(5)] and sink.pending == 0  # upserts: no duplicate either way


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


def test_a_real_mongo_sink_at_a_closed_port_spools_and_rests(tmp_path: Path, clock: FakeClock) -> None:
    dead = MongoSink(f"mongodb://127.0.0.1:{_closed_port()}/?directConnection=true", timeout_ms=100)
    sink = _spooling(tmp_path, dead, clock)
    sink.write([entry(0)], timeout_s=0.1)
    assert sink.pending == 1 and sink.resting and "cannot write entries to MongoDB" in (sink.last_error or "")
    failed = sink.last_error
    clock.advance(RETRY_AFTER_S - 1)
    sink.write([entry(1)])  # resting: spooled without a try (a try would fail again, and take 0.1 s)
    assert sink.pending == 2 and sink.last_error == failed
    sink.close()  # it just failed: no last try; the entries stay on disk for the next run
    assert keys(SqliteSink(tmp_path / "spool.sqlite").read()) == keys([entry(0), entry(1)])


@pytest.mark.mongo
def test_entries_spooled_in_an_outage_reach_the_real_server_in_order(tmp_path: Path, clock: FakeClock,
                                                                     mongo_uri: str) -> None:
    """An outage in one run (a closed port), the server back in the next: the spool drains into it."""
    outage = _spooling(tmp_path, MongoSink(f"mongodb://127.0.0.1:{_closed_port()}/?directConnection=true",
                                           timeout_ms=100), clock)
    outage.write([entry(2), entry(0, "ETHUSDT")], timeout_s=0.1)
    clock.advance(RETRY_AFTER_S)
    outage.write([entry(1), entry(2, x=2.0)], timeout_s=0.1)  # tried again, failed again
    outage.close()
    database = f"t{uuid.uuid4().hex[:12]}"
    back = _spooling(tmp_path, MongoSink(mongo_uri, database=database), clock)
    try:
        back.write([entry(3)])
        assert back.pending == 0 and back.last_error is None
    finally:
        back.close()
    server = MongoSink(mongo_uri, database=database)
    try:
        assert server.read() == [entry(0, "ETHUSDT"), entry(1), entry(2, x=2.0), entry(3)]
    finally:
        server.close()
