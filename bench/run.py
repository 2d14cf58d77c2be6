"""``python -m bench``: ACTS against its baseline and its limits, on the same data, in one run.

Rows (every number from this run; each row prints its target and whether this run meets it):
  - ACTS replay + features (mid, bias10, bias50) from segments, sampled every minute, every second
    and after every event, through ``replay_symbol`` (the function behind ``acts replay``), so the
    rows follow the format and the compiled lane as they change;
  - the baseline: python-binance's ``DepthCache`` fed the same events from JSON text;
  - the limits: bare decode into numpy of the same level updates as plain int64 columns
    (bench/plain.py), and of ACTS's own segments;
  - where the per-minute replay's time goes (bench/profile.py): decode, fold alone, the wait for
    decode, cores used and the floor they set; the list layout's decode against the plain one's;
  - storage bytes per level update; the bench process's peak RSS after the replays;
  - the recorder at N symbols @100 ms from the local exchange, alone and with a busy loop running;
  - Dask: a multi-symbol, multi-day replay on 1 vs 2 local workers (threads; processes as context).
Data is generated once per format version and parameters into a cache folder (bench/workdir.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zstandard

from acts.core.timeunits import MINUTE_MS, SECOND_MS
from acts.exchange.generator import DEFAULT_START_MS
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT
from acts.replayer.distributed import replay_distributed, replay_partition, sized_partitions
from acts.replayer.replay import ReplayReport, replay_symbol
from acts.storage.layout import DataLayout
from acts.storage.store import SegmentStore
from bench.baseline import bare_decode_segments, depthcache
from bench.capacity import recorder_capacity
from bench.data import SYMBOL, dask_symbols
from bench.plain import decode_plain, plain_bytes
from bench.profile import BENCH_CORES, layout_decode_ns, replay_profile
from bench.rows import Check, Row, render, to_json
from bench.workdir import default_root, ensure_dataset

FEATURES = ["mid", "bias10", "bias50"]
#: Targets of issue 14.
X_DEPTHCACHE, SHARE_OF_PLAIN, SECOND_OVER_MINUTE, EVENT_M_PER_S = 30.0, 60.0, 2.0, 5.0
BYTES_PER_LEVEL, P99_MS, P99_HOG_MS, CORES = 3.3, 50.0, 100.0, 1.0
#: "Close to 2x on two cores", read as at least 1.8x.
DASK_SPEEDUP = 1.8
#: Lines of JSON fed to DepthCache sampled after every event: it sorts the whole book on each read
#: (~2 k level updates/s at 2000 levels a side), so it runs on a prefix; its rate does not depend
#: on the prefix's length once the book is full.
DC_EVENT_PREFIX = 2_000


def acts_replay(data_dir: Path, interval_ms: int = MINUTE_MS, engine: str = "fast", symbol: str = SYMBOL) -> int:
    """Rows of ``replay_symbol`` with the features, sampled every ``interval_ms`` (0: every event)."""
    features = default_registry().resolve(FEATURES)
    rows = replay_symbol(SegmentStore.open(data_dir), symbol, features, DEFAULT_START_MS, None, ReplayReport(),
                         engine=engine, interval_ms=interval_ms)
    return sum(1 for _ in rows)


def _timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """The best of ``repeat`` runs: the machine is shared, and noise only ever adds time."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


@contextmanager
def _section(name: str) -> Iterator[None]:
    """Progress on stderr: which part runs, and how long each took (for the --quick budget)."""
    start = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    yield
    print(f"[bench] {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def _m(levels: int, seconds: float) -> float:
    return levels / seconds / 1e6


# --- sections: each returns its rows ---------------------------------------------------------------


def replay_rows(main_dir: Path, levels: int, repeat: int, dc_event_lines: int) -> list[Row]:
    data, jsonl, plain = main_dir / "data", main_dir / "events.jsonl", main_dir / "plain"
    acts_replay(data)  # warm-up: numba's compile (cached on disk after the first run)
    t_min, _ = _timed(lambda: acts_replay(data), repeat)
    t_sec, _ = _timed(lambda: acts_replay(data, SECOND_MS), repeat)
    t_evt, _ = _timed(lambda: acts_replay(data, EVERY_EVENT))
    t_ref, _ = _timed(lambda: acts_replay(data, engine="python"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t_dc, (dc_levels, _) = _timed(lambda: depthcache(jsonl, SYMBOL, every_event=False))
    t_dc_evt, (dc_evt_levels, _) = _timed(lambda: depthcache(jsonl, SYMBOL, True, dc_event_lines))
    t_plain, plain_levels = _timed(lambda: decode_plain(plain), repeat)
    t_seg, _ = _timed(lambda: bare_decode_segments(data, SYMBOL), repeat)
    if plain_levels != levels:
        raise RuntimeError(f"the plain layout holds {plain_levels} level updates, the segments {levels}")
    prof = replay_profile(data, SYMBOL, repeat)
    seg_ns, plain_ns = layout_decode_ns(data, plain, SYMBOL, levels, repeat)

    m_min, m_sec, m_evt, m_ref = (_m(levels, t) for t in (t_min, t_sec, t_evt, t_ref))
    m_dc, m_dc_evt = _m(dc_levels, t_dc), _m(dc_evt_levels, t_dc_evt)
    m_plain, m_seg = _m(levels, t_plain), _m(levels, t_seg)
    segments = sum(p.stat().st_size for p in DataLayout(data).segments.rglob("*.parquet"))
    raw = jsonl.stat().st_size
    with open(jsonl, "rb") as fh:
        zstd_bytes = len(zstandard.ZstdCompressor(level=9).compress(fh.read()))
    return [
        Row("replay_minute", "ACTS replay+features, sampled per minute",
            {"M/s": m_min, "s": t_min},
            [Check("x DepthCache", m_min / m_dc, ">=", X_DEPTHCACHE, "x"),
             Check("share of plain int64 decode", 100 * m_min / m_plain, ">=", SHARE_OF_PLAIN, "%")]),
        Row("replay_second", "ACTS replay+features, sampled every second",
            {"M/s": m_sec, "s": t_sec},
            [Check("time over the minute replay's", t_sec / t_min, "<=", SECOND_OVER_MINUTE, "x")]),
        Row("replay_event", "ACTS replay+features, sampled after every event",
            {"x DepthCache per event": m_evt / m_dc_evt, "s": t_evt},
            [Check("M level updates/s", m_evt, ">=", EVENT_M_PER_S)]),
        Row("replay_reference", "ACTS reference engine (--engine python), per minute",
            {"M/s": m_ref, "x DepthCache": m_ref / m_dc}, note="no target: context"),
        Row("depthcache_minute", "baseline: python-binance DepthCache fed JSON, per minute",
            {"M/s": m_dc, "level updates": dc_levels}, note="no target: the baseline"),
        Row("depthcache_event", "baseline: DepthCache, sampled after every event (a prefix)",
            {"M/s": m_dc_evt, "level updates": dc_evt_levels}, note="no target: the per-event baseline"),
        Row("plain_decode", "limit: bare decode of a plain int64 layout of the same levels (zstd 3)",
            {"M/s": m_plain, "bytes per level update": plain_bytes(plain) / levels}, note="no target: the limit"),
        Row("segment_decode", "bare pyarrow decode of ACTS's own segments into numpy",
            {"M/s": m_seg, "x plain int64 decode": m_seg / m_plain}, note="no target: context"),
        Row("replay_profile", "where the per-minute replay's time goes (CPU s unless wall)",
            {"wall s": prof.wall, "CPU s": prof.cpu, "cores used": prof.cores,
             "decode: pyarrow read": prof.decode_read, "decode: rest of the row groups": prof.decode_rest,
             "fold alone (decoded beforehand)": prof.fold, "main thread CPU": prof.main_cpu,
             "main thread's wait for decode, wall s": prof.wait, f"floor: CPU / {BENCH_CORES} cores, s": prof.floor,
             "60% of plain needs, wall s": t_plain / (SHARE_OF_PLAIN / 100),
             "floor over that": prof.floor / (t_plain / (SHARE_OF_PLAIN / 100))},
            note="no target: the replay's wall time cannot go below its floor (floor over that > 1: 60% cannot "
                 "be met without less CPU)"),
        Row("layout_decode", "decode of every column on one thread (use_threads=False), ns of CPU per level update",
            {"segments (levels as lists)": seg_ns, "plain int64 layout": plain_ns,
             "segments over plain": seg_ns / plain_ns}, note="no target: how much of the gap is the layout"),
        Row("storage", "storage, bytes per level update",
            {"raw JSON": raw / levels, "JSONL+zstd 9": zstd_bytes / levels},
            [Check("segments", segments / levels, "<=", BYTES_PER_LEVEL)]),
        Row("replay_rss", "peak RSS of this process after the replays", {"MB": rss},
            note="no target: context; data generation ran in a child process"),
    ]


def recorder_rows(symbol_counts: list[int], hog_symbols: int, seconds: float, root: Path,
                  skip: bool) -> list[Row]:
    runs = [(f"recorder_{n}", n, False) for n in symbol_counts] + [(f"recorder_{hog_symbols}_hog", hog_symbols, True)]
    rows = []
    for key, n, hog in runs:
        label = f"recorder, {n} symbols @100ms" + (", one busy-loop process running" if hog else "")
        if skip:
            rows.append(Row(key, label, {"p99 ms": None}, note="skipped"))
            continue
        try:
            r = recorder_capacity(n, seconds, root, hog=hog)
        except Exception as exc:  # noqa: BLE001 -- a failed run is reported as a row, not a crash
            rows.append(Row(key, label, {"p99 ms": None, "error": repr(exc)}))
            continue
        checks = [Check("p99 receive->journal", r["p99_lag_ms"], "<", P99_HOG_MS if hog else P99_MS, " ms")]
        if not hog:
            checks.insert(0, Check("cores", r["cores"], "<", CORES))
        # Fewer frames than due means the exchange, on the same cores, fell behind: the row then
        # measures a lighter load than it says.
        values: dict[str, float | int | str | None] = {"peak RSS MB": r["rss_mb"], "frames": r["frames"],
                                                       "frames due @100ms": int(n * seconds * 10)}
        if hog:
            values["cores"] = r["cores"]
        rows.append(Row(key, label, values, checks))
    return rows


def dask_rows(data: Path, n_symbols: int, days: int, levels: int, skip: bool, repeat: int = 3) -> list[Row]:
    """``--workers 1`` vs ``2`` as ``acts replay`` runs them (worker threads; cluster start and stop
    inside the timing), best of ``repeat`` alternating runs; worker processes once each, as context."""
    label = f"Dask replay, {n_symbols} symbols x {days} days, --workers 1 vs 2"
    if skip:
        return [Row("dask", label, {"speedup": None}, note="skipped")]
    symbols = dask_symbols(n_symbols)

    def run(workers: int, which: list[str], processes: bool = False) -> int:
        return sum(1 for _ in replay_distributed(data, which, FEATURES, DEFAULT_START_MS, None, workers=workers,
                                                 processes=processes))

    def whole_symbols() -> int:  # what the 2 workers run (sized_partitions: whole symbols), in this process
        parts = sized_partitions(SegmentStore.open(data), symbols, DEFAULT_START_MS, None, 2)
        return sum(len(replay_partition(str(data), s, FEATURES, a, b)[0]) for s, a, b in parts)

    acts_replay(data, symbol=symbols[0])  # warm: the compiled lane, when this row runs alone
    t_whole, _ = _timed(whole_symbols)
    best = {1: float("inf"), 2: float("inf")}
    cpu = {1: 0.0, 2: 0.0}
    rows = {1: 0, 2: 0}
    for _ in range(repeat):  # alternating, so that a burst of other work on the machine hits both alike
        for workers in (1, 2):
            c0 = _cpu_s()
            took, rows[workers] = _timed(lambda: run(workers, symbols))  # noqa: B023 - called at once
            if took < best[workers]:
                best[workers], cpu[workers] = took, _cpu_s() - c0
    t1, t2 = best[1], best[2]
    o2, _ = _timed(lambda: run(2, []), repeat)  # the cluster's start and stop alone: no parts
    p1, _ = _timed(lambda: run(1, symbols, processes=True))
    p2, prows = _timed(lambda: run(2, symbols, processes=True))
    if not rows[1] == rows[2] == prows:
        raise RuntimeError(f"--workers 1 gave {rows[1]} rows, --workers 2 {rows[2]}, --processes {prows}")
    cores1 = cpu[1] / t1  # one worker already runs pyarrow's decode threads and the replay's prefetch thread
    ceiling = BENCH_CORES / cores1
    note = (f"worker threads; parts: {n_symbols} whole symbols (replayed in this process: {t_whole:.2f} s); "
            f"cluster start+stop {o2:.2f} s; limit: --workers 1 used {cores1:.2f} cores (pyarrow's decode threads "
            f"and the prefetch thread beside the fold), so a second worker on {BENCH_CORES} cores can add at most "
            f"{ceiling:.2f}x; the GIL (Python at snapshots, markers, row hand-offs) takes part of what is left; "
            "worker processes (--processes): "
            f"{p1:.1f} s vs {p2:.1f} s, seconds of start-up each")
    return [Row("dask", label,
                {"workers 1 s": t1, "workers 2 s": t2, "CPU s, workers 1": cpu[1], "CPU s, workers 2": cpu[2],
                 "cores used, workers 1": cores1, f"ceiling on {BENCH_CORES} cores: {BENCH_CORES} / cores": ceiling,
                 "cluster start+stop s, 2 workers": o2, "in-process replay s, same parts": t_whole,
                 "speedup without cluster start": max(t1 - o2, 1e-9) / max(t2 - o2, 1e-9),
                 "processes: workers 1 s": p1, "processes: workers 2 s": p2, "processes: speedup": p1 / p2,
                 "level updates": levels, "rows": rows[2]},
                [Check("speedup", t1 / t2, ">=", DASK_SPEEDUP, "x")], note=note)]


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (worker processes, once closed)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=10_000_000, help="level updates of market data")
    parser.add_argument("--depth", type=int, default=2000, help="levels per side in the generated book")
    parser.add_argument("--quick", action="store_true",
                        help="the same rows on smaller data: ~0.3 M level updates, 8 s recorder runs, a small Dask set")
    parser.add_argument("--capacity", default="50,200", help="symbol counts for the recorder rows")
    parser.add_argument("--hog-symbols", type=int, default=200, help="symbols for the recorder row with a busy loop")
    parser.add_argument("--capacity-seconds", type=float, default=30.0)
    parser.add_argument("--dask-symbols", type=int, default=4)
    parser.add_argument("--dask-days", type=int, default=3)
    parser.add_argument("--dask-minutes", type=int, default=120, help="minutes of data in each day")
    parser.add_argument("--dc-event-lines", type=int, default=DC_EVENT_PREFIX,
                        help="JSON lines fed to DepthCache sampled after every event")
    parser.add_argument("--repeat", type=int, default=3,
                        help="best of N for the per-minute and per-second replays and both decodes (the short ones)")
    parser.add_argument("--skip", default="", help="comma-separated: recorder, dask (their rows say 'skipped')")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="cache of generated data (default $ACTS_BENCH_DIR or ~/.cache/acts-bench)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default: results.json, or results-quick.json, in the work dir)")
    args = parser.parse_args(argv)
    if args.quick:
        args.levels, args.capacity_seconds, args.dc_event_lines = 300_000, 8.0, 500
        args.dask_days, args.dask_minutes = 2, 5
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    root = args.work_dir or default_root()
    out = args.out or root / ("results-quick.json" if args.quick else "results.json")

    with _section("main dataset"):
        main_dir = ensure_dataset(root, "main", {"levels": args.levels, "depth": args.depth, "seed": 1})
    levels = json.loads((main_dir / "ready.json").read_text())["levels"]
    print(f"data: {levels:,} level updates of {SYMBOL}, {args.depth} levels a side, in {main_dir}", flush=True)
    with _section("replay, baseline and decode rows"):
        rows = replay_rows(main_dir, levels, args.repeat, args.dc_event_lines)
    counts = [int(x) for x in args.capacity.split(",") if x.strip()]
    with _section("recorder rows"):
        rows += recorder_rows(counts, args.hog_symbols, args.capacity_seconds, root, "recorder" in skip)
    dask_levels = 0
    dask_dir = root
    with _section("Dask row"):
        if "dask" not in skip:
            dask_dir = ensure_dataset(root, "dask", {"symbols": args.dask_symbols, "days": args.dask_days,
                                                     "minutes": args.dask_minutes, "seed": 1})
            dask_levels = json.loads((dask_dir / "ready.json").read_text())["levels"]
        rows += dask_rows(dask_dir / "data", args.dask_symbols, args.dask_days, dask_levels, "dask" in skip,
                          args.repeat)

    print(render(rows))
    met = [c.met for row in rows for c in row.checks]
    print(f"targets met: {sum(met)} of {len(met)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"levels": levels, "args": {k: str(v) for k, v in vars(args).items()}, "main_data": str(main_dir)}
    out.write_text(json.dumps({"meta": meta, "rows": to_json(rows)}, indent=2, sort_keys=True))
    print(f"results: {out}")
    return 0
