from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acts.core.events import to_wire
from acts.exchange.generator import MarketGenerator
from acts.recorder import importer
from acts.recorder.import_frames import parse_line
from acts.recorder.importer import import_jsonl
from acts.storage.segments import read_events
from acts.storage.store import SegmentStore


def _capture(steps: int = 300) -> tuple[dict, list[dict]]:
    gen = MarketGenerator(["BTCUSDT", "ETHUSDT"], seed=4)
    diffs = list(gen.run(3))
    snapshot = gen.snapshot("BTCUSDT", 100)
    return snapshot, diffs + list(gen.run(steps))


def _stored(data_dir: Path, symbol: str) -> list:
    store = SegmentStore(data_dir)
    return [e for p in store.paths(symbol) for e in read_events(p)]


def test_all_three_line_styles_and_snapshots(tmp_path: Path) -> None:
    snapshot, diffs = _capture()
    lines = []
    for i, msg in enumerate(diffs):
        if i % 3 == 0:
            lines.append(json.dumps(msg))
        elif i % 3 == 1:
            lines.append(json.dumps({"stream": f"{msg['s'].lower()}@depth@100ms", "data": msg}))
        else:
            lines.append(f"{msg['E'] * 1000 + 7} {json.dumps(msg)}")  # microseconds
        if i == 5:
            lines.append(json.dumps(snapshot))  # no symbol in the line: taken from --symbol
    src = tmp_path / "cap.jsonl"
    src.write_text("\n".join(lines) + "\n")
    report = import_jsonl([src], tmp_path / "data", "BTCUSDT")
    assert report.malformed == 0
    assert report.events == {"BTCUSDT": 1 + sum(m["s"] == "BTCUSDT" for m in diffs),
                             "ETHUSDT": sum(m["s"] == "ETHUSDT" for m in diffs)}
    stored = _stored(tmp_path / "data", "BTCUSDT")
    wires = [to_wire(e) for e in stored]
    assert wires == [m for m in diffs[:6] if m["s"] == "BTCUSDT"] + [snapshot] + \
        [m for m in diffs[6:] if m["s"] == "BTCUSDT"]
    # Local receive times: explicit microseconds kept exactly, else exchange time.
    assert stored[-1].recv_ns in (diffs[-2]["E"] * 10**6, diffs[-2]["E"] * 10**6 + 7000,
                                  diffs[-1]["E"] * 10**6, diffs[-1]["E"] * 10**6 + 7000)


def test_malformed_lines_are_quarantined_with_line_numbers(tmp_path: Path) -> None:
    _, diffs = _capture(20)
    good = [json.dumps(m) for m in diffs]
    bad = ['{"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 5, "u": 4, "b": [], "a": []}',
           "not json at all", '{"e": "depthUpdat", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [], "a": []}',
           '{"lastUpdateId": 5, "bids": [], "asks": []}',
           '{"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [["1e5", "1"]], "a": []}']
    src = tmp_path / "cap.jsonl"
    src.write_text("\n".join(good[:4] + bad + good[4:]) + "\n")
    report = import_jsonl([src], tmp_path / "data")
    assert report.malformed == len(bad)
    assert [line.split(":")[1] for line in report.malformed_lines] == [str(n) for n in range(5, 10)]
    assert "U=5 > u=4" in report.malformed_lines[0]
    assert "unknown message type 'depthUpdat'" in report.malformed_lines[2]
    assert "without a symbol" in report.malformed_lines[3]
    quarantined = [json.loads(x) for x in report.quarantine.read_text().splitlines()]  # type: ignore[union-attr]
    assert [q["text"] for q in quarantined] == bad
    assert sum(report.events.values()) == len(good)
    assert report.other_streams == {} and report.trades == {}  # a damaged diff is not another stream


def test_import_is_idempotent(tmp_path: Path) -> None:
    _, diffs = _capture(50)
    src = tmp_path / "cap.jsonl"
    src.write_text("".join(json.dumps(m) + "\n" for m in diffs))
    first = import_jsonl([src], tmp_path / "data")
    second = import_jsonl([src], tmp_path / "data")
    assert sorted(first.segments) == sorted(second.segments)
    assert len(list((tmp_path / "data").rglob("*.parquet"))) == len(set(first.segments))


def test_parse_line_timestamp_units() -> None:
    assert parse_line('1714521600 {"a":1}').local_ns == 1714521600 * 10**9
    assert parse_line('1714521600123 {"a":1}').local_ns == 1714521600123 * 10**6
    assert parse_line('1714521600123456 {"a":1}').local_ns == 1714521600123456 * 10**3
    assert parse_line('1714521600123456789 {"a":1}').local_ns == 1714521600123456789
    assert parse_line('{"a":1}').local_ns is None and parse_line('{"a":1}').frame == {"a": 1}


def test_a_capture_imported_in_small_pieces_is_still_one_file_per_symbol_hour(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, diffs = _capture(400)
    src = tmp_path / "cap.jsonl"
    src.write_text("".join(json.dumps(m) + "\n" for m in diffs))
    whole = import_jsonl([src], tmp_path / "whole")
    monkeypatch.setattr(importer, "FLUSH_EVENTS", 25)  # memory bound: pieces of 25 events
    pieces = import_jsonl([src], tmp_path / "pieces")
    assert [p.name for p in pieces.segments] == [p.name for p in whole.segments]
    assert all(pq.ParquetFile(p).num_row_groups >= 400 // 25 // 2 for p in pieces.segments)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert _stored(tmp_path / "pieces", symbol) == _stored(tmp_path / "whole", symbol)
    assert not list((tmp_path / "pieces").rglob(".tmp-*"))
