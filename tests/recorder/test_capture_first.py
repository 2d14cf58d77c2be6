"""Capture never waits for the fold: a burst of waiting frames is journaled before any is folded, frames
arriving while a long backlog folds are journaled at once, and the fold still sees exactly the journal's
order. On a fake clock that does not move, against the fake exchange of ``test_shell``; the journal and
the fold are observed through thin spies that pass every call on to the real ones."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from acts.core.clock import FakeClock
from acts.core.events import EventKind
from acts.recorder.ingest import Ingested
from acts.recorder.live import FOLD_CHUNK, Recorder
from acts.recorder.session import FOLD_SKIP_REASON
from acts.storage.journal import Channel, JournalRecord
from acts.storage.store import SegmentStore
from tests.recorder.test_shell import SYMBOL, FakeExchange, _recorder, _until


class Trace:
    """The order of journal appends (``J``) and folds (``F``), each with its record."""

    def __init__(self, recorder: Recorder) -> None:
        ingestor = recorder._ingestor
        assert ingestor is not None
        self.steps: list[tuple[str, JournalRecord]] = []
        self.on_fold: list[Any] = []  # callbacks run as the fold takes a record, before folding it
        journal, fold = ingestor.journal, ingestor.fold

        class Journal:
            def append(_, record: JournalRecord) -> None:
                journal.append(record)
                self.steps.append(("J", record))

        def traced_fold(record: JournalRecord) -> Ingested:
            self.steps.append(("F", record))
            for callback in self.on_fold:
                callback(record)
            return fold(record)

        ingestor.journal = Journal()
        ingestor.fold = traced_fold  # type: ignore[method-assign]

    def index(self, step: str, payload: bytes) -> int:
        return next(i for i, (s, r) in enumerate(self.steps) if s == step and r.payload == payload)

    def records(self, step: str) -> list[JournalRecord]:
        return [r for s, r in self.steps if s == step]


async def _synced(tmp_path: Path, **config: Any) -> tuple[FakeClock, FakeExchange, Recorder, asyncio.Task[Any], Trace]:
    """A recorder whose one stream is open and whose book is synced (first diff, then its snapshot)."""
    clock = FakeClock(autojump=False)  # time never moves: no timer, no stall, only what the test sends
    exchange = FakeExchange(clock)
    recorder = _recorder(tmp_path, clock, exchange, **config)
    task = asyncio.create_task(recorder.run())
    await _until(lambda: bool(exchange.open_streams()), "the stream opened")
    trace = Trace(recorder)
    exchange.streams[0].send(exchange.diff())
    await _until(lambda: recorder.report.snapshots == 1 and not recorder._unfolded, "the book synced")
    assert recorder._ingestor is not None and recorder._ingestor.valid(SYMBOL)
    return clock, exchange, recorder, task, trace


def _burst(exchange: FakeExchange, n: int) -> list[bytes]:
    """``n`` diffs sent at once, so they wait together in the stream's queue."""
    frames = [exchange.diff() for _ in range(n)]
    for frame in frames:
        exchange.streams[0].send(frame)
    return frames


async def test_a_burst_is_journaled_before_any_of_it_is_folded_and_folds_in_journal_order(tmp_path: Path) -> None:
    _, exchange, recorder, task, trace = await _synced(tmp_path)
    burst = _burst(exchange, 10 * FOLD_CHUNK)  # folds in ten slices at least: the clock does not move
    exchange.last_id += 50  # a gap in the middle of the next burst: GAP and RESYNC markers, a snapshot
    late: list[bytes] = []

    def more_while_folding(record: JournalRecord) -> None:
        if record.payload == burst[0] and not late:  # the market goes on while the backlog folds
            late.extend(_burst(exchange, 5))

    trace.on_fold.append(more_while_folding)
    await _until(lambda: len(late) == 5 and not recorder._unfolded and recorder.report.snapshots == 2,
                 "everything folded and resynced")
    # The whole burst was journaled before the fold took its first frame ...
    assert max(trace.index("J", f) for f in burst) < trace.index("F", burst[0])
    # ... and what arrived during the fold was journaled before the backlog was folded, not after it.
    assert trace.index("J", late[0]) < trace.index("F", burst[-1])
    # Whatever the interleaving, the fold saw the journal's records in the journal's order: markers,
    # the second snapshot and the frames after the gap included.
    kinds = [r.channel for r in trace.records("J")]
    assert Channel.MARKER in kinds and Channel.SNAPSHOT in kinds
    assert trace.records("F") == trace.records("J")
    recorder.stop()
    await task
    assert recorder.failure is None and recorder.report.fold_skips == 0
    assert len(recorder.report.lags_ns) == recorder.report.frames  # every frame's receive -> journal lag


async def test_a_fold_too_far_behind_skips_to_a_resync_and_the_journal_keeps_everything(tmp_path: Path) -> None:
    _, exchange, recorder, task, trace = await _synced(tmp_path, fold_backlog_max=2 * FOLD_CHUNK)
    before = len(trace.steps)
    burst = _burst(exchange, 3 * FOLD_CHUNK)  # more than the fold may fall behind
    await _until(lambda: recorder.report.fold_skips == 1 and not recorder._unfolded, "the skip")
    del trace.steps[:before]
    folded = {r.payload for r in trace.records("F")}
    assert not folded & set(burst)  # the live books never saw them ...
    assert [r.payload for r in trace.records("J")][: len(burst)] == burst  # ... the journal has every one
    assert not recorder._ingestor.valid(SYMBOL)  # type: ignore[union-attr]  # forgotten, not wrong
    after = _burst(exchange, 1)  # the next diff finds no book: a snapshot, and the book is valid again
    await _until(lambda: recorder.report.snapshots == 2 and not recorder._unfolded, "the resync")
    assert recorder._ingestor.valid(SYMBOL)  # type: ignore[union-attr]
    assert trace.records("F") == trace.records("J")[len(burst):]  # in order after the skip
    recorder.stop()
    await task
    assert recorder.failure is None
    # Replay forgets where live did: the RESTART marker follows the skipped frames in the segments.
    store = SegmentStore(tmp_path)
    events = [e for p in store.paths(SYMBOL) for e in store.events(p, SYMBOL)]
    restarts = [i for i, e in enumerate(events) if e.kind is EventKind.RESTART]
    assert len(restarts) == 2  # the start, and the skip
    skip = events[restarts[1]]
    assert json.loads(skip.detail) == {"reason": FOLD_SKIP_REASON}  # type: ignore[union-attr]
    depth_ids = [e.final_update_id for e in events[: restarts[1]] if e.kind is EventKind.DEPTH]
    assert len(depth_ids) == 1 + len(burst)  # the first diff and the whole skipped burst
    assert after and any(e.kind is EventKind.SNAPSHOT for e in events[restarts[1]:])


class StuckSink:
    """A store that takes no entries until released (a MongoDB that hangs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.written: list[dict[str, Any]] = []

    def write(self, entries: list[dict[str, Any]], timeout_s: float | None = None) -> int:
        self.calls += 1
        self.release.wait()
        self.written += entries
        return len(entries)


async def test_a_stuck_sink_never_holds_back_the_journal_or_the_fold(tmp_path: Path) -> None:
    clock, exchange, recorder, task, trace = await _synced(tmp_path, stale_after_s=3600.0)
    sink = recorder.sink = StuckSink()
    clock.advance(61.0)  # the next diff closes the first minute: an entry to write
    _burst(exchange, 1)
    await _until(lambda: sink.calls == 1, "the entry write started, and hangs")
    frames = recorder.report.frames
    burst = _burst(exchange, 3 * FOLD_CHUNK)
    await _until(lambda: recorder.report.frames == frames + len(burst) and not recorder._unfolded,
                 "the burst journaled and folded while the sink hangs")
    assert not sink.written
    sink.release.set()
    recorder.stop()
    await task
    assert recorder.failure is None and sink.written and sink.written[0]["symbol"] == SYMBOL
