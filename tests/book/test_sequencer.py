"""Table-driven: (what came before, the event, the outcome, the state after) -- one row per rule."""

from __future__ import annotations

import pytest

from acts.book.sequencer import (
    MAX_BUFFERED,
    TRANSITIONS,
    Applied,
    Buffered,
    Checkpoint,
    Crossed,
    Gap,
    Ignored,
    Loaded,
    Noted,
    Sequencer,
    StaleSnapshot,
    State,
    Synced,
)
from acts.core.events import DepthUpdate, EventKind, Marker, Snapshot

S = "XUSDT"


def diff(first: int, final: int, bid: str = "1.00") -> DepthUpdate:
    return DepthUpdate(S, 1000 * final, first, final, ((bid, "1"),), (("9.00", "1"),), final)


def snap(last: int) -> Snapshot:
    return Snapshot(S, last, (("0.50", "2"),), (("10.00", "2"),), 0)


LIVE_AT_10 = [snap(9), diff(10, 10)]  # the book is valid, position 10
CASES = [
    # NO_BOOK: diffs are buffered; a snapshot loads; markers change nothing
    ("buffer before any snapshot", [], diff(5, 7), Buffered(), State.NO_BOOK),
    ("snapshot with nothing buffered waits for the straddle", [], snap(9), Loaded(9), State.SYNCING),
    ("buffered diffs straddling the snapshot apply", [diff(5, 8), diff(9, 11), diff(12, 12)], snap(9),
     Synced(9, 2), State.LIVE),
    ("buffered diffs all after L + 1: stale snapshot", [diff(12, 14)], snap(9), StaleSnapshot(9, 12), State.NO_BOOK),
    ("marker while waiting", [], Marker(EventKind.CONNECT, S, 0), Noted(), State.NO_BOOK),
    # SYNCING: drop u <= L, apply the straddling diff, a later one means the snapshot is too old
    ("syncing: old diff dropped", [snap(9)], diff(5, 9), Ignored(9), State.SYNCING),
    ("syncing: straddling diff applies", [snap(9)], diff(8, 12), Applied(), State.LIVE),
    ("syncing: exact L + 1 applies", [snap(9)], diff(10, 10), Applied(), State.LIVE),
    ("syncing: starts after L + 1", [snap(9)], diff(11, 12), StaleSnapshot(9, 11), State.NO_BOOK),
    ("syncing: a newer snapshot reloads", [snap(9)], snap(20), Loaded(20), State.SYNCING),
    # LIVE: chain, duplicates, gaps, checkpoints
    ("live: next in chain", LIVE_AT_10, diff(11, 13), Applied(), State.LIVE),
    ("live: duplicate ignored", LIVE_AT_10, diff(10, 10), Ignored(10), State.LIVE),
    ("live: stale ignored", LIVE_AT_10, diff(3, 5), Ignored(5), State.LIVE),
    ("live: gap", LIVE_AT_10, diff(13, 14), Gap(11, 13), State.NO_BOOK),
    ("live: overlap that is not u + 1 is a break", LIVE_AT_10, diff(9, 12), Gap(11, 9), State.NO_BOOK),
    ("live: snapshot is a checkpoint", LIVE_AT_10, snap(50), Checkpoint(50), State.LIVE),
    ("live: a crossed book is corrupt", LIVE_AT_10, diff(11, 11, bid="9.50"), Crossed(11), State.NO_BOOK),
    ("syncing: a crossed book is corrupt", [snap(9)], diff(10, 10, bid="10.00"), Crossed(10), State.NO_BOOK),
    ("a crossed snapshot is corrupt", [], Snapshot(S, 9, (("11.00", "1"),), (("10.00", "1"),), 0), Crossed(9),
     State.NO_BOOK),
    ("buffered diffs that cross the book", [diff(10, 10), diff(11, 11, bid="9.50"), diff(12, 12)], snap(9),
     Crossed(11), State.NO_BOOK),
    ("live: marker", LIVE_AT_10, Marker(EventKind.GAP, S, 0, '{"expected":1}'), Noted(), State.LIVE),
]


@pytest.mark.parametrize(("name", "before", "event", "outcome", "state"), CASES, ids=[c[0] for c in CASES])
def test_rule(name: str, before: list, event: object, outcome: object, state: State) -> None:
    seq = Sequencer()
    for earlier in before:
        seq.apply(earlier)
    assert seq.apply(event) == outcome  # type: ignore[arg-type]
    # A snapshot makes the book valid at once (SYNCING); the next diff must bridge it.
    assert seq.state is state and seq.valid == (state is not State.NO_BOOK)


def test_every_transition_row_is_exercised() -> None:
    covered = {(State.NO_BOOK, None)}
    for _, before, event, _, _ in CASES:
        seq = Sequencer()
        for earlier in before:
            seq.apply(earlier)
        if isinstance(event, DepthUpdate) and seq.state is not State.NO_BOOK:
            from acts.book.sequencer import _relation

            covered.add((seq.state, _relation(seq.state, seq.position, event)))
    assert covered == set(TRANSITIONS)


def test_the_breaking_diff_stays_buffered_for_an_older_snapshot() -> None:
    seq = Sequencer()
    for event in LIVE_AT_10:
        seq.apply(event)
    assert seq.apply(diff(13, 14)) == Gap(11, 13)
    assert seq.apply(snap(12)) == Synced(12, 1)  # the buffered 13..14 straddles L + 1 = 13
    assert seq.position == 14


def test_the_buffer_is_bounded() -> None:
    seq = Sequencer(max_buffered=MAX_BUFFERED)
    for u in range(1, MAX_BUFFERED + 50):
        seq.apply(diff(u, u))
    # The oldest 49 diffs fell out: a snapshot older than what is left is stale, a recent one syncs.
    assert seq.apply(snap(10)) == StaleSnapshot(10, 50)
    assert isinstance(seq.apply(snap(MAX_BUFFERED + 40)), Synced)


def test_the_last_diff_time_survives_gaps_and_snapshots() -> None:
    seq = Sequencer()
    for event in LIVE_AT_10:
        seq.apply(event)
    assert seq.last_event_time_ms == 10_000
    seq.apply(diff(13, 14))  # gap: the book is invalid, but the last diff applied is still the one at u=10
    assert not seq.valid and seq.last_event_time_ms == 10_000
    seq.apply(snap(20))
    assert seq.valid and seq.last_event_time_ms == 10_000


def test_after_a_crossed_book_only_a_snapshot_revives_it() -> None:
    seq = Sequencer()
    for event in LIVE_AT_10:
        seq.apply(event)
    assert seq.apply(diff(11, 11, bid="9.50")) == Crossed(11)
    assert seq.apply(diff(12, 12)) == Buffered()
    assert seq.apply(snap(12)) == Loaded(12) and seq.valid
