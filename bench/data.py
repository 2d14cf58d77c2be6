"""``python -m bench.data KIND --out DIR ...``: generate one bench dataset (run by bench/workdir.py).

``main``: ~``levels`` level updates of one BTCUSDT-like symbol as ACTS segments (``data/``), the
same events as Binance JSON lines (``events.jsonl``, DepthCache's input) and as the plain int64
layout (``plain/``). ``dask``: ``symbols`` symbols x ``days`` UTC days, ``minutes`` of each day,
as segments only. Both end with ``ready.json`` (what was written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from acts.core.events import DepthUpdate, Snapshot, to_wire
from acts.core.timeunits import DAY_MS, MINUTE_MS
from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.synthetic import synthetic_events
from acts.storage.segments import SegmentWriter
from bench.plain import PlainWriter

__all__ = ["SYMBOL", "dask_symbols", "main"]

SYMBOL = "BTCUSDT"
_PIECE = 200_000  # events per segment piece: bounds the generator's memory


def dask_symbols(n: int) -> list[str]:
    return [f"S{i:03d}USDT" for i in range(n)]


def _main_dataset(out: Path, levels_wanted: int, depth: int, seed: int) -> dict[str, int]:
    data_dir = out / "data"
    segments, plain = SegmentWriter(data_dir, SYMBOL), PlainWriter(out / "plain")
    minutes = levels_wanted / 5 / 600  # generous (>= 5 level updates per 100 ms diff); cut below
    piece: list = []
    levels = events = 0
    with open(out / "events.jsonl", "w") as fh:
        for event in synthetic_events([SYMBOL], minutes, seed=seed, depth=depth, snapshot_limit=5000):
            if levels >= levels_wanted and isinstance(event, DepthUpdate) and event.event_time_ms % MINUTE_MS < 100:
                break  # enough, at a minute boundary
            piece.append(event)
            events += 1
            plain.add(event)
            if isinstance(event, (DepthUpdate, Snapshot)):
                levels += len(event.bids) + len(event.asks)
                fh.write(json.dumps(to_wire(event), separators=(",", ":")) + "\n")
            if len(piece) >= _PIECE:
                segments.write(piece)
                piece = []
    segments.write(piece)
    segments.close()
    plain.close()
    return {"levels": levels, "events": events}


def _dask_dataset(out: Path, n_symbols: int, days: int, minutes: int, seed: int) -> dict[str, int]:
    levels = 0
    for i, symbol in enumerate(dask_symbols(n_symbols)):
        writer = SegmentWriter(out / "data", symbol)
        for day in range(days):
            events = list(synthetic_events([symbol], minutes, seed=seed + 100 * i + day,
                                           start_ms=DEFAULT_START_MS + day * DAY_MS))
            levels += sum(len(e.bids) + len(e.asks) for e in events if isinstance(e, (DepthUpdate, Snapshot)))
            writer.write(events)
        writer.close()
    return {"levels": levels}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["main", "dask"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--levels", type=int, default=10_000_000)
    parser.add_argument("--depth", type=int, default=2000)
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.kind == "main":
        info = _main_dataset(args.out, args.levels, args.depth, args.seed)
    else:
        info = _dask_dataset(args.out, args.symbols, args.days, args.minutes, args.seed)
    (args.out / "ready.json").write_text(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
