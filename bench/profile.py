"""Where the minute replay's time goes: the bench's profile rows, measured, not estimated.

``replay_profile``: the per-minute replay (``bench.run.acts_replay``) split into what each part costs in
CPU seconds -- decoding the segments (pyarrow's read, and the rest of building ``RowGroup``s), the fold
alone (the same replay over row groups decoded beforehand), and the main thread's wait for the decode
thread -- with the cores the whole replay used (CPU / wall) and the floor that CPU sets on two cores.
``layout_decode``: ns per level update to decode all of a layout's columns on one thread
(``use_threads=False``, CPU time): ACTS's segments (levels as Parquet lists) against the plain int64
layout (bench/plain.py), so the format's share of the gap is a number.

CPU times are ``time.process_time`` (every thread of this process, pyarrow's included) or
``time.thread_time`` (the main thread only); best of ``repeat``, as the other rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from acts.core.timeunits import MINUTE_MS
from acts.exchange.generator import DEFAULT_START_MS
from acts.features.builtin import default_registry
from acts.replayer.replay import ReplayReport, replay_symbol
from acts.storage.columnar import V2_COLUMNS, RowGroup
from acts.storage.segments_v2 import level_offsets
from acts.storage.store import SegmentStore
from bench.plain import EVENTS_FILE, LEVELS_FILE

__all__ = ["ReplayProfile", "replay_profile", "layout_decode_ns"]

#: Cores of the bench machine: the floor of a replay is its CPU spread over all of them.
BENCH_CORES = 2


@dataclass(frozen=True, slots=True)
class ReplayProfile:
    """Seconds of the per-minute replay; CPU seconds unless named wall."""

    wall: float  # the whole replay
    cpu: float  # the whole replay, every thread
    main_cpu: float  # the main thread: the fold and its glue
    decode_read: float  # pyarrow's read of the columns the fast path takes
    decode_rest: float  # the rest of building the row groups (offsets, side, scale checks)
    fold: float  # the replay over row groups decoded beforehand (no decode at all)

    @property
    def wait(self) -> float:
        """Main thread's wall time not spent on its own CPU: waiting for the decode thread (and, on a
        loaded machine, for a core)."""
        return max(self.wall - self.main_cpu, 0.0)

    @property
    def cores(self) -> float:
        return self.cpu / self.wall

    @property
    def floor(self) -> float:
        """The wall time this much CPU needs at best on ``BENCH_CORES`` cores."""
        return self.cpu / BENCH_CORES


def _best(fn: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.process_time) -> tuple[float, float]:
    """(wall, CPU on ``clock``) of the run with the least wall time among ``repeat``."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        w, c = time.perf_counter(), clock()
        fn()
        best = min(best, (time.perf_counter() - w, clock() - c))
    return best


def _replay(store: SegmentStore, symbol: str) -> int:
    features = default_registry().resolve(["mid", "bias10", "bias50"])
    rows = replay_symbol(store, symbol, features, DEFAULT_START_MS, None, ReplayReport(), interval_ms=MINUTE_MS)
    return sum(1 for _ in rows)


def replay_profile(data_dir: Path, symbol: str, repeat: int) -> ReplayProfile:
    """The per-minute replay of ``symbol`` taken apart (see the module docstring)."""
    store = SegmentStore.open(data_dir)
    paths = store.paths(symbol)
    _replay(store, symbol)  # warm: the compiled lane, the page cache
    wall, cpu = _best(lambda: _replay(store, symbol), repeat)
    _, main_cpu = _best(lambda: _replay(store, symbol), repeat, time.thread_time)

    def read() -> None:
        for path in paths:
            with pq.ParquetFile(path) as reader:
                columns = [c for c in V2_COLUMNS if c in reader.schema_arrow.names]  # older files lack some
                for i in range(reader.num_row_groups):
                    reader.read_row_group(i, columns=columns)

    def build() -> None:
        for path in paths:
            for _ in store.row_groups(path, symbol):
                pass

    _, read_cpu = _best(read, repeat)
    _, build_cpu = _best(build, repeat)
    decoded = {path: list(store.row_groups(path, symbol)) for path in paths}
    predecoded = SegmentStore.open(data_dir)

    def row_groups(path: Path, _symbol: str) -> Iterator[RowGroup]:
        return iter(decoded[path])

    predecoded.row_groups = row_groups  # type: ignore[method-assign,assignment]
    _, fold = _best(lambda: _replay(predecoded, symbol), repeat)
    return ReplayProfile(wall, cpu, main_cpu, read_cpu, max(build_cpu - read_cpu, 0.0), fold)


def layout_decode_ns(data_dir: Path, plain_dir: Path, symbol: str, levels: int, repeat: int) -> tuple[float, float]:
    """ns of CPU per level update to decode every column into numpy on one thread: (segments, plain layout).

    Segments: lists as their flat values and offsets (as the fast reader takes them); plain: both of its
    tables (levels and events)."""
    paths = SegmentStore.open(data_dir).paths(symbol)

    def segments() -> None:
        for path in paths:
            with pq.ParquetFile(path) as reader:
                for i in range(reader.num_row_groups):
                    for column in reader.read_row_group(i, use_threads=False).columns:
                        if pa.types.is_list(column.type):
                            level_offsets(column)
                        else:
                            column.to_numpy()

    def plain() -> None:
        for name in (EVENTS_FILE, LEVELS_FILE):
            with pq.ParquetFile(plain_dir / name) as reader:
                for i in range(reader.num_row_groups):
                    for column in reader.read_row_group(i, use_threads=False).columns:
                        column.to_numpy()

    _, seg_cpu = _best(segments, repeat)
    _, plain_cpu = _best(plain, repeat)
    return seg_cpu / levels * 1e9, plain_cpu / levels * 1e9
