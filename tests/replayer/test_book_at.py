"""``book_at`` (``History.book``'s fold) and ``sampled_rows`` (``History.books``'): fast engine == reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from acts.book.sequencer import Sequencer
from acts.exchange.synthetic import synthetic_events
from acts.features.pipeline import MinuteSampler
from acts.replayer.replay import ReplayReport, book_at, sampled_rows
from acts.storage import segments
from acts.storage.store import SegmentStore
from tests.conftest import record
from tests.replayer.test_engine import _disorder


def _state(seq: Sequencer) -> tuple:
    view = seq.view()
    return seq.valid, seq.position, seq.last_event_time_ms, view.bids(), view.asks()


def test_book_at_any_moment_equals_the_reference_fold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "ROW_GROUP_ROWS", 500)  # moments at and near row-group edges
    events = _disorder(list(synthetic_events(["ETHUSDT"], 3, seed=6, snapshot_every_s=40, gap_rate=0.01,
                                             depth=40)), 6)
    record(tmp_path, events, chunk=1200)
    store = SegmentStore(tmp_path)
    diffs = [e for e in events if hasattr(e, "event_time_ms")]
    moments = [diffs[k].event_time_ms + d for k in range(5, len(diffs), 97) for d in (-1, 0, 1)]
    states = set()
    for at in moments:
        fast, slow = ReplayReport(), ReplayReport()
        got = _state(book_at(store, "ETHUSDT", at, fast, engine="fast"))
        assert got == _state(book_at(store, "ETHUSDT", at, slow, engine="python")), at
        assert fast.events == slow.events > 0
        states.add(got[0])
    assert states == {True, False}


class _Levels(MinuteSampler):
    """A sampler that keeps the top levels with each row, as ``History.books`` does."""

    __slots__ = ("kept",)

    def __init__(self, sequencer: Sequencer | None) -> None:
        super().__init__("ETHUSDT", (), sequencer, 1_000)
        self.kernels = None
        self.kept: list = []

    def sample(self, minute_ms: int, recv_ns: int):  # type: ignore[no-untyped-def]
        row = super().sample(minute_ms, recv_ns)
        self.kept.append(self.sequencer.view().bids(3) if row.valid else None)
        return row


def test_sampled_rows_sample_through_the_callers_sampler_on_both_engines(tmp_path: Path) -> None:
    record(tmp_path, list(synthetic_events(["ETHUSDT"], 2, seed=8, snapshot_every_s=40, gap_rate=0.01, depth=30)))
    store = SegmentStore(tmp_path)
    out = {}
    for engine in ("fast", "python"):
        samplers: list[_Levels] = []

        def make(seq: Sequencer | None, samplers: list[_Levels] = samplers) -> _Levels:
            samplers.append(_Levels(seq))
            return samplers[-1]

        rows = list(sampled_rows(store, "ETHUSDT", make, 0, None, ReplayReport(), engine=engine))
        out[engine] = rows, samplers[-1].kept
    assert out["fast"] == out["python"] and len(out["fast"][0]) > 60
