"""The fast engine's NO_BOOK stretches (``replay._invalid_stretch``): rows and report equal the reference's,
and the diffs the sequencer's buffer drops are never built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acts.book.sequencer import MAX_BUFFERED
from acts.core.events import DepthUpdate, Event, EventKind, Marker, Snapshot
from acts.core.symbols import StreamKind
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, MinuteSampler
from acts.replayer.replay import ReplayReport, replay
from acts.storage.columnar import RowGroup
from acts.storage.store import SegmentStore
from tests.conftest import NEAR_HOUR_MS, record

SYMBOL = "BTCUSDT"
#: The first snapshots are dropped: the book is missing for this long from the start.
NO_SNAPSHOT_UNTIL_MS = NEAR_HOUR_MS + 4 * 60_000


def _events(streams: tuple[StreamKind, ...]) -> list[Event]:
    """10 minutes with snapshots every 2 minutes and gaps, none before ``NO_SNAPSHOT_UNTIL_MS`` (a stretch of
    ~2400 diffs, more than the buffer keeps, with gap markers), and RESTART markers."""
    events = list(synthetic_events([SYMBOL], 10, seed=23, start_ms=NEAR_HOUR_MS, snapshot_every_s=120,
                                   gap_rate=0.002, depth=40, streams=streams))
    kept = [e for e in events if not (isinstance(e, Snapshot) and e.recv_ns < NO_SNAPSHOT_UNTIL_MS * 1_000_000)]
    diffs = [i for i, e in enumerate(kept) if isinstance(e, DepthUpdate)]
    for at in (diffs[300], diffs[4000]):  # without a book, and (with seed 23) after it came back
        kept.insert(at, Marker(EventKind.RESTART, SYMBOL, kept[at].recv_ns, "{}"))
    return kept


@pytest.fixture(scope="module", params=[(StreamKind.DEPTH,), (StreamKind.DEPTH, StreamKind.TRADE,
                                                               StreamKind.BOOK_TICKER)], ids=["depth", "all streams"])
def data_dir(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stretch")
    record(path, _events(request.param))
    return path


def _run(data_dir: Path, names: list[str], interval_ms: int, engine: str) -> tuple[list[Any], ReplayReport]:
    report = ReplayReport()
    features = default_registry().resolve(names)
    rows = list(replay(SegmentStore(data_dir), [SYMBOL], features, 0, None, report, engine=engine,
                       interval_ms=interval_ms))
    return rows, report


@pytest.mark.parametrize("interval_ms", [60_000, 1000, EVERY_EVENT], ids=["1m", "1s", "event"])
@pytest.mark.parametrize("names", [["mid", "bias10"], ["microprice", "depth10"], ["mid", "trade_count", "vwap"]],
                         ids=["compiled", "python features", "trade features"])
def test_fast_equals_reference_across_long_invalid_stretches(data_dir: Path, names: list[str],
                                                             interval_ms: int) -> None:
    fast, fast_report = _run(data_dir, names, interval_ms, "fast")
    slow, slow_report = _run(data_dir, names, interval_ms, "python")
    assert fast == slow
    assert fast_report == slow_report
    invalid = sum(not row.valid for row in fast)
    assert invalid and invalid < len(fast)  # the stretches are there, and so are valid rows
    assert slow_report.gaps >= 1


@pytest.mark.parametrize("interval_ms", [60_000, EVERY_EVENT], ids=["1m", "event"])
def test_the_stretch_builds_only_the_diffs_the_buffer_keeps(data_dir: Path, interval_ms: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    event = RowGroup.event

    def counting(self: RowGroup, i: int) -> Any:
        got = event(self, i)
        if isinstance(got, DepthUpdate):
            built.append(i)
        return got

    monkeypatch.setattr(RowGroup, "event", counting)
    fast, _ = _run(data_dir, ["mid", "bias10"], interval_ms, "fast")
    with_stretch = len(built)
    built.clear()
    monkeypatch.setattr(MinuteSampler, "invalid_open", lambda self: None)  # every diff through ``apply``
    plain, _ = _run(data_dir, ["mid", "bias10"], interval_ms, "fast")
    assert fast == plain
    # The first stretch alone holds ~2400 diffs, of which the buffer keeps MAX_BUFFERED.
    assert len(built) - with_stretch > 1000 and MAX_BUFFERED == 1000
