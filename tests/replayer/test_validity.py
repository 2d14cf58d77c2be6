"""A row is valid only when the update-id chain proves it (the interval rule in ``acts.features.pipeline``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acts.book.sequencer import Crossed
from acts.core.errors import FeatureError
from acts.core.events import DepthUpdate, Snapshot
from acts.features.builtin import default_registry
from acts.features.pipeline import FeatureFailure, MinuteRow, MinuteSampler, Rows
from acts.features.registry import Feature
from acts.replayer.replay import ReplayReport, replay
from acts.storage.segments import write_segments
from acts.storage.store import SegmentStore
from tests.reference import ReferenceRows
from tests.strategies import SYMBOL, messy_stream

MIN = 60_000
MID = default_registry().resolve(["mid"])


def diff(first: int, final: int, time_ms: int, bid: str = "99.00") -> DepthUpdate:
    return DepthUpdate(SYMBOL, time_ms, first, final, ((bid, "1.00"),), (("101.00", "1.00"),), time_ms * 10**6)


def snap(last: int) -> Snapshot:
    return Snapshot(SYMBOL, last, (("98.00", "1.00"),), (("102.00", "1.00"),), 0)


def fold(events: list, interval_ms: int = MIN) -> list[MinuteRow]:
    sampler = MinuteSampler(SYMBOL, MID, interval_ms=interval_ms)
    return [row for event in events for row in sampler.apply(event)[0]]


def validity(rows: list[MinuteRow]) -> list[tuple[int, bool]]:
    return [(row.minute_ms // MIN, row.valid) for row in rows]


# (what happened, events, (minute, valid) of every row)
CASES = [
    ("a quiet market whose chain goes on keeps its carried minutes valid",
     [snap(10), diff(11, 11, 1_000), diff(12, 12, 5 * MIN + 1)], [(0, True), (1, True), (2, True), (3, True),
                                                                 (4, True)]),
    ("a dead feed: the diff after the silence breaks the chain, so every silent minute is invalid",
     [snap(10), diff(11, 11, 1_000), diff(20, 20, 5 * MIN + 1)], [(0, False), (1, False), (2, False), (3, False),
                                                                 (4, False)]),
    ("a stale closing diff does not break the chain",
     [snap(10), diff(11, 12, 1_000), diff(11, 11, MIN + 1)], [(0, True)]),
    ("a snapshot makes the book valid at once; the next diff bridges it",
     [diff(5, 5, 1), snap(10), diff(9, 11, MIN + 1)], [(0, True)]),
    ("a snapshot older than the next diff: the minute it was valid in is not proven",
     [diff(5, 5, 1), snap(10), diff(13, 13, MIN + 1)], [(0, False)]),
    ("after a gap, rows stay invalid until a snapshot and a bridging diff",
     [snap(10), diff(11, 11, 1), diff(15, 15, MIN + 1), diff(16, 16, 2 * MIN + 1), snap(16), diff(17, 17, 3 * MIN)],
     [(0, False), (1, False), (2, True)]),
    ("a crossed book is invalid until the next snapshot",
     [snap(10), diff(11, 11, 1), diff(12, 12, MIN + 1, bid="150.00"), diff(13, 13, 2 * MIN + 1)],
     [(0, True), (1, False)]),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule(name: str, events: list, expected: list) -> None:
    assert validity(fold(events)) == expected


def test_invalid_rows_keep_the_time_of_the_last_diff_and_carry_no_values() -> None:
    rows = fold([snap(10), diff(11, 11, 1_000), diff(20, 20, 2 * MIN + 1), diff(21, 21, 3 * MIN + 1)])
    assert [(r.valid, r.last_book_update_ms, r.values) for r in rows] == [(False, 1_000, (None,))] * 3


def test_crossed_is_an_outcome_that_asks_for_a_snapshot() -> None:
    sampler = MinuteSampler(SYMBOL, MID)
    for event in (snap(10), diff(11, 11, 1)):
        sampler.apply(event)
    assert sampler.apply(diff(12, 12, 2, bid="150.00"))[1] == Crossed(12)
    assert not sampler.sequencer.valid


def test_a_year_of_silence_is_carried_lazily() -> None:
    sampler = MinuteSampler(SYMBOL, MID)
    for event in (snap(10), diff(11, 11, 1)):
        sampler.apply(event)
    year = 365 * 24 * 60
    rows, _ = sampler.apply(diff(20, 20, year * MIN))
    assert isinstance(rows, Rows) and len(rows) == year  # a description of the rows, not a list of them
    head = []
    for row in rows:
        head.append(row)
        if len(head) == 3:
            break
    assert [(r.minute_ms, r.valid) for r in head] == [(0, False), (MIN, False), (2 * MIN, False)]


def test_any_interval_follows_the_same_rule() -> None:
    events = [snap(10), diff(11, 11, 100), diff(12, 12, 1_100), diff(20, 20, 3_500)]
    rows = fold(events, interval_ms=1_000)
    assert [(r.minute_ms, r.valid) for r in rows] == [(0, True), (1_000, False), (2_000, False)]


# --- features are user code ------------------------------------------------------------------------


def _bad(value: object) -> Feature:
    def feature(view: object) -> object:
        if isinstance(value, Exception):
            raise value
        return value

    return Feature("mypkg.feat:bad", feature)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [ZeroDivisionError("boom"), "1.5", [1.0], 10**400])
def test_a_failing_feature_is_null_and_reported(value: object) -> None:
    failures: list[FeatureFailure] = []
    sampler = MinuteSampler(SYMBOL, [*MID, _bad(value)], on_feature_error=failures.append)
    rows = [r for e in (snap(10), diff(11, 11, 1), diff(12, 12, MIN + 1)) for r in sampler.apply(e)[0]]
    assert rows[0].valid and rows[0].values[0] == 100.0 and rows[0].values[1] is None
    (failure,) = failures
    assert (failure.feature, failure.symbol, failure.interval_ms) == ("mypkg.feat:bad", SYMBOL, 0)


def test_by_default_a_failing_feature_stops_with_one_clear_message() -> None:
    sampler = MinuteSampler(SYMBOL, [_bad(ZeroDivisionError("boom"))])
    for event in (snap(10), diff(11, 11, 1)):
        sampler.apply(event)
    with pytest.raises(FeatureError, match=r"'mypkg.feat:bad' failed for TESTUSDT at 1970-01-01T00:00:00.000Z: "
                                           r"ZeroDivisionError: boom; .*--on-feature-error null"):
        sampler.apply(diff(12, 12, MIN + 1))


def test_nan_and_infinity_mean_undefined() -> None:
    failures: list[FeatureFailure] = []
    sampler = MinuteSampler(SYMBOL, [_bad(float("nan")), _bad(float("inf"))], on_feature_error=failures.append)
    rows = [r for e in (snap(10), diff(11, 11, 1), diff(12, 12, MIN + 1)) for r in sampler.apply(e)[0]]
    assert rows[0].values == (None, None) and not failures


# --- replay against the naive reference ---------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(messy_stream(), st.sampled_from([1_000, MIN]))
def test_replay_equals_the_naive_reference(tmp_path_factory: pytest.TempPathFactory, events: list,
                                           interval_ms: int) -> None:
    reference = ReferenceRows(interval_ms)
    for event in events:
        reference.feed(event)
    data_dir = Path(tmp_path_factory.mktemp("messy"))
    write_segments(data_dir, SYMBOL, events)
    for engine in ("python", "fast"):
        rows = list(replay(SegmentStore(data_dir), [SYMBOL], MID, 0, None, ReplayReport(), engine=engine,
                           interval_ms=interval_ms))
        got = [(r.minute_ms, r.valid, r.last_book_update_ms, r.values[0]) for r in rows]
        assert got == reference.rows, engine


def test_a_recorder_restart_cuts_the_open_minute_and_replay_starts_over_like_live() -> None:
    from acts.core.events import EventKind, Marker

    before = [snap(10), diff(11, 11, 1_000)]
    # The new process: buffered diff, snapshot, the chain goes on (ids continued: nothing changed meanwhile).
    after = [diff(12, 12, 3 * MIN + 5), snap(12), diff(13, 13, 3 * MIN + 9), diff(14, 14, 4 * MIN + 1)]
    replayed = fold([*before, Marker(EventKind.RESTART, SYMBOL, 2), *after])
    live = fold(after)
    assert [(r.minute_ms // MIN, r.valid, r.last_book_update_ms) for r in replayed] == [
        (0, False, 1_000), (1, False, 1_000), (2, False, 1_000), (3, True, 3 * MIN + 9)]
    assert replayed[-len(live):] == live
