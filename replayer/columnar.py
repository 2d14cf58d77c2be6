"""Segments straight to book-scale integer arrays: the fast path's reader.

One row group at a time, mantissa/exponent columns become ``BOOK_SCALE`` integers in a single
vectorized step (no strings, no per-level Python objects), and each event is handed to the very
same ``Sequencer``/``MinuteSampler`` as the reference path, with its levels as array slices for
``ArrayBook``. Only the decoding and the book differ from the reference path; every rule is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from acts.errors import CorruptSegmentError, PrecisionError
from recorder.decimals import BOOK_SCALE
from recorder.events import DepthUpdate, Event, EventKind, Marker, Snapshot
from recorder.segments import SCHEMA, read_info

__all__ = ["read_columnar_events", "LevelOverflow"]

_INT64_MAX = np.iinfo(np.int64).max
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_EMPTY = np.empty(0, dtype=np.int64)


class LevelOverflow(PrecisionError):
    """A level's price or quantity does not fit int64 at the book scale (> ~9.2e10 units)."""


def _to_book(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``mantissa * 10**-exponent`` at ``BOOK_SCALE`` decimals (exponent may be below zero after pow10 scaling)."""
    shift = BOOK_SCALE - exponent.astype(np.int64)
    if (shift < 0).any():
        finer = shift < 0
        divisor = _POW10[-shift[finer]]
        if (mantissa[finer] % divisor).any():
            raise PrecisionError(f"a value has more than {BOOK_SCALE} significant decimals")
        out = mantissa.copy()
        out[finer] = mantissa[finer] // divisor
        shift = np.maximum(shift, 0)
        mantissa = out
    factor = _POW10[shift]
    if (mantissa > _INT64_MAX // factor).any():
        raise LevelOverflow(f"a level above {_INT64_MAX / 10**BOOK_SCALE:.3g} units does not fit the fast book")
    return mantissa * factor


def _row_group_events(table: pa.Table, symbol: str, price_pow10: int, qty_pow10: int) -> Iterator[Event]:
    n = table.num_rows
    if n == 0:
        return
    starts = np.flatnonzero(table.column("kind").is_valid().to_numpy(zero_copy_only=False))
    ends = np.append(starts[1:], n)
    side = table.column("side").fill_null(-1).to_numpy()
    price_exp = table.column("price_exp").fill_null(0).to_numpy().astype(np.int64) - price_pow10
    qty_exp = table.column("qty_exp").fill_null(0).to_numpy().astype(np.int64) - qty_pow10
    price = _to_book(table.column("price").fill_null(0).to_numpy(), price_exp)
    qty = _to_book(table.column("qty").fill_null(0).to_numpy(), qty_exp)
    n_bids = np.add.reduceat((side == 0).astype(np.int64), starts).tolist()
    kinds = table.column("kind").fill_null(0).to_numpy()[starts].tolist()  # nulls would make floats
    recv = table.column("recv_ns").fill_null(0).to_numpy()[starts].tolist()
    times = table.column("E").fill_null(0).to_numpy()[starts].tolist()
    firsts = table.column("U").fill_null(0).to_numpy()[starts].tolist()
    finals = table.column("u").fill_null(0).to_numpy()[starts].tolist()
    details = table.column("detail")
    has_levels = (side[starts] >= 0).tolist()
    for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        kind = kinds[i]
        if kind == EventKind.DEPTH or kind == EventKind.SNAPSHOT:
            if has_levels[i]:
                mid = start + n_bids[i]
                bids = (price[start:mid], qty[start:mid])
                asks = (price[mid:end], qty[mid:end])
            else:
                bids = asks = (_EMPTY, _EMPTY)
            if kind == EventKind.DEPTH:
                yield DepthUpdate(symbol, times[i], firsts[i], finals[i], bids, asks, recv[i])  # type: ignore[arg-type]
            else:
                yield Snapshot(symbol, finals[i], bids, asks, recv[i])  # type: ignore[arg-type]
        else:
            yield Marker(EventKind(kind), symbol, recv[i], details[start].as_py() or "{}")


def read_columnar_events(path: PurePath, symbol: str, filesystem: pafs.FileSystem | None = None) -> Iterator[Event]:
    """The events of a segment with levels as book-scale integer arrays (for ``ArrayBook``)."""
    info = read_info(path, filesystem)  # same validation and errors as the reference reader
    try:
        reader = pq.ParquetFile(str(path), filesystem=filesystem)
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i, columns=SCHEMA.names)
            yield from _row_group_events(table, symbol, info.price_pow10, info.qty_pow10)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSegmentError(f"{path}: cannot read data ({exc}); move it aside or run 'acts verify'") from None
