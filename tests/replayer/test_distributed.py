from __future__ import annotations

from pathlib import Path

import pytest

from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.replayer.distributed import DAY_MS, partitions, replay_distributed, replay_partition
from acts.replayer.replay import replay
from acts.storage.store import SegmentStore
from tests.conftest import record

NAMES = ["mid", "bias10", "ask_amount20"]
MIDNIGHT = DEFAULT_START_MS + DAY_MS


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("two_days")
    events = synthetic_events(["BTCUSDT", "ETHUSDT"], 16, seed=3, start_ms=MIDNIGHT - 8 * 60_000,
                              snapshot_every_s=180, gap_rate=0.002, depth=80)
    record(data_dir, list(events))
    return data_dir


def _single(data_dir: Path, start: int, end: int | None) -> list:
    return list(replay(SegmentStore(data_dir), ["BTCUSDT", "ETHUSDT"], default_registry().resolve(NAMES),
                       start, end))


def test_partitions_are_symbol_days(two_days: Path) -> None:
    parts = partitions(SegmentStore(two_days), ["ETHUSDT", "BTCUSDT"], MIDNIGHT - 8 * 60_000, None)
    assert parts == [("BTCUSDT", MIDNIGHT - 8 * 60_000, MIDNIGHT), ("BTCUSDT", MIDNIGHT, None),
                     ("ETHUSDT", MIDNIGHT - 8 * 60_000, MIDNIGHT), ("ETHUSDT", MIDNIGHT, None)]


def test_partition_tasks_equal_single_process(two_days: Path) -> None:
    """The task function itself, in-process: the day boundary is carried by the recording."""
    start = MIDNIGHT - 8 * 60_000
    rows = []
    for symbol, s, e in partitions(SegmentStore(two_days), ["BTCUSDT", "ETHUSDT"], start, None):
        rows += replay_partition(str(two_days), symbol, NAMES, s, e)[0]
    rows.sort(key=lambda r: (r.minute_ms, r.symbol))
    assert rows == _single(two_days, start, None)
    assert {r.minute_ms >= MIDNIGHT for r in rows} == {True, False}


@pytest.mark.slow
def test_dask_local_cluster_matches_single_process(two_days: Path) -> None:
    start, end = MIDNIGHT - 5 * 60_000, MIDNIGHT + 6 * 60_000
    assert replay_distributed(two_days, ["BTCUSDT", "ETHUSDT"], NAMES, start, end, workers=2) == \
        _single(two_days, start, end)
