"""The recorder's decisions, driven directly: inputs with made-up times in, actions out.

Nothing here sleeps, opens a socket or reads a clock: time is the number each input is given.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from acts.book.sequencer import BboChecked, Gap, Noted
from acts.core.errors import ExchangeError
from acts.core.events import EventKind
from acts.recorder.config import RecorderConfig
from acts.recorder.ingest import Ingested
from acts.recorder.session import (
    FOLD_SKIP_REASON,
    Action,
    Close,
    Connect,
    FetchSnapshot,
    FlushJournal,
    HandOver,
    JournalAndFold,
    Log,
    Reconnect,
    RecorderSession,
    SkipFolds,
    Stop,
    Wait,
    WriteMarker,
)
from acts.recorder.transport import RestFailure
from acts.storage.journal import Channel, JournalRecord

SYMBOLS = ("BTCUSDT", "ETHUSDT")
HOUR = 3600.0
BASE = RecorderConfig(SYMBOLS, Path("unused"), ("mid",), reconnect_delay_s=1.0, backoff_max_s=60.0,
                      stale_after_s=10.0)


def session(**changes: Any) -> RecorderSession:
    return RecorderSession(replace(BASE, **changes))


def started(**changes: Any) -> tuple[RecorderSession, int]:
    """A started session and its first connection's id."""
    s = session(**changes)
    (connect,) = [a for a in s.start(0.0) if isinstance(a, Connect)]
    s.connection_opened(connect.connection, 0.0)
    return s, connect.connection


T0_MS = 1_700_000_000_000


def diff(n: int, symbol: str = "BTCUSDT") -> JournalRecord:
    data = {"e": "depthUpdate", "E": T0_MS + n, "s": symbol, "U": 10 * n, "u": 10 * n + 9, "b": [], "a": []}
    payload = json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data}).encode()
    return JournalRecord((T0_MS + n) * 1_000_000, Channel.STREAM, "", payload)


def of(actions: list[Action], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def markers(actions: list[Action], kind: EventKind) -> list[WriteMarker]:
    return [a for a in of(actions, WriteMarker) if a.kind is kind]


# --- start and connections --------------------------------------------------------------------


def test_start_marks_a_restart_then_connects_each_group() -> None:
    s = session(symbols=("A", "B", "C"), streams_per_connection=2)
    actions = s.start(0.0)
    assert actions[0] == WriteMarker(EventKind.RESTART, ("A", "B", "C"))
    assert [a.symbols for a in of(actions, Connect)] == [("A", "B"), ("C",)]
    assert s.connection_opened(1, 0.5) == [WriteMarker(EventKind.CONNECT, ("A", "B"), (("streams", 2),))]


def test_a_stall_reconnects_after_the_constant_delay_and_counts_no_failure() -> None:
    s, conn = started(reconnect_delay_s=0.2, max_retries=0)
    for _ in range(3):  # stalls never exhaust max_retries
        actions = s.connection_failed(conn, 10.0, "", stalled=True)
        (reconnect,) = of(actions, Reconnect)
        assert (reconnect.after_s, reconnect.reason, reconnect.replaces) == (0.2, "stale feed", conn)
        assert markers(actions, EventKind.DISCONNECT)[0].detail == (("reason", "stale feed"),)
        conn = reconnect.connection
        s.connection_opened(conn, 10.2)


@pytest.mark.parametrize(("delay", "cap", "max_retries", "expected"), [
    (1.0, 60.0, None, [1, 2, 4, 8, 16, 32, 60, 60, 60]),  # exponential, capped, forever
    (0.2, 1.0, None, [0.2, 0.4, 0.8, 1.0, 1.0]),
    (1.0, 60.0, 3, [1, 2, 4, "stop"]),  # the 4th failure is one more than max_retries
    (1.0, 60.0, 0, ["stop"]),
])
def test_the_backoff_schedule(delay: float, cap: float, max_retries: int | None, expected: list[object]) -> None:
    s, conn = started(reconnect_delay_s=delay, backoff_max_s=cap, max_retries=max_retries)
    got: list[object] = []
    for _ in expected:
        actions = s.connection_failed(conn, 1.0, "OSError: refused")
        assert markers(actions, EventKind.DISCONNECT), "every failure is marked"
        if of(actions, Stop):
            (stop,) = of(actions, Stop)
            assert isinstance(stop.failure, ExchangeError) and "gave up after" in str(stop.failure)
            got.append("stop")
            break
        (reconnect,) = of(actions, Reconnect)
        got.append(reconnect.after_s)
        conn = reconnect.connection
    assert got == expected


def test_a_failure_while_stopping_does_not_reconnect() -> None:
    s, conn = started()
    s.stop()
    assert s.connection_failed(conn, 1.0, "OSError") == []


# --- handover ----------------------------------------------------------------------------------


def test_a_connection_is_handed_over_at_23_5_hours_without_loss() -> None:
    s, old = started()
    assert s.frame(old, diff(1), 23.5 * HOUR - 0.1) == [JournalAndFold(diff(1))]
    actions = s.frame(old, diff(2), 23.5 * HOUR)
    assert actions[0] == JournalAndFold(diff(2))
    (handover,) = of(actions, HandOver)
    assert (handover.old, handover.reason) == (old, "connection age")
    new = handover.new
    assert s.frame(old, diff(3), 23.5 * HOUR + 1) == [JournalAndFold(diff(3))]  # no second handover
    s.connection_opened(new, 23.5 * HOUR + 1)
    assert s.frame(new, diff(5), 23.5 * HOUR + 2) == []  # ahead of the old one: held, so 4 comes first
    assert s.frame(old, diff(4), 23.5 * HOUR + 2) == [JournalAndFold(diff(4))]
    assert s.frame(old, diff(5), 23.5 * HOUR + 2) == [JournalAndFold(diff(5)), JournalAndFold(diff(5)), Close(old)]
    assert s.frame(new, diff(6), 23.5 * HOUR + 3) == [JournalAndFold(diff(6))]  # the new one is the feed
    assert s.connection_failed(old, 23.5 * HOUR + 3, "closed") == []  # closing the old one is no failure
    # The successor hands over again 23.5 h after it opened, not before.
    assert not of(s.frame(new, diff(7), 47.0 * HOUR), HandOver)
    assert of(s.frame(new, diff(8), 47.0 * HOUR + 1), HandOver)


def test_server_shutdown_hands_over_at_once() -> None:
    s, old = started()
    notice = JournalRecord(5, Channel.STREAM, "", b'{"e":"serverShutdown","E":5}')
    actions = s.frame(old, notice, 60.0)
    assert not of(actions, JournalAndFold)  # the notice is not a market frame
    (handover,) = of(actions, HandOver)
    assert handover.reason == "serverShutdown"
    assert not of(s.frame(old, notice, 61.0), HandOver)  # one handover at a time


def test_an_error_during_the_handover_lets_the_successor_take_over() -> None:
    s, old = started()
    (handover,) = of(s.frame(old, JournalRecord(5, Channel.STREAM, "", b'{"e":"serverShutdown"}'), 1.0), HandOver)
    s.frame(handover.new, diff(7), 2.0)  # held
    actions = s.connection_failed(old, 3.0, "ConnectionClosedError: boom")
    assert not of(actions, Reconnect)
    assert markers(actions, EventKind.DISCONNECT) and JournalAndFold(diff(7)) in actions


# --- folds, gaps, snapshots -----------------------------------------------------------------


def test_a_gap_writes_a_marker_at_the_frames_time_and_asks_for_one_snapshot() -> None:
    from acts.storage.records import record_to_event

    s, _ = started()
    event = record_to_event(diff(3))
    gap = Ingested("BTCUSDT", event, Gap(expected=20, got=30), needs_snapshot=True)
    actions = s.folded(gap, 5.0)
    (marker,) = markers(actions, EventKind.GAP)
    assert marker.recv_ns == event.recv_ns and dict(marker.detail) == {"expected": 20, "got": 30}
    assert dict(markers(actions, EventKind.RESYNC)[0].detail) == {"reason": "gap"}
    assert of(actions, FetchSnapshot) == [FetchSnapshot("BTCUSDT", 1000)]
    assert s.folded(gap, 5.1) == [Log(logging.WARNING, "gap: expected U=20, got 30", "BTCUSDT"),
                                  WriteMarker(EventKind.GAP, ("BTCUSDT",), (("expected", 20), ("got", 30)),
                                              event.recv_ns)]  # one snapshot in flight per symbol
    record = JournalRecord(6, Channel.SNAPSHOT, "BTCUSDT", b"{}")
    assert s.snapshot_received(record, 6.0)[0] == JournalAndFold(record)
    assert of(s.folded(Ingested("BTCUSDT", needs_snapshot=True), 7.0), FetchSnapshot)  # a new request may go


def test_a_crossed_book_resyncs_and_says_why() -> None:
    from acts.book.sequencer import Crossed
    from acts.storage.records import record_to_event

    s, _ = started()
    crossed = Ingested("BTCUSDT", record_to_event(diff(3)), Crossed(3), needs_snapshot=True)
    actions = s.folded(crossed, 5.0)
    assert Log(logging.WARNING, "crossed book after update 3: resyncing", "BTCUSDT") in actions
    assert dict(markers(actions, EventKind.RESYNC)[0].detail) == {"reason": "crossed"}
    assert of(actions, FetchSnapshot) == [FetchSnapshot("BTCUSDT", 1000)]


def _ask(s: RecorderSession, now: float, symbol: str = "BTCUSDT") -> list[Action]:
    return s.folded(Ingested(symbol, needs_snapshot=True), now)


def _fetches_until(s: RecorderSession, start: float, end: float, step: float = 0.5) -> list[float]:
    """Tick every ``step`` from ``start`` to ``end``: the times a FetchSnapshot went out."""
    out: list[float] = []
    now = start
    while now <= end:
        out += [now for _ in of(s.tick(now), FetchSnapshot)]
        now += step
    return out


@pytest.mark.parametrize(("status", "retry_after", "first_retry"), [
    (429, 30.0, 30.0),  # as long as the exchange asks, not the 1 s backoff
    (418, 120.0, 120.0),
    (429, None, 60.0),  # no Retry-After: a minute
    (500, None, 1.0),  # server errors: the backoff
    (None, None, 1.0),  # no answer (timeout, refused)
])
def test_retry_after_and_backoff_of_snapshots(status: int | None, retry_after: float | None,
                                              first_retry: float) -> None:
    s, _ = started(journal_flush_s=HOUR, health_every_s=HOUR)  # no timer due before the retry
    assert of(_ask(s, 0.0), FetchSnapshot)
    actions = s.snapshot_failed("BTCUSDT", 0.0, RestFailure("x", status, retry_after))
    assert of(actions, Wait) == [Wait(first_retry)]  # the shell is told when to tick next
    assert _fetches_until(s, 0.5, first_retry + 5) == [first_retry]


def test_a_ban_holds_back_every_symbol() -> None:
    s, _ = started()
    _ask(s, 0.0)
    s.snapshot_failed("BTCUSDT", 0.0, RestFailure("x", 429, 30.0))
    assert not of(_ask(s, 1.0, "ETHUSDT"), FetchSnapshot)
    assert _fetches_until(s, 1.0, 40.0) == [30.0, 30.0]


@pytest.mark.parametrize(("failure", "max_retries", "attempts"), [
    (RestFailure("bad request", 400), None, 1),  # a client error is not retried
    (RestFailure("bug", transient=False), None, 1),
    (RestFailure("down", 503), 2, 3),  # max_retries retries after the first attempt
    (RestFailure("down", 503), 0, 1),
])
def test_snapshots_give_up(failure: RestFailure, max_retries: int | None, attempts: int) -> None:
    s, _ = started(max_retries=max_retries)
    now, sent = 0.0, of(_ask(s, 0.0), FetchSnapshot)
    while sent:
        actions = s.snapshot_failed("BTCUSDT", now, failure)
        sent = []
        for _ in range(200):
            now += 0.5
            sent += of(s.tick(now), FetchSnapshot)
            if sent:
                break
        attempts -= 1
    assert attempts == 0
    assert any(isinstance(a, Log) and a.message.startswith("snapshot failed") for a in actions)
    assert of(_ask(s, now + 1), FetchSnapshot), "given up: the next need asks again"


def test_the_weight_budget_spreads_snapshots_over_the_minute() -> None:
    symbols = ("A", "B", "C", "D", "E")
    s, _ = started(symbols=symbols, weight_per_minute=100,  # limit 1000: weight 50, two a minute
                   journal_flush_s=HOUR, health_every_s=HOUR)
    sent = [now for symbol in symbols for now in [0.0] if of(_ask(s, now, symbol), FetchSnapshot)]
    assert sent == [0.0, 0.0]
    assert s.next_deadline(0.0) == 60.0
    assert _fetches_until(s, 0.5, 150.0) == [60.0, 60.0, 120.0]


# --- timers -----------------------------------------------------------------------------------


def _timeline(s: RecorderSession, end: float, step: float) -> list[tuple[float, str]]:
    out = []
    now = 0.0
    while now <= end:
        for a in s.tick(now):
            out.append((now, type(a).__name__))
            if isinstance(a, FetchSnapshot):  # answered at once
                s.snapshot_received(JournalRecord(1, Channel.SNAPSHOT, a.symbol, b"{}"), now)
        now = round(now + step, 6)
    return out


def test_the_journal_is_flushed_every_second_frames_or_not() -> None:
    s = session()
    s.start(0.0)
    flushes = [t for t, name in _timeline(s, 5.0, 0.25) if name == "FlushJournal"]
    assert flushes == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_checkpoint_roll_and_health_timers() -> None:
    s = session(snapshot_every_s=HOUR, roll_every_s=HOUR, health_every_s=60.0, journal_flush_s=HOUR)
    s.start(0.0)
    timeline = _timeline(s, 2 * HOUR, 30.0)
    assert [t for t, name in timeline if name == "RollJournal"] == [HOUR, 2 * HOUR]
    assert [t for t, name in timeline if name == "LogHealth"] == [60.0 * k for k in range(1, 121)]
    checkpoints = [t for t, name in timeline if name == "FetchSnapshot"]
    assert checkpoints == [HOUR, HOUR, 2 * HOUR, 2 * HOUR]  # both symbols, once an hour


def test_a_late_tick_fires_each_timer_once() -> None:
    s = session(journal_flush_s=1.0)
    s.start(0.0)
    assert of(s.tick(10.5), FlushJournal) == [FlushJournal()]
    assert s.next_deadline(10.5) == 11.5


@pytest.mark.parametrize("duration", [0.5, 60.0, 5 * HOUR])
def test_recording_stops_at_its_duration(duration: float) -> None:
    s = session(duration_s=duration)
    s.start(100.0)
    assert s.next_deadline(100.0) == min(101.0, 100.0 + duration)
    assert not of(s.tick(100.0 + duration - 0.001), Stop)
    assert of(s.tick(100.0 + duration), Stop) == [Stop()]
    assert s.stopping and not of(_ask(s, 100.0 + duration), FetchSnapshot)  # nothing new once stopping



# --- the fold behind capture ------------------------------------------------------------------


def test_a_burst_of_frames_is_journaled_in_arrival_order() -> None:
    s, conn = started()
    burst = [diff(n) for n in range(1, 6)]
    assert of(s.frames(conn, burst, 1.0), JournalAndFold) == [JournalAndFold(r) for r in burst]


def test_a_lagging_fold_warns_once_then_says_it_caught_up() -> None:
    s, _ = started(fold_lag_warn_s=1.0, fold_backlog_max=1000)
    assert s.fold_backlog(10, 0.5, 1.0) == []  # behind, but within the bound: nothing to say
    (warning,) = of(s.fold_backlog(400, 1.5, 2.0), Log)
    assert warning.level == logging.WARNING and "1.5s behind" in warning.message and "400 records" in warning.message
    assert of(s.fold_backlog(600, 2.5, 3.0), Log) == []  # still lagging: no second warning
    assert of(s.fold_backlog(5, 0.1, 4.0), Log) == []  # not caught up until nothing waits
    (done,) = of(s.fold_backlog(0, 0.0, 5.0), Log)
    assert done.level == logging.INFO and "caught up" in done.message
    assert s.fold_backlog(0, 0.0, 6.0) == []


def test_a_fold_too_far_behind_skips_its_backlog_and_restarts_every_book() -> None:
    s, _ = started(fold_backlog_max=100)
    assert not of(s.fold_backlog(100, 30.0, 1.0), SkipFolds)  # at the bound: still folds
    actions = s.fold_backlog(101, 31.0, 2.0)
    skip = of(actions, SkipFolds)
    assert skip == [SkipFolds(101)]
    # The skip comes first, so the RESTART markers are the first records folded after it.
    assert actions.index(skip[0]) < actions.index(markers(actions, EventKind.RESTART)[0])
    assert markers(actions, EventKind.RESTART) == [WriteMarker(EventKind.RESTART, SYMBOLS,
                                                               (("reason", FOLD_SKIP_REASON),))]
    assert [a.level for a in of(actions, Log)] == [logging.ERROR]
    assert s.fold_skips == 1


def test_a_book_that_disagrees_with_the_exchange_bookticker_resyncs_and_says_why() -> None:
    """The real fold (``Ingestor``) on journaled frames: a diff, then a bookTicker at its u that disagrees."""
    from acts.book.sequencer import BboMismatch
    from acts.recorder.ingest import Ingestor

    class Journal:
        def append(self, record: JournalRecord) -> None:
            pass

    def frame(n: int, stream: str, data: dict) -> JournalRecord:
        payload = json.dumps({"stream": f"btcusdt@{stream}", "data": data}).encode()
        return JournalRecord((T0_MS + n) * 1_000_000, Channel.STREAM, "", payload)

    snapshot = json.dumps({"lastUpdateId": 100, "bids": [["1.00", "1"]], "asks": [["2.00", "1"]]}).encode()
    ingestor = Ingestor(["BTCUSDT"], [], Journal())
    ingestor.fold(JournalRecord(T0_MS * 1_000_000, Channel.SNAPSHOT, "BTCUSDT", snapshot))
    depth = {"e": "depthUpdate", "E": T0_MS + 1, "s": "BTCUSDT", "U": 101, "u": 102, "b": [["1.10", "3"]], "a": []}
    ticker = {"u": 102, "s": "BTCUSDT", "b": "1.10", "B": "3.00", "a": "2.00", "A": "1.00"}
    assert ingestor.fold(frame(1, "depth@100ms", depth)).outcome is not None
    checked = ingestor.fold(frame(2, "bookTicker", ticker))
    assert checked.outcome == BboChecked(102) and not checked.needs_snapshot
    ticker_ahead = dict(ticker, u=104, a="1.90")  # the book will say 2.00 at 104: a lie, or the book is wrong
    assert ingestor.fold(frame(3, "bookTicker", ticker_ahead)).outcome == Noted()
    depth_104 = dict(depth, E=T0_MS + 4, U=103, u=104, b=[])
    result = ingestor.fold(frame(4, "depth@100ms", depth_104))
    assert result.outcome == BboMismatch(104) and result.needs_snapshot and not ingestor.valid("BTCUSDT")

    s, _ = started()
    actions = s.folded(result, 5.0)
    assert Log(logging.WARNING, "book differs from the exchange's bookTicker at update 104: resyncing",
               "BTCUSDT") in actions
    assert dict(markers(actions, EventKind.RESYNC)[0].detail) == {"reason": "bbo_mismatch"}
    assert of(actions, FetchSnapshot) == [FetchSnapshot("BTCUSDT", 1000)]
