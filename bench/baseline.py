"""What ACTS is measured against: python-binance's DepthCache fed JSON (the seed's approach) and
the bare decode of ACTS's own segments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from acts.core.timeunits import MINUTE_MS
from acts.storage.segments_v2 import level_offsets
from acts.storage.store import SegmentStore

__all__ = ["depthcache", "bare_decode_segments"]


def depthcache(jsonl: Path, symbol: str, every_event: bool, max_lines: int | None = None) -> tuple[int, int]:
    """DepthCache fed parsed JSON lines; mid, bias10, bias50 from get_bids/get_asks per minute or event.

    Returns (level updates applied, samples)."""
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
                cache = DepthCache(symbol)
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


def bare_decode_segments(data_dir: Path, symbol: str) -> int:
    """Every column of every row group of the symbol's segments into numpy, no book; the rows read.

    A list column (format v2's levels) is decoded as its flat values and offsets, as the fast reader
    takes it: ``to_numpy()`` on a list column would build one Python object per event instead."""
    rows = 0
    for path in SegmentStore.open(data_dir).paths(symbol):
        reader = pq.ParquetFile(path)
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i)
            for column in table.columns:
                if pa.types.is_list(column.type):
                    level_offsets(column)
                else:
                    column.to_numpy()
            rows += table.num_rows
    return rows
