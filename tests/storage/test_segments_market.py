"""Trades (kind 7) and bookTickers (kind 8) in version 2 segments: exact round trip, the fast reader's
arrays, refusal of kinds a reader does not know, and files written before the trade columns existed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acts.core.errors import CorruptSegmentError
from acts.core.events import BookTicker, DepthUpdate, Event, EventKind, Snapshot, Trade, marker
from acts.storage.columnar import read_columnar_events, read_row_groups
from acts.storage.segments import read_events, write_segments
from acts.storage.segments_v2 import TRADE_COLUMNS
from tests.strategies import decimal_text

T0 = 1_714_521_600 * 10**9  # 2024-05-01 00:00 UTC, ns
E0 = T0 // 10**6
SYM = "XUSDT"


def _mixed() -> list[Event]:
    return [
        marker(EventKind.CONNECT, SYM, T0, stream="x"),
        Snapshot(SYM, 5, (("10.50", "1.000"),), (("10.60", "3.000"),), T0 + 1),
        Trade(SYM, E0 + 2, 100, "10.55000000", "0.00100000", E0 + 1, False, T0 + 2_000_000),
        DepthUpdate(SYM, E0 + 3, 6, 6, (("10.51", "2.500"),), (), T0 + 3_000_000),
        BookTicker(SYM, 6, "10.51", "2.500", "10.60", "3.000", T0 + 3_000_001),  # spot: no E
        Trade(SYM, E0 + 4, 101, "10.6", "3", E0 + 4, True, T0 + 4_000_000),
        BookTicker(SYM, 6, "10.51", "2.5", "10.6", "0.30", T0 + 4_000_001, E0 + 4),  # futures: E
        marker(EventKind.GAP, SYM, T0 + 5_000_000, expected=7, got=9),
    ]


def test_trades_and_tickers_round_trip_exactly_with_depth(tmp_path: Path) -> None:
    events = _mixed()
    (path,) = write_segments(tmp_path, SYM, events)
    assert list(read_events(path)) == events
    table = pq.read_table(path)
    assert table.column("kind").to_pylist() == [2, 1, 7, 0, 8, 7, 8, 4]
    assert table.column("bid_levels").to_pylist() == [0, 1, 0, 1, 1, 0, 1, 0]
    assert table.column("trade_id").to_pylist() == [None, None, 100, None, None, 101, None, None]
    assert table.column("buyer_is_maker").to_pylist() == [None, None, False, None, None, True, None, None]
    assert table.column("trade_time_ms").to_pylist()[2] == E0 + 1
    assert table.column("event_time_ms").to_pylist()[2:7] == [E0 + 2, E0 + 3, None, E0 + 4, E0 + 4]
    assert table.column("final_update_id").to_pylist()[4] == 6


def test_the_fast_reader_gives_the_same_trades_and_tickers_and_their_arrays(tmp_path: Path) -> None:
    events = _mixed()
    (path,) = write_segments(tmp_path, SYM, events)
    back = list(read_columnar_events(path, SYM))
    assert [e for e in back if isinstance(e, (Trade, BookTicker))] == [
        e for e in events if isinstance(e, (Trade, BookTicker))]
    (group,) = read_row_groups(path, SYM)
    assert group.kinds.tolist() == [2, 1, 7, 0, 8, 7, 8, 4]
    assert group.trade_ids.tolist() == [0, 0, 100, 0, 0, 101, 0, 0]
    assert group.trade_times.tolist()[2] == E0 + 1 and group.trade_times.tolist()[5] == E0 + 4
    assert group.makers.tolist() == [False] * 5 + [True, False, False]
    # Book scale (1e8): a trade owns one row, a ticker its bid row then its ask row.
    price = (group.price * group.price_factor).tolist()
    qty = (group.qty * group.qty_factor).tolist()
    assert (group.starts[2], group.ends[2]) == (2, 3) and (price[2], qty[2]) == (1_055_000_000, 100_000)
    start = int(group.starts[4])
    assert group.ends[4] - start == 2 and group.side[start:start + 2].tolist() == [0, 1]
    assert price[start:start + 2] == [1_051_000_000, 1_060_000_000] and group.finals[4] == 6
    assert qty[start:start + 2] == [250_000_000, 300_000_000]
    # Depth rows keep their meaning: the diff's one bid.
    assert group.side[int(group.starts[3])] == 0 and price[int(group.starts[3])] == 1_051_000_000


def test_a_depth_only_row_group_reads_no_trade_columns_and_has_zero_arrays(tmp_path: Path) -> None:
    events = [e for e in _mixed() if not isinstance(e, (Trade, BookTicker))]
    (path,) = write_segments(tmp_path, SYM, events)
    (group,) = read_row_groups(path, SYM)
    assert group.trade_ids.tolist() == [0] * len(events) and not group.makers.any()


def test_the_file_name_digest_covers_trade_fields(tmp_path: Path) -> None:
    events = _mixed()
    flipped = [Trade(e.symbol, e.event_time_ms, e.trade_id, e.price, e.qty, e.trade_time_ms, not e.buyer_is_maker,
                     e.recv_ns) if isinstance(e, Trade) else e for e in events]
    (a,) = write_segments(tmp_path / "a", SYM, events)
    (b,) = write_segments(tmp_path / "b", SYM, flipped)
    assert a.name != b.name


def test_format_1_refuses_trades_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trade events cannot be written in segment format 1"):
        write_segments(tmp_path, SYM, _mixed(), format_version=1)


def _rewrite(path: Path, change: object) -> None:
    """Rewrite a segment's data in place, keeping its footer (as another writer might have written it)."""
    table = pq.read_table(path)
    meta = pq.read_metadata(path).metadata
    table = change(table)  # type: ignore[operator]
    pq.write_table(table.replace_schema_metadata(meta), path)


def test_a_kind_the_reader_does_not_know_refuses_the_file(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, SYM, _mixed())

    def kind_9(table: pa.Table) -> pa.Table:
        kinds = pc.if_else(pc.equal(table.column("kind"), 4), pa.scalar(9, pa.int8()), table.column("kind"))
        return table.set_column(0, table.schema.field("kind"), kinds)

    _rewrite(path, kind_9)
    with pytest.raises(CorruptSegmentError, match="kind 9.*upgrade ACTS"):
        list(read_events(path))
    with pytest.raises(CorruptSegmentError, match="kind 9"):
        list(read_row_groups(path, SYM))


def test_version_2_files_without_the_trade_columns_still_read(tmp_path: Path) -> None:
    events = [e for e in _mixed() if not isinstance(e, (Trade, BookTicker))]
    (path,) = write_segments(tmp_path, SYM, events)
    _rewrite(path, lambda table: table.drop_columns(list(TRADE_COLUMNS)))
    assert not set(TRADE_COLUMNS) & set(pq.read_schema(path).names)
    assert list(read_events(path)) == events
    assert [type(e) for e in read_columnar_events(path, SYM)] == [type(e) for e in events]


@st.composite
def _market_events(draw: st.DrawFn) -> list[Event]:
    out: list[Event] = []
    trade_id = draw(st.integers(0, 2**40))
    for i in range(draw(st.integers(1, 12))):
        recv = T0 + i * 1_000_000
        ms = recv // 10**6
        if draw(st.booleans()):
            trade_id += draw(st.integers(1, 3))
            out.append(Trade(SYM, ms, trade_id, draw(decimal_text(10**6, 10**13)), draw(decimal_text(1, 10**10)),
                             ms - draw(st.integers(0, 5)), draw(st.booleans()), recv))
        else:
            out.append(BookTicker(SYM, draw(st.integers(0, 2**62)), draw(decimal_text(10**6, 10**12)),
                                  draw(decimal_text(1, 10**10)), draw(decimal_text(10**12, 10**13)),
                                  draw(decimal_text(1, 10**10)), recv, draw(st.none() | st.just(ms))))
    return out


@settings(max_examples=40, deadline=None)
@given(events=_market_events())
def test_any_trades_and_tickers_round_trip_in_both_readers(tmp_path_factory: pytest.TempPathFactory,
                                                           events: list[Event]) -> None:
    (path,) = write_segments(tmp_path_factory.mktemp("seg"), SYM, events)
    assert list(read_events(path)) == events
    assert list(read_columnar_events(path, SYM)) == events
