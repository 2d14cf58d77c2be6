"""The fast reader's checks from the footer's column statistics (kinds known, levels fit int64), and the
same checks by scanning the columns of a file written without statistics: same arrays, same refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from acts.core.errors import CorruptSegmentError
from acts.core.events import DepthUpdate, Event, EventKind, Snapshot, marker
from acts.storage.columnar import LevelOverflow, RowGroup, read_row_groups
from acts.storage.segments import column_bounds, write_segments

T0 = 1_714_521_600 * 10**9  # 2024-05-01 00:00 UTC, ns
SYM = "XUSDT"


def _events(top_qty: str = "7.50") -> list[Event]:
    return [
        marker(EventKind.CONNECT, SYM, T0, stream="x"),
        Snapshot(SYM, 5, (("10.50", top_qty), ("10.40", "2.25")), (("10.60", "3.00"),), T0 + 1),
        DepthUpdate(SYM, T0 // 10**6 + 100, 6, 7, (("10.45", "1.00"),), (("10.60", "0.00"), ("10.70", "4.00")), T0 + 2),
        DepthUpdate(SYM, T0 // 10**6 + 200, 8, 8, (), (("10.80", "0.50"),), T0 + 3),
    ]


def _without_statistics(path: Path, out: Path, change: object = None) -> Path:
    """``path`` rewritten row group by row group with no column statistics, its footer kept."""
    reader = pq.ParquetFile(path)
    meta = reader.metadata.metadata
    with pq.ParquetWriter(out, reader.schema_arrow.with_metadata(meta), write_statistics=False) as writer:
        for i in range(reader.num_row_groups):
            table = reader.read_row_group(i)
            writer.write_table(change(table) if change is not None else table)  # type: ignore[operator]
    return out


def _arrays(group: RowGroup) -> list[np.ndarray]:
    return [group.starts, group.ends, group.kinds, group.times, group.firsts, group.finals, group.recv, group.side,
            group.price * group.price_factor, group.qty * group.qty_factor]


def test_column_bounds_are_the_footer_statistics_and_none_without_them(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, SYM, _events())
    footer = pq.read_metadata(path)
    assert column_bounds(footer, 0, "kind") == (EventKind.DEPTH, EventKind.CONNECT)
    assert column_bounds(footer, 0, "price.list.element") == (1040, 1080)  # scale 2: 10.40 .. 10.80
    assert column_bounds(footer, 0, "qty.list.element") == (0, 750)
    assert column_bounds(footer, 0, "no.such.column") is None
    bare = pq.read_metadata(_without_statistics(path, tmp_path / "bare.parquet"))
    assert column_bounds(bare, 0, "kind") is None and column_bounds(bare, 0, "price.list.element") is None


def test_a_file_without_statistics_decodes_to_the_same_arrays(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, SYM, _events())
    bare = _without_statistics(path, tmp_path / "bare.parquet")
    (with_stats,), (scanned,) = list(read_row_groups(path, SYM)), list(read_row_groups(bare, SYM))
    for a, b in zip(_arrays(with_stats), _arrays(scanned), strict=True):
        np.testing.assert_array_equal(a, b)
    assert with_stats.qty_factor == scanned.qty_factor == 10**6  # one spelling: scaled as read


@pytest.mark.parametrize("statistics", [True, False])
def test_a_level_beyond_int64_is_refused_with_or_without_statistics(tmp_path: Path, statistics: bool) -> None:
    # The huge quantity is the row group's largest value but not its first or its smallest.
    (path,) = write_segments(tmp_path, SYM, _events(top_qty="99999999999.00"))
    if not statistics:
        path = _without_statistics(path, tmp_path / "bare.parquet")
    with pytest.raises(LevelOverflow, match="does not fit the fast book"):
        list(read_row_groups(path, SYM))


def test_a_kind_the_reader_does_not_know_is_refused_without_statistics(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, SYM, _events())

    def kind_9(table: pa.Table) -> pa.Table:
        kinds = pc.if_else(pc.equal(table.column("kind"), EventKind.CONNECT), pa.scalar(9, pa.int8()),
                           table.column("kind"))
        return table.set_column(0, table.schema.field("kind"), kinds)

    bare = _without_statistics(path, tmp_path / "bare.parquet", kind_9)
    with pytest.raises(CorruptSegmentError, match="kind 9"):
        list(read_row_groups(bare, SYM))
