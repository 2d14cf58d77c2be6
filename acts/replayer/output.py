"""Replay output: the same columns to Parquet, CSV or a terminal table."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from acts.core.errors import InputError
from acts.core.symbols import iso_minute, iso_ms
from acts.features.pipeline import MinuteRow

__all__ = ["columns", "rows_to_table", "write_output", "format_value"]

BASE_COLUMNS = ("minute", "symbol", "valid", "last_book_update")


def columns(feature_names: Sequence[str]) -> list[str]:
    return [*BASE_COLUMNS, *feature_names]


def _record(row: MinuteRow) -> list[Any]:
    last = iso_ms(row.last_book_update_ms) if row.last_book_update_ms is not None else None
    return [iso_minute(row.minute_ms), row.symbol, row.valid, last, *row.values]


def rows_to_table(rows: Iterable[MinuteRow], feature_names: Sequence[str]) -> pa.Table:
    records = [_record(r) for r in rows]
    names = columns(feature_names)
    types = [pa.string(), pa.string(), pa.bool_(), pa.string()] + [pa.float64()] * len(feature_names)
    data = {
        name: pa.array([rec[i] for rec in records], type=t)
        for i, (name, t) in enumerate(zip(names, types, strict=True))
    }
    return pa.table(data)


def format_value(value: Any) -> str:
    """CSV/table text: ``repr`` for floats (shortest exact round-trip), empty for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_output(rows: Iterable[MinuteRow], feature_names: Sequence[str], out: Path) -> int:
    """Write rows to ``out`` (``.parquet`` or ``.csv``), atomically; return the row count."""
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"--out {out}: use a .parquet or .csv file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        if suffix == ".parquet":
            table = rows_to_table(rows, feature_names)
            pq.write_table(table, tmp, compression="zstd")
            count = table.num_rows
        else:
            with open(tmp, "w", newline="") as fh:
                count = _write_csv(fh, rows, feature_names)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)  # a replay that failed half-way leaves nothing behind
    return count


def _write_csv(fh: Any, rows: Iterable[MinuteRow], feature_names: Sequence[str]) -> int:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(columns(feature_names))
    count = 0
    for record in table_records(rows):
        writer.writerow(record)
        count += 1
    return count


def csv_text(rows: Iterable[MinuteRow], feature_names: Sequence[str]) -> str:
    buf = io.StringIO()
    _write_csv(buf, rows, feature_names)
    return buf.getvalue()


def table_records(rows: Iterable[MinuteRow]) -> Iterable[list[str]]:
    for row in rows:
        yield [format_value(v) for v in _record(row)]
