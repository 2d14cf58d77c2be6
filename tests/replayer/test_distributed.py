from __future__ import annotations

from pathlib import Path

import pytest

from acts.core.symbols import iso_ms
from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT
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


def _single(data_dir: Path, start: int, end: int | None, interval_ms: int = 60_000) -> list:
    return list(replay(SegmentStore(data_dir), ["BTCUSDT", "ETHUSDT"], default_registry().resolve(NAMES),
                       start, end, interval_ms=interval_ms))


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
    assert list(replay_distributed(two_days, ["BTCUSDT", "ETHUSDT"], NAMES, start, end, workers=2)) == \
        _single(two_days, start, end)


# 11 s does not divide a day: the interval around midnight straddles the two parts.
@pytest.mark.parametrize("interval_ms", [1_000, 11_000, EVERY_EVENT], ids=["1s", "11s", "event"])
def test_partition_tasks_equal_single_process_at_any_interval(two_days: Path, interval_ms: int) -> None:
    start = MIDNIGHT - 8 * 60_000
    rows = []
    for symbol, s, e in partitions(SegmentStore(two_days), ["BTCUSDT", "ETHUSDT"], start, None):
        rows += replay_partition(str(two_days), symbol, NAMES, s, e, interval_ms)[0]
    rows.sort(key=lambda r: (r.minute_ms, r.symbol))  # stable: a symbol's rows keep their order
    single = _single(two_days, start, None, interval_ms)
    assert rows == single
    if interval_ms == 11_000:
        straddling = MIDNIGHT - MIDNIGHT % 11_000
        assert straddling < MIDNIGHT and {r.minute_ms for r in rows if r.minute_ms == straddling}
    assert sum(r.valid for r in rows) > len(rows) // 2  # the rows compared are mostly real books


@pytest.mark.parametrize("interval_ms", [1_000, 11_000])
def test_dask_threads_cluster_every_interval_matches_single_process(two_days: Path, interval_ms: int) -> None:
    """``--every`` with ``--workers 2``: a LocalCluster of 2 workers (threads, to keep the test quick)."""
    start, end = MIDNIGHT - 5 * 60_000, MIDNIGHT + 6 * 60_000
    got = list(replay_distributed(two_days, ["BTCUSDT", "ETHUSDT"], NAMES, start, end, workers=2,
                                  interval_ms=interval_ms, processes=False))
    assert got == _single(two_days, start, end, interval_ms)
    assert len(got) == 2 * len(range(start - start % interval_ms, end, interval_ms)) - (start % interval_ms > 0) * 2


@pytest.mark.slow
def test_cli_every_with_workers_equals_without(two_days: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from acts.cli import main

    args = ["replay", "--data-dir", str(two_days), "--from", iso_ms(MIDNIGHT - 3 * 60_000),
            "--to", iso_ms(MIDNIGHT + 3 * 60_000), "--features", ",".join(NAMES), "--every", "1s", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one.parquet")]) == 0
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "two.parquet")]) == 0
    one, two = pq.read_table(tmp_path / "one.parquet"), pq.read_table(tmp_path / "two.parquet")
    assert one.num_rows == 2 * 360 and one.equals(two)
