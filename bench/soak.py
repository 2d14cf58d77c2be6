"""``python -m bench.soak``: hours-style soak in minutes, never in CI.

Starts the local exchange (``acts exchange``) with a fault every ``--fault-every`` seconds
(cycling drop, skip, stall, an exchange restart whose update ids jump, duplicate, malformed, reorder), records
``--symbols`` symbols with ``acts record`` for ``--minutes`` (rolling the journal every
``--roll-every`` seconds), samples the recorder's RSS, then
reports RSS over time, gaps recorded vs faults injected, update ids lost, and coverage.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from acts.replayer.verify import verify
from bench.procs import ROOT, exchange_process, start_recorder

CYCLE = ["drop", "skip:{sym}:3", "stall:15", "restart:-2000", "duplicate:2", "malformed", "reorder"]
GAPPING = {"drop", "skip", "stall", "restart", "reorder"}  # faults that must show up as gaps


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fault-every", type=float, default=60.0)
    parser.add_argument("--roll-every", type=float, default=600.0,
                        help="journal rotations, so that rolls run during recording, not only at the end")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "_work" / "soak")
    args = parser.parse_args(argv)
    if args.data_dir.exists() and any(args.data_dir.iterdir()):
        # Another run's data (or a recorder still rolling it) would be counted as this run's.
        sys.exit(f"{args.data_dir} is not empty: remove it or pass another --data-dir")
    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    seconds = args.minutes * 60
    faults = []
    t, i = args.fault_every, 0
    while t < seconds - 30:
        faults.append(CYCLE[i % len(CYCLE)].format(sym=symbols[i % len(symbols)]).replace(":", f"@{t:.0f}:", 1)
                      if ":" in CYCLE[i % len(CYCLE)] else f"{CYCLE[i % len(CYCLE)]}@{t:.0f}")
        t += args.fault_every
        i += 1
    samples: list[tuple[float, float]] = []
    with exchange_process(symbols, faults) as exchange:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        started_ms = time.time_ns() // 1_000_000
        stderr_path = args.data_dir / "recorder.stderr"  # a file: a pipe read only at the end could fill up
        with open(stderr_path, "w") as stderr_file:
            recorder = start_recorder(symbols, args.data_dir, exchange, "--snapshot-limit", "100", "--duration",
                                      str(seconds), "--roll-every", str(args.roll_every), stderr=stderr_file)
        start = time.monotonic()
        while recorder.poll() is None and time.monotonic() - start < seconds + 120:
            samples.append((time.monotonic() - start, _rss_mb(recorder.pid)))
            time.sleep(10)
        try:
            recorder.wait(timeout=120)
            exit_note = f"exit {recorder.returncode}"
        except subprocess.TimeoutExpired:  # report what was measured rather than lose it
            recorder.kill()
            recorder.wait()
            exit_note = "killed: still running 120 s after its duration plus 120 s"
        err = stderr_path.read_text()
    report = verify(args.data_dir, symbols, started_ms)
    gaps = sum(h.gaps for h in report.hours)
    missing = sum(h.missing_ids for h in report.hours)
    valid_ms = sum(h.valid_ms for h in report.hours)
    total_ms = valid_ms + sum(h.invalid_ms for h in report.hours)
    injected = [f.split("@")[0] for f in faults]
    settled = [rss for t, rss in samples if t >= 60] or [rss for _, rss in samples]
    # The first roll starts at --roll-every: RSS before it is the recorder's own level, after it the
    # level it keeps (a roll in the recorder's process used to leave it at the roll's peak).
    before_roll = [rss for t, rss in samples if 60 <= t < args.roll_every] or settled[:1]
    after_roll = [rss for t, rss in samples if t >= args.roll_every] or settled[-1:]
    summary = {
        "symbols": args.symbols, "minutes": args.minutes, "faults_injected": injected,
        "gapping_faults": sum(k in GAPPING for k in injected), "gaps_recorded": gaps, "update_ids_lost": missing,
        "coverage": valid_ms / total_ms if total_ms else 0.0, "corrupt_files": len(report.corrupt),
        # Coverage only spans the recorded time; a recorder that stopped receiving shows up here.
        "diffs_recorded_vs_sent_at_100ms": sum(h.diffs for h in report.hours) / (args.symbols * seconds * 10),
        "rss_mb_first_minute_end": settled[0], "rss_mb_last": settled[-1], "rss_mb_max": max(settled),
        "rss_mb_max_before_first_roll": max(before_roll), "rss_mb_max_after_first_roll": max(after_roll),
        "recorder_exit": exit_note,
        "recorder_summary": err.strip().splitlines()[-1] if err.strip() else "",
        "rss_over_time": [(round(t), round(r, 1)) for t, r in samples],
    }
    print(json.dumps(summary, indent=2))
    return 0 if not report.corrupt else 1


if __name__ == "__main__":
    sys.exit(main())
