from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acts.core.errors import CorruptSegmentError, PrecisionError
from acts.core.events import DepthUpdate, EventKind, Snapshot, decode_message, marker, to_wire
from acts.exchange.generator import MarketGenerator
from acts.storage import segments
from acts.storage.segments import read_events, read_info, write_segments
from tests.conftest import record


def test_round_trip_is_lossless_and_typed(tmp_path: Path, recording_events: list) -> None:
    record(tmp_path, recording_events)
    for symbol in ("BTCUSDT", "SHIBUSDT"):
        stored = [e for p in sorted((tmp_path / "segments" / f"symbol={symbol}").rglob("*.parquet"))
                  for e in read_events(p)]
        assert stored == [e for e in recording_events if e.symbol == symbol]


def test_reserialized_events_equal_the_exchange_messages(tmp_path: Path) -> None:
    gen = MarketGenerator(["SHIBUSDT"], seed=5)
    sent = [gen.snapshot("SHIBUSDT", 50)] + list(gen.run(200))
    events = [decode_message(m, 1_714_521_600 * 10**9 + i, "SHIBUSDT") for i, m in enumerate(sent)]
    paths = write_segments(tmp_path, "SHIBUSDT", events)
    back = [to_wire(e) for p in paths for e in read_events(p)]
    assert back == sent
    # SHIB quantities above 1e10 with two decimals survive exactly.
    assert any(float(q) > 1e9 and len(q.split(".")[1]) == 2 for m in sent for _, q in m.get("bids", []))


def test_odd_spellings_survive(tmp_path: Path) -> None:
    events = [
        DepthUpdate("XUSDT", 1, 1, 1, (("1", "0"), ("0.5", "0.00000000")), (("2.10", "123456789012345678"),), 5),
        Snapshot("XUSDT", 9, (), (), 6),
        marker(EventKind.GAP, "XUSDT", 7, expected=2, got=5),
        DepthUpdate("XUSDT", 2, 2, 2, (), (), 8),
    ]
    (path,) = write_segments(tmp_path, "XUSDT", events)
    assert list(read_events(path)) == events


def test_more_digits_than_int64_fails_loudly(tmp_path: Path) -> None:
    event = DepthUpdate("XUSDT", 1, 1, 1, (("1", "1234567890123456789"),), (), 5)
    with pytest.raises(PrecisionError, match="significant digits"):
        write_segments(tmp_path, "XUSDT", [event])
    assert not list(tmp_path.rglob("*.parquet"))


def test_writes_are_idempotent_and_leave_no_temp_files(tmp_path: Path, recording_events: list) -> None:
    first = sorted(record(tmp_path, recording_events))
    before = {p: p.read_bytes() for p in first}
    second = sorted(record(tmp_path, recording_events))
    assert first == second
    assert {p: p.read_bytes() for p in second} == before
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp")]


def test_segments_are_hourly_and_footer_describes_them(tmp_path: Path, recording_events: list) -> None:
    paths = record(tmp_path, [e for e in recording_events if e.symbol == "BTCUSDT"])
    assert len(paths) == 2  # 00:54 .. 01:06 crosses one hour
    infos = [read_info(p) for p in paths]
    assert infos[0].last_recv_ns < infos[1].first_recv_ns
    assert all(i.symbol == "BTCUSDT" and i.snapshot_recv_ns for i in infos)
    assert sum(i.events for i in infos) == sum(1 for e in recording_events if e.symbol == "BTCUSDT")


def test_row_groups_never_split_an_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "ROW_GROUP_ROWS", 1000)
    gen = MarketGenerator(["BTCUSDT"], seed=2)
    events = [decode_message(m, m["E"] * 10**6) for m in gen.run(1000)]
    (path,) = write_segments(tmp_path, "BTCUSDT", events)
    reader = pq.ParquetFile(path)
    assert reader.num_row_groups > 5
    for i in range(reader.num_row_groups):  # every row group starts on an event's first row
        assert reader.read_row_group(i, columns=["kind"]).column("kind")[0].is_valid
    assert list(read_events(path)) == events


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_damaged_files_raise_a_clear_error(tmp_path: Path, recording_events: list, damage: str) -> None:
    path = record(tmp_path, recording_events[:50])[0]
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"x" * 100)
    else:
        pq.write_table(pq.read_table(path).replace_schema_metadata({}), path)
    with pytest.raises(CorruptSegmentError, match=str(path.name)):
        list(read_events(path))
