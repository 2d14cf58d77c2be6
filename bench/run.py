"""``python -m bench``: ACTS against its baseline and its limit, on the same data, in one run.

Rows (all numbers from this run; ratios, never pass/fail):
  1. ACTS replay + features (mid, bias10, bias50) from segments on disk, sampled every minute, every
     second (``every="1s"``: its time over the minute replay's, target <= 2x) and after every event:
     level updates per second.
  2. Baseline: python-binance's ``DepthCache`` fed the same events from JSON text, same features.
  3. Limit: bare pyarrow decode of the same segments into numpy, no book.
  4. Storage: bytes per level update on disk vs raw JSON and JSONL+zstd of the same events.
  5. Recorder capacity: N symbols at 100 ms from the local exchange in one recorder process:
     CPU, peak RSS, p99 receive -> journal-append lag.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import zstandard

from acts.book.arraybook import ArrayBook
from acts.book.sequencer import Sequencer
from acts.core.events import DepthUpdate, Event, Snapshot, to_wire
from acts.core.timeunits import MINUTE_MS, SECOND_MS
from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.replayer.replay import ReplayReport, replay_symbol
from acts.storage.layout import DataLayout
from acts.storage.segments import write_segments
from acts.storage.store import SegmentStore
from bench.procs import ROOT, exchange_process, start_recorder

WORK = ROOT / "bench" / "_work"
FEATURES = ["mid", "bias10", "bias50"]
SYMBOL = "BTCUSDT"


# --- data ------------------------------------------------------------------------------


def prepare(levels_wanted: int, depth: int) -> tuple[Path, Path, int]:
    """Segments and the equivalent JSONL for ~``levels_wanted`` level updates (cached in bench/_work)."""
    tag = f"{levels_wanted}-{depth}"
    data_dir, jsonl = WORK / f"data-{tag}", WORK / f"events-{tag}.jsonl"
    done = WORK / f"ready-{tag}.json"
    if done.exists():
        return data_dir, jsonl, json.loads(done.read_text())["levels"]
    data_dir.mkdir(parents=True, exist_ok=True)
    minutes = levels_wanted / 5 / 600  # generous (>= 5 level updates per 100 ms diff); cut below
    events: list[Event] = []
    levels = 0
    with open(jsonl, "w") as fh:
        for event in synthetic_events([SYMBOL], minutes, seed=1, depth=depth, snapshot_limit=5000):
            if levels >= levels_wanted and isinstance(event, DepthUpdate) and event.event_time_ms % MINUTE_MS < 100:
                break  # enough, at a minute boundary
            events.append(event)
            if isinstance(event, (DepthUpdate, Snapshot)):
                levels += len(event.bids) + len(event.asks)
                fh.write(json.dumps(to_wire(event), separators=(",", ":")) + "\n")
            if len(events) >= 200_000:
                write_segments(data_dir, SYMBOL, events)
                events = []
    write_segments(data_dir, SYMBOL, events)
    done.write_text(json.dumps({"levels": levels}))
    return data_dir, jsonl, levels


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# --- 1. ACTS ---------------------------------------------------------------------------


def acts_minutes(data_dir: Path, engine: str = "fast", interval_ms: int = MINUTE_MS) -> int:
    """Rows of the replay with features, sampled every ``interval_ms`` (the minute by default)."""
    store = SegmentStore(data_dir)
    features = default_registry().resolve(FEATURES)
    rows = replay_symbol(store, SYMBOL, features, DEFAULT_START_MS, None, ReplayReport(), engine=engine,
                         interval_ms=interval_ms)
    return sum(1 for _ in rows)


def acts_every_event(data_dir: Path) -> int:
    store = SegmentStore(data_dir)
    fns = [f.fn for f in default_registry().resolve(FEATURES)]
    seq = Sequencer(book=ArrayBook())
    samples = 0
    for path in store.paths(SYMBOL):
        for event in store.columnar_events(path, SYMBOL):
            seq.apply(event)
            if seq.valid:
                view = seq.view()
                for fn in fns:
                    fn(view)
                samples += 1
    return samples


# --- 2. DepthCache baseline --------------------------------------------------------------


def depthcache(jsonl: Path, every_event: bool, max_lines: int | None = None) -> tuple[int, int]:
    """The seed's approach: python-binance's DepthCache fed parsed JSON; features from get_bids/get_asks."""
    from binance.ws.depthcache import DepthCache

    cache: Any = None
    levels = samples = 0
    minute = None
    with open(jsonl) as fh:
        for n, line in enumerate(fh):
            if max_lines is not None and n >= max_lines:
                break
            msg = json.loads(line)
            if "lastUpdateId" in msg:
                cache = DepthCache(SYMBOL)
                for bid in msg["bids"]:
                    cache.add_bid(bid)
                for ask in msg["asks"]:
                    cache.add_ask(ask)
                levels += len(msg["bids"]) + len(msg["asks"])
                continue
            if cache is None:
                continue
            for bid in msg["b"]:
                cache.add_bid(bid)
            for ask in msg["a"]:
                cache.add_ask(ask)
            levels += len(msg["b"]) + len(msg["a"])
            this_minute = msg["E"] // MINUTE_MS
            if every_event or this_minute != minute:
                minute = this_minute
                bids, asks = cache.get_bids(), cache.get_asks()
                _mid = (bids[0][0] + asks[0][0]) / 2
                for n_levels in (10, 50):
                    b = sum(q for _, q in bids[:n_levels])
                    a = sum(q for _, q in asks[:n_levels])
                    _bias = (b - a) / (b + a)
                samples += 1
    return levels, samples


# --- 3. bare decode ------------------------------------------------------------------------


def bare_decode(data_dir: Path) -> int:
    rows = 0
    for path in SegmentStore(data_dir).paths(SYMBOL):
        reader = pq.ParquetFile(path)
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i)
            for column in table.columns:
                column.to_numpy()
            rows += table.num_rows
    return rows


# --- 4. storage -----------------------------------------------------------------------------


def storage(data_dir: Path, jsonl: Path, levels: int) -> dict[str, float]:
    segments = sum(p.stat().st_size for p in DataLayout(data_dir).segments.rglob("*.parquet"))
    raw = jsonl.stat().st_size
    compressor = zstandard.ZstdCompressor(level=9)
    with open(jsonl, "rb") as fh:
        zstd_bytes = len(compressor.compress(fh.read()))
    return {"segments": segments / levels, "json": raw / levels, "jsonl_zstd": zstd_bytes / levels}


# --- 5. recorder capacity ---------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def recorder_capacity(n_symbols: int, seconds: float) -> dict[str, Any]:
    """One exchange process and one recorder process on loopback; measures the recorder only."""
    symbols = [f"S{i:03d}USDT" for i in range(n_symbols)]
    with exchange_process(symbols) as exchange:
        data_dir = WORK / f"capacity-{n_symbols}"
        data_dir.mkdir(parents=True, exist_ok=True)
        stderr_path = data_dir / "recorder.stderr"  # a file: a pipe read only at the end could fill up
        with open(stderr_path, "w") as stderr_file:
            recorder = start_recorder(symbols, data_dir, exchange, "--snapshot-limit", "100", "--duration",
                                      str(seconds), stderr=stderr_file)
        time.sleep(min(5.0, seconds / 3))  # start-up and snapshots excluded from the CPU window
        cpu0, t0 = _proc_cpu_s(recorder.pid), time.monotonic()
        time.sleep(max(1.0, seconds - min(5.0, seconds / 3) - 2.0))
        cpu1, t1 = _proc_cpu_s(recorder.pid), time.monotonic()
        rss = _proc_rss_mb(recorder.pid)
        recorder.wait(timeout=seconds + 120)
        err = stderr_path.read_text()
    match = re.search(r"recorded (\d+) frames.*p99 ([0-9.]+) ms", err.replace("\n", " "))
    return {"symbols": n_symbols, "cores": (cpu1 - cpu0) / (t1 - t0), "rss_mb": rss,
            "frames": int(match.group(1)) if match else 0, "p99_lag_ms": float(match.group(2)) if match else None}


# --- the table ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=10_000_000, help="level updates of market data")
    parser.add_argument("--depth", type=int, default=2000, help="levels per side in the generated book")
    parser.add_argument("--quick", action="store_true", help="~0.5 M level updates, one short recorder run")
    parser.add_argument("--capacity", default="10,50,200", help="symbol counts for the recorder row")
    parser.add_argument("--capacity-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.levels, args.capacity, args.capacity_seconds = 500_000, "10", 12.0
    WORK.mkdir(parents=True, exist_ok=True)

    print(f"data: ~{args.levels:,} level updates of {SYMBOL}, {args.depth} levels a side (cached in {WORK})")
    data_dir, jsonl, levels = prepare(args.levels, args.depth)
    results: dict[str, Any] = {"levels": levels}

    acts_minutes(data_dir)  # warm-up: numba's compile (cached on disk after the first run)
    t_min, _ = _timed(lambda: acts_minutes(data_dir))
    t_sec, _ = _timed(lambda: acts_minutes(data_dir, interval_ms=SECOND_MS))
    t_ref, _ = _timed(lambda: acts_minutes(data_dir, engine="python"))
    rss_after_replay = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t_evt, _ = _timed(lambda: acts_every_event(data_dir))
    # DepthCache sorts the whole book on every read: per-event sampling runs on a prefix and is scaled.
    t_dc_min, (dc_levels, _) = _timed(lambda: depthcache(jsonl, every_event=False))
    prefix = 20_000
    t_dc_evt, (dc_evt_levels, _) = _timed(lambda: depthcache(jsonl, every_event=True, max_lines=prefix))
    t_dec, _ = _timed(lambda: bare_decode(data_dir))
    store = storage(data_dir, jsonl, levels)

    rates = {
        "acts_minute": levels / t_min, "acts_second": levels / t_sec, "acts_event": levels / t_evt,
        "acts_reference_minute": levels / t_ref,
        "depthcache_minute": dc_levels / t_dc_min, "depthcache_event": dc_evt_levels / t_dc_evt,
        "bare_decode": levels / t_dec,
    }
    results.update(rates=rates, storage=store, replay_peak_rss_mb=rss_after_replay,
                   second_over_minute_time=t_sec / t_min)
    capacity = []
    for n in (int(x) for x in args.capacity.split(",") if x.strip()):
        try:
            capacity.append(recorder_capacity(n, args.capacity_seconds))
        except Exception as exc:  # noqa: BLE001 -- a failed run is reported as a row, not a crash
            capacity.append({"symbols": n, "error": repr(exc)})
    results["recorder"] = capacity

    def m(rate: float) -> str:
        return f"{rate / 1e6:8.2f} M/s" if rate >= 1e5 else f"{rate / 1e3:8.2f} k/s"

    lines = [
        f"{'row':<58}{'value':>14}   ratio / target",
        f"1. ACTS replay+features, sampled per minute              {m(rates['acts_minute'])}"
        f"   {rates['acts_minute'] / rates['depthcache_minute']:.1f}x DepthCache (target >= 30x), "
        f"{rates['acts_minute'] / rates['bare_decode']:.0%} of bare decode (target >= 50%)",
        f"   ACTS replay+features, sampled every second (1s)        {m(rates['acts_second'])}"
        f"   {t_sec / t_min:.2f}x the minute replay's time (target <= 2x)",
        f"   ACTS reference engine (--engine python), per minute    {m(rates['acts_reference_minute'])}"
        f"   {rates['acts_reference_minute'] / rates['depthcache_minute']:.1f}x DepthCache",
        f"   ACTS replay+features, sampled after every event        {m(rates['acts_event'])}"
        f"   {rates['acts_event'] / rates['depthcache_event']:.1f}x DepthCache per event",
        f"2. python-binance DepthCache (JSON), per minute           {m(rates['depthcache_minute'])}   baseline",
        f"   python-binance DepthCache (JSON), per event (prefix)   {m(rates['depthcache_event'])}   baseline",
        f"3. bare pyarrow decode to numpy                           {m(rates['bare_decode'])}   the limit",
        f"4. storage, bytes per level update: segments {store['segments']:.2f} | raw JSON {store['json']:.1f} | "
        f"JSONL+zstd {store['jsonl_zstd']:.2f}   (target <= 3.5)",
        f"   peak RSS of this process after the replay: {rss_after_replay:.0f} MB",
    ]
    for row in capacity:
        if "error" in row:
            lines.append(f"5. recorder, {row['symbols']:>3} symbols: run failed: {row['error']}")
            continue
        lag = f"{row['p99_lag_ms']:.1f} ms" if row["p99_lag_ms"] is not None else "n/a"
        lines.append(f"5. recorder, {row['symbols']:>3} symbols @100ms: {row['cores']:.2f} cores, peak RSS "
                     f"{row['rss_mb']:.0f} MB, p99 receive->journal {lag}, {row['frames']} frames"
                     "   (target < 1 core, p99 < 50 ms)")
    print("\n".join(lines))
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"results: {args.out}")
    return 0
