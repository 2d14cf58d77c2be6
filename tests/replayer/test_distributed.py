from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from acts.core.errors import ActsError, CorruptSegmentError, FeatureError, InputError
from acts.core.symbols import iso_ms
from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, FeatureFailure
from acts.replayer.distributed import (
    DAY_MS,
    HOUR_MS,
    partitions,
    replay_distributed,
    replay_partition,
    sized_partitions,
)
from acts.replayer.replay import ReplayReport, replay
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
    assert list(replay_distributed(two_days, ["BTCUSDT", "ETHUSDT"], NAMES, start, end, workers=2,
                                   processes=True)) == \
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


@pytest.mark.parametrize(
    ("workers", "interval_ms", "expected"),
    [
        (2, 60_000, [("BTCUSDT", MIDNIGHT - 8 * 60_000, None), ("ETHUSDT", MIDNIGHT - 8 * 60_000, None)]),
        (1, 60_000, [("BTCUSDT", MIDNIGHT - 8 * 60_000, None), ("ETHUSDT", MIDNIGHT - 8 * 60_000, None)]),
        # fewer symbols than workers: (symbol, day) parts, sorted by start
        (3, 60_000, [("BTCUSDT", MIDNIGHT - 8 * 60_000, MIDNIGHT), ("ETHUSDT", MIDNIGHT - 8 * 60_000, MIDNIGHT),
                     ("BTCUSDT", MIDNIGHT, None), ("ETHUSDT", MIDNIGHT, None)]),
        # rows after every event are not known in advance: a day at most per part
        (2, EVERY_EVENT, [("BTCUSDT", MIDNIGHT - 8 * 60_000, MIDNIGHT), ("ETHUSDT", MIDNIGHT - 8 * 60_000, MIDNIGHT),
                          ("BTCUSDT", MIDNIGHT, None), ("ETHUSDT", MIDNIGHT, None)]),
    ],
    ids=["whole", "one-worker", "days", "event-days"],
)
def test_sized_partitions(two_days: Path, workers: int, interval_ms: int, expected: list) -> None:
    got = sized_partitions(SegmentStore(two_days), ["ETHUSDT", "BTCUSDT"], MIDNIGHT - 8 * 60_000, None, workers,
                           interval_ms)
    assert got == expected


@pytest.mark.parametrize("interval_ms", [1, 60])
def test_too_many_rows_at_once_cut_whole_symbols_into_days(two_days: Path, interval_ms: int) -> None:
    """The open end runs to the end of the last day: 2 symbols x 1 day and 8 minutes, 2.9 M rows at
    60 ms, more than the client may hold from whole symbols at once."""
    got = sized_partitions(SegmentStore(two_days), ["BTCUSDT", "ETHUSDT"], MIDNIGHT - 8 * 60_000, None, 2,
                           interval_ms)
    assert got == partitions(SegmentStore(two_days), ["BTCUSDT"], MIDNIGHT - 8 * 60_000, None)[:1] + [
        ("ETHUSDT", MIDNIGHT - 8 * 60_000, MIDNIGHT), ("BTCUSDT", MIDNIGHT, None), ("ETHUSDT", MIDNIGHT, None)]


def test_fewer_days_than_workers_cut_days_into_hour_ranges(two_days: Path) -> None:
    start, end = MIDNIGHT - 8 * HOUR_MS + 60_000, MIDNIGHT + 3 * HOUR_MS
    got = sized_partitions(SegmentStore(two_days), ["BTCUSDT"], start, end, 4)
    assert got == [("BTCUSDT", start, MIDNIGHT - 4 * HOUR_MS), ("BTCUSDT", MIDNIGHT - 4 * HOUR_MS, MIDNIGHT),
                   ("BTCUSDT", MIDNIGHT, MIDNIGHT + HOUR_MS), ("BTCUSDT", MIDNIGHT + HOUR_MS, end)]


@pytest.mark.parametrize("interval_ms", [11_000, EVERY_EVENT], ids=["11s", "event"])
def test_parts_cut_anywhere_equal_single_process(two_days: Path, interval_ms: int) -> None:
    """Any cut gives the single process's rows: here 2-minute cuts, one at midnight, and an 11 s
    interval that straddles midnight (and most cuts) belongs to the part before it."""
    start = MIDNIGHT - 8 * 60_000
    cuts = [start + k * 120_000 for k in range(8)]
    rows = []
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for s, e in zip(cuts, [*cuts[1:], None], strict=True):
            rows += replay_partition(str(two_days), symbol, NAMES, s, e, interval_ms)[0]
    rows.sort(key=lambda r: (r.minute_ms, r.symbol))
    assert MIDNIGHT in cuts and rows == _single(two_days, start, None, interval_ms)
    if interval_ms == 11_000:
        assert {r.minute_ms for r in rows} >= {MIDNIGHT - MIDNIGHT % 11_000}


@pytest.mark.parametrize("workers", [1, 3], ids=["whole", "days"])
def test_dask_threads_cluster_matches_single_process_in_event_mode(two_days: Path, workers: int) -> None:
    """Rows sharing a millisecond keep their order through the merge, whatever the parts."""
    start, end = MIDNIGHT - 2 * 60_000, MIDNIGHT + 2 * 60_000
    report = ReplayReport()
    got = list(replay_distributed(two_days, ["BTCUSDT", "ETHUSDT"], NAMES, start, end, workers=workers,
                                  interval_ms=EVERY_EVENT, processes=False, report=report))
    assert got == _single(two_days, start, end, EVERY_EVENT) and len(got) > 1000
    assert report.events > len(got) // 2


# --- the replay flags act on the workers as in one process ------------------------------------

PLUGIN = textwrap.dedent("""
    def boom(view):
        if view.best_bid() % 7 == 0:
            raise ZeroDivisionError("the plug-in divided by zero")
        return 1.0

    def text(view):
        return "not a number"
""")


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "plugins" / "dbad"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "feat.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))


def _both(data_dir: Path, names: list[str], start: int, end: int | None, **options: Any) -> tuple[Any, Any]:
    """``replay`` and a 2-thread ``replay_distributed`` with the same ``options``: each its rows and
    report, or the error it raised."""
    single, spread = ReplayReport(), ReplayReport()
    symbols = ["BTCUSDT", "ETHUSDT"]

    def run(make: Any, report: ReplayReport) -> Any:
        try:
            return list(make()), report
        except ActsError as exc:
            return type(exc), str(exc)

    policy = options.pop("on_feature_error", None)
    more = {} if policy is None else {"on_feature_error": policy}
    return (run(lambda: replay(SegmentStore(data_dir), symbols, default_registry().resolve(names), start, end,
                               single, **options, **more), single),
            run(lambda: replay_distributed(data_dir, symbols, names, start, end, workers=2, report=spread,
                                           processes=False, **options, **more), spread))


@pytest.mark.parametrize("engine", ["python", "fast", "bogus"])
def test_engine_is_honoured(two_days: Path, engine: str) -> None:
    single, spread = _both(two_days, NAMES, MIDNIGHT - 3 * 60_000, MIDNIGHT + 3 * 60_000, engine=engine)
    assert single == spread
    if engine == "bogus":
        assert single[0] is InputError and "--engine 'bogus'" in single[1]


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    events = synthetic_events(["BTCUSDT", "ETHUSDT"], 6, seed=5, start_ms=MIDNIGHT - 3 * 60_000,
                              snapshot_every_s=60, depth=40)
    paths = record(tmp_path / "data", list(events), chunk=1500)
    sorted(p for p in paths if "ETH" in p.name)[2].write_bytes(b"garbage")
    return tmp_path / "data"


@pytest.mark.parametrize("strict", [False, True])
def test_strict_is_honoured(corrupt: Path, strict: bool) -> None:
    single, spread = _both(corrupt, NAMES, MIDNIGHT - 3 * 60_000, None, strict=strict)
    assert single[0] == spread[0]
    if strict:
        assert single[0] is CorruptSegmentError and single == spread
    else:
        assert single[1].problems == spread[1].problems and len(single[1].problems) == 1
        assert (single[1].events, single[1].gaps) == (spread[1].events, spread[1].gaps)


@pytest.mark.usefixtures("plugin")
def test_a_failing_feature_stops_both_alike(two_days: Path) -> None:
    single, spread = _both(two_days, ["mid", "dbad.feat:boom"], MIDNIGHT - 3 * 60_000, MIDNIGHT + 3 * 60_000)
    assert single == spread and single[0] is FeatureError and "dbad.feat:boom" in single[1]


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize("name", ["dbad.feat:boom", "dbad.feat:text"])
def test_a_failing_feature_nulled_alike(two_days: Path, name: str) -> None:
    start, end = MIDNIGHT - 3 * 60_000, MIDNIGHT + 3 * 60_000
    names, symbols = ["mid", name], ["BTCUSDT", "ETHUSDT"]
    single: list[FeatureFailure] = []
    spread: list[FeatureFailure] = []
    rows = list(replay(SegmentStore(two_days), symbols, default_registry().resolve(names), start, end,
                       on_feature_error=single.append))
    got = list(replay_distributed(two_days, symbols, names, start, end, workers=2, processes=False,
                                  on_feature_error=spread.append))
    assert got == rows and any(row.values[1] is None for row in rows) and any(row.valid for row in rows)
    firsts = {(f.feature, f.symbol): f for f in reversed(single)}
    assert sorted(firsts.values(), key=str) == sorted(spread, key=str)  # the first per feature and symbol


@pytest.mark.slow
@pytest.mark.usefixtures("plugin")
def test_cli_flags_with_workers_equal_without(two_days: Path, corrupt: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``acts replay`` with and without ``--workers 2``: the same file and warnings under
    ``--on-feature-error null --engine python`` (worker processes: the plug-in imported there), the
    same one-line error under ``--strict`` (worker threads)."""
    import pyarrow.parquet as pq

    from acts.cli import main

    def run(data_dir: Path, name: str, *args: str) -> tuple[int, list[str]]:
        code = main(["replay", "--data-dir", str(data_dir), "--from", iso_ms(MIDNIGHT - 3 * 60_000), "--to",
                     iso_ms(MIDNIGHT + 2 * 60_000), "--every", "5s", "--quiet", "--out", str(tmp_path / name),
                     *args])
        err = capsys.readouterr().err.splitlines()  # Dask's own log lines (a slow worker's close) aside
        return code, sorted(line for line in err if not line.startswith("wrote ") and " - distributed." not in line)

    nulled = ["--features", "mid,dbad.feat:boom,dbad.feat:text", "--on-feature-error", "null",
              "--engine", "python"]
    one = run(two_days, "one.parquet", *nulled)
    two = run(two_days, "two.parquet", *nulled, "--workers", "2", "--processes")
    assert one == two and one[0] == 0 and len([line for line in one[1] if line.startswith("warning:")]) == 4
    assert pq.read_table(tmp_path / "one.parquet").equals(pq.read_table(tmp_path / "two.parquet"))
    stopped = run(corrupt, "x.parquet", "--strict"), run(corrupt, "y.parquet", "--strict", "--workers", "2")
    assert stopped[0] == stopped[1] and stopped[0][0] == 2 and len(stopped[0][1]) == 1


def test_cli_processes_without_workers_is_refused(two_days: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acts.cli import main

    code = main(["replay", "--data-dir", str(two_days), "--from", iso_ms(MIDNIGHT), "--processes"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--processes applies to --workers" in err
