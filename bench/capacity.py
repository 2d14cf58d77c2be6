"""Recorder capacity: N symbols @100 ms from the local exchange into one recorder process, both real
processes on this machine; optionally with one more CPU-bound process (a busy loop) running.

``python -m bench.capacity --bookticker [--seconds 20]``: what the bookTicker stream costs the recorder
(cores, p99 receive -> journal, peak RSS) at 50 and 200 symbols, ``depth,trade`` against
``depth,trade,bookTicker`` (docs/SCALE.md, "When to turn bookTicker on")."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from bench.procs import exchange_process, start_recorder

__all__ = ["recorder_capacity", "cpu_hog", "bookticker_cost", "TRADES", "TRADES_AND_TICKERS"]

#: The two stream sets ``bookticker_cost`` compares (``acts record --streams``).
TRADES = "depth,trade"
TRADES_AND_TICKERS = "depth,trade,bookTicker"


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def cpu_hog() -> Iterator[subprocess.Popen[bytes]]:
    """One busy-loop process for the duration: "one more CPU-bound process running"."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


def recorder_capacity(n_symbols: int, seconds: float, work_root: Path, hog: bool = False,
                      streams: str = "depth") -> dict[str, Any]:
    """Recorder CPU (cores), peak RSS and p99 receive -> journal lag; its data goes to a temp folder.

    ``streams``: ``acts record --streams`` (default depth alone, as the issue 14 rows were measured)."""
    symbols = [f"S{i:03d}USDT" for i in range(n_symbols)]
    work_root.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"capacity-{n_symbols}-", dir=work_root))
    try:
        with (cpu_hog() if hog else nullcontext()), exchange_process(symbols) as exchange:
            stderr_path = data_dir / "recorder.stderr"  # a file: a pipe read only at the end could fill up
            with open(stderr_path, "w") as stderr_file:
                recorder = start_recorder(symbols, data_dir / "data", exchange, "--snapshot-limit", "100",
                                          "--duration", str(seconds), "--streams", streams, stderr=stderr_file)
            settle = min(5.0, seconds / 3)  # start-up and snapshots excluded from the CPU window
            time.sleep(settle)
            cpu0, t0 = _proc_cpu_s(recorder.pid), time.monotonic()
            time.sleep(max(1.0, seconds - settle - 2.0))
            cpu1, t1 = _proc_cpu_s(recorder.pid), time.monotonic()
            rss = _proc_rss_mb(recorder.pid)
            recorder.wait(timeout=seconds + 120)
            err = stderr_path.read_text()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    match = re.search(r"recorded (\d+) frames.*p99 ([0-9.]+) ms", err.replace("\n", " "))
    if match is None:
        raise RuntimeError(f"no 'recorded ... p99' line from the recorder: {err.strip()[-300:]!r}")
    return {"symbols": n_symbols, "streams": streams, "cores": (cpu1 - cpu0) / (t1 - t0), "rss_mb": rss,
            "frames": int(match.group(1)), "p99_lag_ms": float(match.group(2))}


def bookticker_cost(seconds: float, work_root: Path, sizes: tuple[int, ...] = (50, 200),
                    rounds: int = 1) -> list[dict[str, Any]]:
    """``recorder_capacity`` rows for each size, ``TRADES`` then ``TRADES_AND_TICKERS``, alternating
    (so a neighbour's load on a shared machine falls on both sides of a comparison)."""
    return [recorder_capacity(n, seconds, work_root, streams=streams)
            for _ in range(rounds) for n in sizes for streams in (TRADES, TRADES_AND_TICKERS)]


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--bookticker", action="store_true", help="depth,trade vs depth,trade,bookTicker")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sizes", default="50,200")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = tuple(int(n) for n in args.sizes.split(","))
    root = Path(tempfile.mkdtemp(prefix="acts-capacity-"))
    try:
        rows = (bookticker_cost(args.seconds, root, sizes, args.rounds) if args.bookticker
                else [recorder_capacity(n, args.seconds, root) for n in sizes])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'symbols':>7}  {'streams':<24} {'cores':>6} {'p99 recv->journal ms':>21} {'peak RSS MB':>11} "
          f"{'frames':>8}")
    for r in rows:
        print(f"{r['symbols']:>7}  {r['streams']:<24} {r['cores']:>6.2f} {r['p99_lag_ms']:>21.1f} "
              f"{r['rss_mb']:>11.0f} {r['frames']:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

