"""Replay output: one schema (``time``, ``symbol``, ``valid``, ``last_book_update``, features) as Arrow
record batches, streamed to Parquet, CSV or a terminal table.

``time`` is the start of the interval (event mode: the diff's ``E``) and ``last_book_update`` the
``E`` of the last diff in the book, both ``timestamp[ms, UTC]`` in Arrow and Parquet. CSV and the
terminal show them as ISO text: seconds when the interval is a whole number of seconds of a minute
or more (today's minute rows), milliseconds otherwise (``2024-05-01T00:00:01.500Z``).

A feature is a nullable ``float64`` column; a vector feature of k numbers a nullable fixed-size list
``list<float64>[k]`` (null when the book is invalid or the feature failed), which CSV and the
terminal spread over k columns ``name_0..name_{k-1}`` (``text_columns``).

# Strategy: rows become batches once (``row_batches``), and every writer consumes batches, so
# memory holds one batch whatever the request's length and the API's table and the CLI's files
# are the same data.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from acts.core.errors import InputError
from acts.core.symbols import iso_minute, iso_ms
from acts.core.timeunits import MINUTE_MS, SECOND_MS
from acts.features.pipeline import EVERY_EVENT, MinuteRow
from acts.features.registry import Feature, FeatureValue

__all__ = [
    "BASE_FIELDS",
    "DEFAULT_BATCH_ROWS",
    "columns",
    "features_schema",
    "text_columns",
    "spread_vectors",
    "row_batches",
    "batch_records",
    "time_text",
    "write_batches",
    "csv_text",
    "format_value",
]

TableOrBatch = TypeVar("TableOrBatch", pa.Table, pa.RecordBatch)

#: Record batches hold at most this many rows by default.
DEFAULT_BATCH_ROWS = 65_536
#: Rows gathered before one Parquet row group is written (batches may be smaller).
_ROW_GROUP_ROWS = 131_072
_TIME_MS = pa.timestamp("ms", tz="UTC")

#: The base columns of every features table, before one float64 column per feature.
BASE_FIELDS = (
    pa.field("time", _TIME_MS, nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("valid", pa.bool_(), nullable=False),
    pa.field("last_book_update", _TIME_MS),
)


def columns(features: Sequence[str | Feature]) -> list[str]:
    return [*(f.name for f in BASE_FIELDS), *(f if isinstance(f, str) else f.name for f in features)]


def features_schema(features: Sequence[str | Feature]) -> pa.Schema:
    """The features table's schema: ``time``, ``symbol``, ``valid``, ``last_book_update``, then one
    column per feature, named as registered: nullable float64, or ``list<float64>[k]`` for a vector
    feature. Names are resolved (``default_registry``) to learn which features are vectors."""
    if any(isinstance(f, str) for f in features):
        from acts.features.builtin import default_registry

        registry = default_registry()
        features = [registry.resolve([f])[0] if isinstance(f, str) else f for f in features]
    return pa.schema([*BASE_FIELDS, *(_field(f) for f in features if isinstance(f, Feature))])


def _field(feature: Feature) -> pa.Field:
    if feature.size is None:
        return pa.field(feature.name, pa.float64())
    return pa.field(feature.name, pa.list_(pa.float64(), feature.size))


def text_columns(schema: pa.Schema) -> list[str]:
    """Column names as CSV and the terminal write them: a vector feature ``v`` of k numbers is
    ``v_0..v_{k-1}``."""
    return [field.name for field in _spread_fields(schema)]


def _spread_fields(schema: pa.Schema) -> list[pa.Field]:
    fields: list[pa.Field] = []
    for field in schema:
        size = _size(field.type)
        fields += [field] if size is None else [pa.field(f"{field.name}_{i}", pa.float64()) for i in range(size)]
    return fields


def spread_vectors(data: TableOrBatch) -> TableOrBatch:
    """``data`` (a features table or batch) with each vector column ``v`` of k numbers replaced by k
    float64 columns ``v_0..v_{k-1}``, null where the vector is null: the CSV's columns, for tools
    that take only plain numbers (pandas, a study of each element)."""
    arrays: list[Any] = []
    for field, column in zip(data.schema, data.columns, strict=True):
        size = _size(field.type)
        arrays += [column] if size is None else [pc.list_element(column, i) for i in range(size)]
    return type(data).from_arrays(arrays, schema=pa.schema(_spread_fields(data.schema)))


def _size(kind: pa.DataType) -> int | None:
    return kind.list_size if pa.types.is_fixed_size_list(kind) else None


def row_batches(rows: Iterable[MinuteRow], schema: pa.Schema,
                batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """``rows`` as record batches of ``schema``, at most ``batch_rows`` rows each."""
    kinds = schema.types[len(BASE_FIELDS):]
    times: list[int] = []
    symbols: list[str] = []
    valid: list[bool] = []
    last: list[int | None] = []
    values: list[list[FeatureValue]] = [[] for _ in kinds]

    def flush() -> pa.RecordBatch:
        arrays = [pa.array(times, _TIME_MS), pa.array(symbols, pa.string()), pa.array(valid, pa.bool_()),
                  pa.array(last, _TIME_MS),
                  *(pa.array(column, kind) for column, kind in zip(values, kinds, strict=True))]
        batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
        cleared: list[list[Any]] = [times, symbols, valid, last, *values]
        for column in cleared:
            column.clear()
        return batch

    for row in rows:
        times.append(row.minute_ms)
        symbols.append(row.symbol)
        valid.append(row.valid)
        last.append(row.last_book_update_ms)
        for column, value in zip(values, row.values, strict=True):
            column.append(value)
        if len(times) >= batch_rows:
            yield flush()
    if times:
        yield flush()


def time_text(interval_ms: int) -> Any:
    """How CSV and the terminal write ``time``: whole seconds for minute-or-longer intervals of whole
    seconds (the minute rows' ``2024-05-01T00:01:00Z``), milliseconds otherwise (and in event mode)."""
    if interval_ms != EVERY_EVENT and interval_ms >= MINUTE_MS and interval_ms % SECOND_MS == 0:
        return iso_minute
    return iso_ms


def format_value(value: Any) -> str:
    """CSV/table text: ``repr`` for floats (shortest exact round-trip), empty for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def batch_records(batch: pa.RecordBatch, interval_ms: int) -> Iterator[list[str]]:
    """The rows of one batch as CSV/table text."""
    iso_time = time_text(interval_ms)
    times = batch.column(0).cast(pa.int64()).to_pylist()
    lasts = batch.column(3).cast(pa.int64()).to_pylist()
    symbols = batch.column(1).to_pylist()
    valid = batch.column(2).to_pylist()
    features = [column.to_pylist() for column in spread_vectors(batch).columns[len(BASE_FIELDS):]]
    for i, t in enumerate(times):
        last = lasts[i]
        yield [iso_time(t), symbols[i], format_value(valid[i]), "" if last is None else iso_ms(last),
               *(format_value(column[i]) for column in features)]


def write_batches(batches: Iterable[pa.RecordBatch], schema: pa.Schema, out: Path, interval_ms: int) -> int:
    """Stream ``batches`` to ``out`` (``.parquet`` or ``.csv``), atomically; return the row count.

    Parquet keeps the Arrow types (timestamps); CSV writes ISO text (``time_text``)."""
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"--out {out}: use a .parquet or .csv file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        if suffix == ".parquet":
            count = _write_parquet(batches, schema, tmp)
        else:
            with open(tmp, "w", newline="") as fh:
                count = _write_csv(fh, batches, schema, interval_ms)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)  # a replay that failed half-way leaves nothing behind
    return count


def _write_parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path) -> int:
    count = 0
    waiting: list[pa.RecordBatch] = []
    waiting_rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        # Small batches are gathered so that row groups stay large; memory holds one row group.
        for batch in batches:
            waiting.append(batch)
            waiting_rows += batch.num_rows
            count += batch.num_rows
            if waiting_rows >= _ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(waiting, schema=schema))
                waiting, waiting_rows = [], 0
        if waiting:
            writer.write_table(pa.Table.from_batches(waiting, schema=schema))
    return count


def _write_csv(fh: IO[str], batches: Iterable[pa.RecordBatch], schema: pa.Schema, interval_ms: int) -> int:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(text_columns(schema))
    count = 0
    for batch in batches:
        writer.writerows(batch_records(batch, interval_ms))
        count += batch.num_rows
    return count


def csv_text(rows: Iterable[MinuteRow], features: Sequence[str | Feature], interval_ms: int = MINUTE_MS) -> str:
    """The CSV ``acts replay --out x.csv`` writes for these rows."""
    schema = features_schema(features)
    buf = io.StringIO()
    _write_csv(buf, row_batches(rows, schema), schema, interval_ms)
    return buf.getvalue()
