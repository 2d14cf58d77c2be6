"""Format version 2: layout, exactness, scales, and parity with version 1 (same events, same replay bytes)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acts.cli import main
from acts.core.errors import PrecisionError
from acts.core.events import DepthUpdate, Event, EventKind, Snapshot, marker
from acts.storage.columnar import NO_SIDE, read_columnar_events, read_row_groups
from acts.storage.segments import SCHEMA, SegmentWriter, read_events, read_info, write_segments
from tests.strategies import SYMBOL, messy_stream, valid_stream

T0 = 1_714_521_600 * 10**9  # 2024-05-01 00:00 UTC, ns


def _by_symbol(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for event in events:
        out.setdefault(event.symbol, []).append(event)
    return out


def _write(data_dir: Path, events: list[Event], version: int) -> list[Path]:
    return [p for symbol, evs in _by_symbol(events).items()
            for p in write_segments(data_dir, symbol, evs, format_version=version)]


def test_new_files_are_version_2_one_row_per_event(tmp_path: Path, recording_events: list[Event]) -> None:
    paths = _write(tmp_path, recording_events, 2)
    for path in paths:
        info = read_info(path)
        footer = json.loads(pq.read_metadata(path).metadata[b"acts.segment"])
        assert info.format_version == footer["format_version"] == 2
        assert "price_pow10" not in footer  # the scale lives in the data, per event
        table = pq.read_table(path)
        assert table.schema.equals(SCHEMA)
        assert table.num_rows == info.events
        assert sum(len(v) for v in table.column("price").to_pylist()) == info.levels
        # The level columns and their leaves are non-null; column names never clash for DuckDB.
        for name in ("kind", "recv_ns", "bid_levels", "price", "qty", "price_scale", "qty_scale"):
            assert not SCHEMA.field(name).nullable and table.column(name).null_count == 0
        assert not SCHEMA.field("price").type.value_field.nullable
        assert len({n.lower() for n in SCHEMA.names}) == len(SCHEMA.names)


def test_round_trip_is_exact_and_v1_reads_the_same(tmp_path: Path, recording_events: list[Event]) -> None:
    for version in (1, 2):
        paths = _write(tmp_path / f"v{version}", recording_events, version)
        back = [e for p in paths for e in read_events(p)]
        assert sorted(back, key=lambda e: (e.symbol, e.recv_ns)) == sorted(
            recording_events, key=lambda e: (e.symbol, e.recv_ns))


def test_each_value_keeps_its_own_spelling(tmp_path: Path) -> None:
    events: list[Event] = [
        # Mixed decimals in one event, zeros spelled two ways, trailing zeros before the point.
        DepthUpdate("XUSDT", 1, 1, 1, (("1", "0"), ("0.5", "0.00000000"), ("1200", "12000000.00")),
                    (("2.10", "123456789012345678"),), T0),
        Snapshot("XUSDT", 9, (), (), T0 + 1),
        marker(EventKind.GAP, "XUSDT", T0 + 2, expected=2, got=5),
        DepthUpdate("XUSDT", 2, 2, 2, (), (), T0 + 3),
        DepthUpdate("XUSDT", 3, 3, 3, (("65000.01000000", "0.00100000"),), (("65000.02000000", "1.00000000"),), T0 + 4),
    ]
    (path,) = write_segments(tmp_path, "XUSDT", events)
    assert list(read_events(path)) == events
    table = pq.read_table(path)
    # Only the mixed event carries per-level decimals; the others have one value per event.
    assert table.column("price_decimals_each").is_valid().to_pylist() == [True, False, False, False, False]
    assert table.column("qty_decimals_each").is_valid().to_pylist() == [True, False, False, False, False]


def test_one_scale_per_piece_and_a_finer_piece_stays_in_the_file(tmp_path: Path) -> None:
    coarse = Snapshot("XUSDT", 1, (("100.00", "1.00"),), (("101.00", "2.00"),), T0)
    fine = Snapshot("XUSDT", 2, (("100.01", "1.00"),), (("101.00", "2.00"),), T0 + 1)
    writer = SegmentWriter(tmp_path, "XUSDT")
    assert writer.write([coarse, coarse]) == [] and writer.write([fine]) == []
    (path,) = writer.close()
    assert list(read_events(path)) == [coarse, coarse, fine]
    reader = pq.ParquetFile(path)
    scales = [reader.read_row_group(i).column("price_scale").to_pylist() for i in range(reader.num_row_groups)]
    assert scales == [[0, 0], [2]]  # 100.00 needs no decimal, 100.01 needs two
    assert reader.read_row_group(1).column("price").to_pylist() == [[10001, 10100]]
    groups = list(read_row_groups(path, "XUSDT"))
    assert [g.price_factor for g in groups] == [10**8, 10**6]  # one factor per row group, to the book scale
    assert groups[1].price.tolist() == [10001, 10100]


def test_values_that_cannot_share_the_files_scale_get_their_events_own(tmp_path: Path) -> None:
    big = DepthUpdate("XUSDT", 1, 1, 1, (("12345678901234567", "1"),), (), T0)  # 17 digits, no decimals
    tiny = DepthUpdate("XUSDT", 2, 2, 2, (("0.00000001", "1"),), (), T0 + 1)  # 8 decimals
    (path,) = write_segments(tmp_path, "XUSDT", [big, tiny])
    assert list(read_events(path)) == [big, tiny]
    assert pq.read_table(path).column("price_scale").to_pylist() == [0, 8]
    both = DepthUpdate("XUSDT", 3, 3, 3, (("12345678901234567", "1"), ("0.00000001", "1")), (), T0 + 2)
    with pytest.raises(PrecisionError, match="event 0: its prices need more than 18 digits"):
        write_segments(tmp_path / "x", "XUSDT", [both])
    assert not list((tmp_path / "x").rglob("*.parquet"))


def test_more_digits_than_int64_are_refused(tmp_path: Path) -> None:
    event = DepthUpdate("XUSDT", 1, 1, 1, (("1", "1234567890123456789"),), (), T0)
    with pytest.raises(PrecisionError, match="significant digits"):
        write_segments(tmp_path, "XUSDT", [event])


def _arrays(path: Path) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for event in read_columnar_events(path, SYMBOL):
        if isinstance(event, (DepthUpdate, Snapshot)):
            sides = tuple(tuple(a.tolist()) for side in (event.bids, event.asks) for a in side)
            out.append((type(event).__name__, event.recv_ns, sides))
        else:
            out.append((event.kind, event.recv_ns, event.detail))
    return out


@settings(max_examples=40, deadline=None)
@given(stream=st.one_of(valid_stream(), messy_stream()), chunk=st.integers(1, 30))
def test_the_fast_reader_sees_the_same_arrays_in_both_versions(tmp_path_factory: pytest.TempPathFactory,
                                                               stream: list[Event], chunk: int) -> None:
    events = [replace(e, recv_ns=T0 + i) for i, e in enumerate(stream)]
    events.insert(1, marker(EventKind.CONNECT, SYMBOL, T0, stream="x"))
    arrays = []
    for version in (1, 2):
        writer = SegmentWriter(tmp_path_factory.mktemp("v"), SYMBOL, format_version=version)
        paths = [p for i in range(0, len(events), chunk) for p in writer.write(events[i:i + chunk])] + writer.close()
        assert [e for p in paths for e in read_events(p)] == events
        arrays.append([a for p in paths for a in _arrays(p)])
    assert arrays[0] == arrays[1]


def test_row_group_arrays(tmp_path: Path) -> None:
    events: list[Event] = [
        Snapshot("XUSDT", 5, (("10.5", "1"), ("10.4", "2")), (("10.6", "3"),), T0),
        marker(EventKind.CONNECT, "XUSDT", T0 + 1, stream="x"),
        DepthUpdate("XUSDT", 1, 6, 6, (), (("10.7", "0"),), T0 + 2),
        DepthUpdate("XUSDT", 2, 7, 7, (), (), T0 + 3),
    ]
    (path,) = write_segments(tmp_path, "XUSDT", events)
    (group,) = read_row_groups(path, "XUSDT")
    assert group.starts.tolist() == [0, 3, 3, 4] and group.ends.tolist() == [3, 3, 4, 4]
    assert group.side.tolist() == [0, 0, 1, 1] and NO_SIDE not in group.side
    assert (group.price * group.price_factor).tolist() == [1_050_000_000, 1_040_000_000, 1_060_000_000, 1_070_000_000]
    assert group.kinds.tolist() == [1, 2, 0, 0] and group.finals.tolist() == [5, 0, 6, 7]
    assert group.event(1) == events[1]
    empty = group.event(3)
    assert isinstance(empty, DepthUpdate) and len(empty.bids[0]) == len(empty.asks[0]) == 0


@pytest.mark.parametrize("engine", ["fast", "python"])
def test_replay_output_is_byte_identical_to_version_1(tmp_path: Path, recording_events: list[Event],
                                                      engine: str) -> None:
    outputs = []
    for version in (1, 2):
        data_dir = tmp_path / f"v{version}"
        _write(data_dir, recording_events, version)
        out = tmp_path / f"v{version}.csv"
        assert main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--engine", engine,
                     "--features", "mid,bias10,bias50,microprice", "--out", str(out), "--quiet"]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and len(outputs[0].splitlines()) > 20


def test_level_arrays_decode_without_copies(tmp_path: Path, recording_events: list[Event]) -> None:
    paths = _write(tmp_path, [e for e in recording_events if e.symbol == "BTCUSDT"], 2)
    group = next(read_row_groups(paths[0], "BTCUSDT"))
    assert not group.price.flags.owndata and not group.qty.flags.owndata  # pyarrow's buffers, not copies
    assert np.array_equal(group.ends[:-1], group.starts[1:])


def test_new_events_of_an_hour_with_a_v1_file_go_to_a_new_v2_file(tmp_path: Path) -> None:
    first = Snapshot("XUSDT", 1, (("100.00", "1.00"),), (), T0)
    later = DepthUpdate("XUSDT", 1_714_521_660_000, 2, 2, (("100.01", "2.00"),), (), T0 + 60 * 10**9)
    (old,) = write_segments(tmp_path, "XUSDT", [first], format_version=1)
    before = old.read_bytes()
    (new,) = write_segments(tmp_path, "XUSDT", [later])
    assert new != old and old.read_bytes() == before  # nothing appended to the v1 file
    assert (read_info(old).format_version, read_info(new).format_version) == (1, 2)
    assert [*read_events(old), *read_events(new)] == [first, later]


def test_trailing_zeros_before_the_point_give_a_negative_scale(tmp_path: Path) -> None:
    events: list[Event] = [Snapshot("XUSDT", 1, (("0.5", "1200"), ("0.4", "300.00")), (("0.6", "0"),), T0)]
    (path,) = write_segments(tmp_path, "XUSDT", events)
    table = pq.read_table(path)
    assert table.column("qty_scale").to_pylist() == [-2] and table.column("qty").to_pylist() == [[12, 3, 0]]
    assert list(read_events(path)) == events
    (group,) = read_row_groups(path, "XUSDT")
    assert (group.qty * group.qty_factor).tolist() == [1200 * 10**8, 300 * 10**8, 0]
