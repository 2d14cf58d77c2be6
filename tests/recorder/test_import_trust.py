"""Import of real captures: one bad line never blocks the rest, any compression, any input order (issue 13)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
from pathlib import Path
from typing import Any

import pytest
import zstandard

from acts.cli import main
from acts.core.events import BookTicker, Trade, to_wire
from acts.exchange.generator import MarketGenerator
from acts.features.builtin import default_registry
from acts.recorder.import_frames import stream_type
from acts.recorder.importer import import_jsonl
from acts.replayer.replay import replay
from acts.storage.segments import read_events
from acts.storage.store import SegmentStore

FEATURES = default_registry().resolve(["mid"])


def capture(symbol: str = "BTCUSDT", steps: int = 1500, seed: int = 4) -> list[str]:
    """Lines ``<local us> <json>``: three diffs, a snapshot (no symbol in it), then ``steps`` diffs (~2.5 min)."""
    gen = MarketGenerator([symbol], seed=seed)
    lines = [f"{m['E'] * 1000} {json.dumps(m)}" for m in gen.run(3)]
    lines.append(f"{gen.now_ms * 1000 + 5} {json.dumps(gen.snapshot(symbol, 100))}")
    lines += [f"{m['E'] * 1000 + 7} {json.dumps(m)}" for m in gen.run(steps)]
    return lines


def write(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(lines).encode() + newline.encode())
    return path


def stored(data_dir: Path) -> dict[str, list[Any]]:
    store = SegmentStore(data_dir)
    return {s: [to_wire(e) for p in store.paths(s) for e in read_events(p)] for s in store.symbols()}


def segment_names(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "segments").rglob("*.parquet"))


def rows(data_dir: Path, symbol: str) -> list[Any]:
    return list(replay(SegmentStore(data_dir), [symbol], FEATURES, 0))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# --- one bad value never blocks the rest ----------------------------------------------------------------------


BAD_LINES = {
    "22-digit price": lambda m: {**m, "b": [["1234567890123456789012", "1.00000000"]]},
    "update id >= 2**63": lambda m: {**m, "u": 2**63 + 1},
    "9-decimal price": lambda m: {**m, "a": [["65000.123456789", "1.00000000"]]},
    # Found by the fuzz test: a symbol names folders, so one with a slash wrote outside segments/, and one
    # with other characters was stored under a name no command accepts.
    "symbol with a slash": lambda m: {**m, "s": "BTCU/DT"},
    "symbol with a path": lambda m: {**m, "s": "../../X"},
    "symbol with a caret": lambda m: {**m, "s": "^TCUSDT"},
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_a_bad_value_is_quarantined_with_file_and_line_and_the_rest_imports(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = capture()
    local, _, text = lines[250].partition(" ")
    lines.insert(250, f"{local} {json.dumps(BAD_LINES[name](json.loads(text)))}")
    src = write(tmp_path / "cap.jsonl", lines)
    code, out, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data"), "--symbol", "BTCUSDT"], capsys)
    assert code == 0
    assert f"imported {len(lines) - 1} events" in out
    assert f"{src}:251: " in err and "event 250" not in err
    quarantined = [json.loads(x) for x in (tmp_path / "data" / "quarantine" / "import.jsonl").read_text().splitlines()]
    assert [(q["where"], q["text"]) for q in quarantined] == [(f"{src}:251", lines[250])]
    assert [p.name for p in (tmp_path / "data" / "segments").iterdir()] == ["symbol=BTCUSDT"]
    # The bad diff's ids count as missing: a gap, then the book waits for a snapshot; replay works.
    replayed = rows(tmp_path / "data", "BTCUSDT")
    assert replayed and replayed[0].valid
    assert run_cli(["verify", "--data-dir", str(tmp_path / "data")], capsys)[0] in (0, 1)


@pytest.mark.parametrize("token", ["1" + "0" * 40, "1e400", "inf", "nan", "99999999999999999999999"])
def test_an_impossible_leading_timestamp_is_one_malformed_line(
        token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = capture(steps=200)
    bad = f"{token} {lines[0].partition(' ')[2]}"
    src = write(tmp_path / "cap.jsonl", [bad, *lines])
    code, out, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data"), "--symbol", "BTC"], capsys)
    assert code == 0 and f"{src}:1: " in err
    assert sum(len(v) for v in stored(tmp_path / "data").values()) == len(lines)
    assert not list((tmp_path / "data" / "segments").rglob(".tmp-*"))  # no partial segment left


def test_an_event_time_far_from_the_local_receive_time_is_quarantined(tmp_path: Path) -> None:
    lines = capture(steps=200)
    local, _, text = lines[100].partition(" ")
    msg = json.loads(text)
    ahead = f"{local} {json.dumps({**msg, 'E': msg['E'] + 365 * 86_400_000})}"
    micro = f"{local} {json.dumps({**msg, 'E': msg['E'] * 1000})}"
    src = write(tmp_path / "cap.jsonl", lines[:100] + [ahead, micro] + lines[100:])
    report = import_jsonl([src], tmp_path / "data", "BTCUSDT")
    assert report.malformed == 2 and sum(report.events.values()) == len(lines)
    assert "ahead of its receive time" in report.malformed_lines[0] and "2017..2100" in report.malformed_lines[1]
    last = max(m["E"] for m in stored(tmp_path / "data")["BTCUSDT"] if "E" in m)
    assert last == json.loads(lines[-1].partition(" ")[2])["E"]


# --- real captures --------------------------------------------------------------------------------------------


def test_bom_and_crlf_lose_nothing(tmp_path: Path) -> None:
    lines = capture(steps=100)
    plain = import_jsonl([write(tmp_path / "plain.jsonl", lines)], tmp_path / "a", "BTCUSDT")
    odd = import_jsonl([write(tmp_path / "odd.jsonl", lines, newline="\r\n", bom=True)], tmp_path / "b", "BTCUSDT")
    assert odd.malformed == 0 and odd.events == plain.events
    assert stored(tmp_path / "a") == stored(tmp_path / "b")


@pytest.mark.parametrize(("suffix", "compress"), [
    (".gz", gzip.compress), (".zst", lambda b: zstandard.ZstdCompressor().compress(b)), (".bz2", bz2.compress),
    (".xz", lzma.compress), (".jsonl", gzip.compress),  # by magic bytes, whatever the name
])
def test_compressed_captures_read_transparently(suffix: str, compress: Any, tmp_path: Path) -> None:
    lines = capture(steps=100)
    plain = write(tmp_path / "plain.jsonl", lines)
    packed = tmp_path / f"cap{suffix}"
    packed.write_bytes(compress(plain.read_bytes()))
    report = import_jsonl([packed], tmp_path / "data", "BTCUSDT")
    assert report.malformed == 0 and report.events == {"BTCUSDT": len(lines)}
    import_jsonl([plain], tmp_path / "plain", "BTCUSDT")
    assert stored(tmp_path / "data") == stored(tmp_path / "plain")


def test_a_truncated_compressed_file_keeps_what_was_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    packed = tmp_path / "cap.jsonl.gz"
    packed.write_bytes(gzip.compress("\n".join(capture(steps=400)).encode())[:-2000])
    code, out, err = run_cli(["import", str(packed), "--data-dir", str(tmp_path / "data"), "--symbol", "BTC"], capsys)
    assert code == 0 and "cannot read on" in err and "the lines before were imported" in err
    assert sum(len(v) for v in stored(tmp_path / "data").values()) > 100


def test_other_streams_are_counted_not_quarantined(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    others = [
        {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 1, "p": "1.0", "q": "1.0"},
        {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {}},
        {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "s": "BTCUSDT"}},
    ]
    assert [stream_type(m) for m in others] == ["aggTrade", "kline", "kline"]
    lines = capture(steps=100)
    src = write(tmp_path / "cap.jsonl", lines[:50] + [json.dumps(m) for m in others] + lines[50:])
    code, out, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data"), "--symbol", "BTC"], capsys)
    assert code == 0 and "malformed" not in err and not (tmp_path / "data" / "quarantine").exists()
    assert "3 lines of other streams skipped (aggTrade 1, kline 2)" in out


def test_trades_and_book_tickers_are_imported_and_damaged_ones_quarantined(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = capture(steps=100)
    local, _, frame = lines[50].partition(" ")
    e = json.loads(frame)["E"]
    market = [
        {"e": "trade", "E": e, "s": "BTCUSDT", "t": 1, "p": "1.0", "q": "1.0", "T": e, "m": False, "M": True},
        {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000", "A": "40.66"},
        {"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "1.5", "A": "1"}},
        {"e": "trade", "E": e, "s": "BTCUSDT", "t": 2, "p": "1.0", "q": "1.0"},  # no T, no m: damaged
        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1, "s": "BTCUSDT"}},  # damaged
    ]
    # The BNB ticker has no local time: a spot bookTicker (no E) takes the line before's.
    texts = [json.dumps(m) if i == 1 else f"{local} {json.dumps(m)}" for i, m in enumerate(market)]
    src = write(tmp_path / "cap.jsonl", lines[:50] + texts + lines[50:])
    code, out, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data"), "--symbol", "BTC"], capsys)
    assert code == 0 and "2 malformed lines" in err and f"{src}:54: " in err and f"{src}:55: " in err
    assert "1 trades imported (BTCUSDT 1)" in out and "2 bookTickers imported (BNBUSDT 1, BTCUSDT 1)" in out
    store = SegmentStore(tmp_path / "data")
    got = {s: [ev for p in store.paths(s) for ev in read_events(p)] for s in store.symbols()}
    recv = int(local) * 1000
    trade = next(ev for ev in got["BTCUSDT"] if isinstance(ev, Trade))
    assert (trade.trade_id, trade.price, trade.buyer_is_maker, trade.recv_ns) == (1, "1.0", False, recv)
    (ticker,) = got["BNBUSDT"]
    assert isinstance(ticker, BookTicker) and ticker.recv_ns == recv and ticker.ask_qty == "40.66"


def _day_files(tmp_path: Path) -> tuple[Path, Path]:
    lines = capture(steps=1200)
    return write(tmp_path / "day1.jsonl", lines[:600]), write(tmp_path / "day2.jsonl", lines[600:])


def test_the_order_of_the_inputs_does_not_matter(tmp_path: Path) -> None:
    day1, day2 = _day_files(tmp_path)
    forward = import_jsonl([day1, day2], tmp_path / "forward", "BTCUSDT")
    backward = import_jsonl([day2, day1], tmp_path / "backward", "BTCUSDT")
    assert backward.clamped == forward.clamped == 0
    assert segment_names(tmp_path / "backward") == segment_names(tmp_path / "forward")
    assert stored(tmp_path / "backward") == stored(tmp_path / "forward")
    replayed = rows(tmp_path / "backward", "BTCUSDT")
    assert replayed and all(row.valid for row in replayed)  # today: all rows invalid


def test_a_file_given_twice_is_read_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day1, day2 = _day_files(tmp_path)
    copy = tmp_path / "copy-of-day1.jsonl"
    shutil.copyfile(day1, copy)
    once = import_jsonl([day1, day2], tmp_path / "once", "BTCUSDT")
    code, out, _ = run_cli(["import", str(day2), str(day1), str(day1), str(copy), "--data-dir",
                            str(tmp_path / "twice"), "--symbol", "BTCUSDT"], capsys)
    assert code == 0 and f"{day1}: the same file was given before; read once" in out
    assert f"{copy}: the same file was given before" in out
    assert f"imported {sum(once.events.values())} events" in out
    assert segment_names(tmp_path / "twice") == segment_names(tmp_path / "once")


# --- symbols --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["ADARUB", "ETHBTC", "LTCBRL", "OMGUSD", "BUSDUSD"])
def test_symbol_is_taken_verbatim_for_a_full_symbol(symbol: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "cap.jsonl", capture(symbol, steps=800))
    code, out, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data"), "--symbol", symbol], capsys)
    assert code == 0 and f"  {symbol}: 804 events" in out
    assert SegmentStore(tmp_path / "data").symbols() == [symbol]
    replayed = rows(tmp_path / "data", symbol)
    assert replayed and all(row.valid for row in replayed)


def test_a_snapshot_under_a_symbol_no_diff_names_is_an_error_naming_both(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "cap.jsonl", capture("ADARUB", steps=100))
    code, _, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data"), "--symbol", "ADARUBUSDT"],
                           capsys)
    assert code == 2 and err.startswith("acts: error:")
    assert "ADARUBUSDT" in err and "ADARUB " in err.replace(".", " ") and f"{src}:4" in err
    assert SegmentStore(tmp_path / "data").symbols() == ["ADARUB"]  # the diffs are kept; no ADARUBUSDT


@pytest.mark.parametrize("value", [",", " , ", "BTC,ETH", ""])
def test_symbol_must_name_exactly_one(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write(tmp_path / "cap.jsonl", capture(steps=10))
    code, _, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data"), "--symbol", value], capsys)
    assert code == 2 and err.startswith("acts: error: --symbol") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_a_truncated_zstd_file_is_reported_not_taken_as_complete(
        keep: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # zstandard's reader ends quietly at a cut frame: without a check, a cut .zst read as a shorter, complete file.
    packed = tmp_path / "cap.jsonl.zst"
    data = zstandard.ZstdCompressor().compress("\n".join(capture(steps=400)).encode())
    packed.write_bytes(data[: int(len(data) * keep)])
    code, out, err = run_cli(["import", str(packed), "--data-dir", str(tmp_path / "data"), "--symbol", "BTC"], capsys)
    assert code in (0, 1) and "the file ends inside a zstd frame" in err and "the lines before were imported" in err


def test_a_complete_multi_frame_zstd_file_is_not_reported(tmp_path: Path) -> None:
    lines = capture(steps=100)
    cctx = zstandard.ZstdCompressor()
    packed = tmp_path / "cap.jsonl.zst"
    head, tail = "\n".join(lines[:50]) + "\n", "\n".join(lines[50:])
    packed.write_bytes(cctx.compress(head.encode()) + cctx.compress(tail.encode()))
    report = import_jsonl([packed], tmp_path / "data", "BTCUSDT")
    assert report.malformed == 0 and report.events == {"BTCUSDT": len(lines)}
