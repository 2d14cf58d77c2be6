"""``python -m bench.memory``: peak RSS of ``acts replay --every 100ms --out F.parquet`` on a small and a
50 M-row request (issue 15: "memory stays flat on a 50 M-row request").

Strategy: rows, not events, are what could pile up in memory, so the recording is sparse and cheap
to write: per symbol a snapshot at every hour and a diff every ``--diff-every`` seconds that
continues the update-id chain (quiet intervals carry the row before them, valid). Each request
runs ``acts replay`` in its own process; its peak RSS is the kernel's ``ru_maxrss`` for that child
(``os.wait4``), so the numbers are the CLI's own, imports included.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from acts.core.events import DepthUpdate, Event, Snapshot
from acts.core.symbols import iso_ms
from acts.core.timeunits import HOUR_MS
from acts.exchange.generator import DEFAULT_START_MS
from acts.storage.segments import write_segments

#: Twenty names the CLI accepts (``BTC`` is ``BTCUSDT``).
SYMBOLS = ["BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE", "TRX", "DOT", "LINK",
           "LTC", "BCH", "AVAX", "XLM", "UNI", "ATOM", "ETC", "FIL", "APT", "NEAR"]
_LEVELS = 20  # levels a side in each snapshot


def sparse_events(symbol: str, start_ms: int, hours: int, diff_every_s: int) -> Iterator[Event]:
    """A snapshot each hour and a one-level diff every ``diff_every_s`` seconds, one unbroken chain."""
    update_id = 1_000
    for hour in range(hours):
        hour_ms = start_ms + hour * HOUR_MS
        bids = tuple((f"{100 - i * 0.01:.2f}", "1.5") for i in range(_LEVELS))
        asks = tuple((f"{100.01 + i * 0.01:.2f}", "2.5") for i in range(_LEVELS))
        yield Snapshot(symbol, update_id, bids, asks, hour_ms * 1_000_000)
        for step in range(1, HOUR_MS // (diff_every_s * 1000)):
            event_ms = hour_ms + step * diff_every_s * 1000
            qty = f"{1 + step % 7}.25"
            level = step % _LEVELS
            bid = ((f"{100 - level * 0.01:.2f}", qty),)
            ask = ((f"{100.01 + level * 0.01:.2f}", qty),)
            bids_, asks_ = (bid, ()) if step % 2 else ((), ask)
            yield DepthUpdate(symbol, event_ms, update_id + 1, update_id + 2, bids_, asks_,
                              (event_ms + 5) * 1_000_000)
            update_id += 2


def write_recording(data_dir: Path, symbols: list[str], hours: int, diff_every_s: int) -> None:
    for symbol in symbols:
        write_segments(data_dir, symbol, sparse_events(symbol, DEFAULT_START_MS, hours, diff_every_s),
                       compression_level=1)


def measure(data_dir: Path, symbols: list[str], hours: int, every: str, features: str,
            out: Path) -> dict[str, float]:
    """Run one ``acts replay`` over the first ``hours`` and return rows, seconds and peak RSS (MB)."""
    start = iso_ms(DEFAULT_START_MS)
    end = iso_ms(DEFAULT_START_MS + hours * HOUR_MS)
    acts = str(Path(sys.executable).with_name("acts"))
    argv = [acts, "replay", "--data-dir", str(data_dir), "--from", start, "--to", end, "--symbols", ",".join(symbols),
            "--features", features, "--every", every, "--out", str(out), "--quiet"]
    began = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - began
    assert child.stderr is not None
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"acts replay failed: {child.stderr.read().decode()[-2000:]}")
    rows = pq.read_metadata(out).num_rows
    out.unlink()
    return {"rows": rows, "seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20, help="how many symbols (at most 20)")
    parser.add_argument("--hours", type=int, nargs="+", default=[7, 70], help="request lengths, in hours")
    parser.add_argument("--every", default="100ms")
    parser.add_argument("--features", default="mid,bias10")
    parser.add_argument("--diff-every", type=int, default=10, help="seconds between a symbol's diffs")
    parser.add_argument("--dir", type=Path, default=None, help="keep the recording here (default: a temp dir)")
    args = parser.parse_args(argv)
    symbols = [f"{s}USDT" for s in SYMBOLS[: args.symbols]]
    with tempfile.TemporaryDirectory(prefix="acts-memory-") as tmp:
        data_dir = args.dir or Path(tmp) / "data"
        if not data_dir.exists():
            began = time.perf_counter()
            write_recording(data_dir, symbols, max(args.hours), args.diff_every)
            print(f"recording: {len(symbols)} symbols x {max(args.hours)} h, a diff every {args.diff_every} s "
                  f"({time.perf_counter() - began:.0f} s to write)", flush=True)
        for hours in args.hours:
            got = measure(data_dir, symbols, hours, args.every, args.features, Path(tmp) / "out.parquet")
            print(f"{len(symbols)} symbols x {hours} h every {args.every}: {got['rows'] / 1e6:.2f} M rows, "
                  f"{got['seconds']:.0f} s, peak RSS {got['peak_rss_mb']:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
