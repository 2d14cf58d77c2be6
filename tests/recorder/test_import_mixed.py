"""Import of mixed-stream collector files: ``<local time> <frame>`` with depth, trade, bookTicker and other
frames interleaved, local times in s, ms, µs, ns or ISO-8601, compressed or not (issue 16, "History in")."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acts.cli import main
from acts.core.errors import MalformedMessageError
from acts.core.events import BookTicker, Event, Trade
from acts.exchange.generator import MarketGenerator
from acts.features.builtin import default_registry
from acts.recorder.import_frames import TimeUnit, local_ns, stream_type
from acts.recorder.importer import import_jsonl
from acts.replayer.replay import replay
from acts.storage.segments import read_events
from acts.storage.store import SegmentStore

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
#: Collector latency added to ``E``: odd ns, so each unit's rounding shows.
LATENCY_NS = 3_456_789


# --- the generated capture ------------------------------------------------------------------------------------


def _trade(msg: dict[str, Any], n: int) -> dict[str, Any]:
    return {"e": "trade", "E": msg["E"], "s": msg["s"], "t": n, "p": "65000.01000000", "q": "0.00100000",
            "T": msg["E"], "m": n % 2 == 0, "M": True}


def _book_ticker(msg: dict[str, Any]) -> dict[str, Any]:
    return {"u": msg["u"], "s": msg["s"], "b": "65000.00000000", "B": "1.00000000", "a": "65000.01000000",
            "A": "2.00000000"}


def frames(steps: int = 150, snapshots: bool = True) -> list[tuple[int, bool, dict[str, Any]]]:
    """``(local ns, is depth, frame)`` in receive order: diffs (raw and in envelopes), snapshots (tardis.dev's
    ``@depthSnapshot`` frame and a REST answer naming its symbol), and trade, bookTicker, aggTrade, kline and
    an unknown stream interleaved."""
    gen = MarketGenerator(SYMBOLS, seed=11, depth=40, changes=5)
    out: list[tuple[int, bool, dict[str, Any]]] = []
    for step in range(steps):
        for msg in gen.step():
            ns = msg["E"] * 1_000_000 + LATENCY_NS + step
            stream = f"{msg['s'].lower()}@depth@100ms"
            out.append((ns, True, msg if step % 2 else {"stream": stream, "data": msg}))
            low = msg["s"].lower()
            if step % 3 == 0:
                out.append((ns + 1, False, {"stream": f"{low}@trade", "data": _trade(msg, step)}))
            if step % 4 == 0:
                out.append((ns + 2, False, _trade(msg, step)))  # a raw trade payload
            if step % 5 == 0:
                out.append((ns + 3, False, {"stream": f"{low}@bookTicker", "data": _book_ticker(msg)}))
            if step % 7 == 0:
                agg = {**_trade(msg, step), "e": "aggTrade"}
                out.append((ns + 4, False, {"stream": f"{low}@aggTrade", "data": agg}))
                out.append((ns + 5, False, {"stream": f"{low}@kline_1m", "data": {"e": "kline", "E": msg["E"]}}))
                out.append((ns + 6, False, {"e": "frobnicate", "E": msg["E"], "s": msg["s"]}))  # a type never seen
        if snapshots and step == 3:
            ns = gen.now_ms * 1_000_000 + LATENCY_NS + 50
            btc = gen.snapshot("BTCUSDT", 40)
            out.append((ns, True, {"stream": "btcusdt@depthSnapshot", "generated": True, "data": btc}))
            out.append((ns + 1, True, {**gen.snapshot("ETHUSDT", 40), "symbol": "ETHUSDT"}))
    return out


def _iso(ns: int, digits: int = 9) -> str:
    whole, frac = divmod(ns, 10**9)
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{str(frac).zfill(9)[:digits]}Z"


#: How each unit writes a local time, and the ns it stands for (what the unit can say of the true time).
UNITS: dict[str, tuple[Callable[[int], str], Callable[[int], int]]] = {
    "s": (lambda ns: f"{ns // 10**9}", lambda ns: ns // 10**9 * 10**9),
    "s with decimals": (lambda ns: str(Decimal(ns) / 10**9), lambda ns: ns),
    "ms": (lambda ns: f"{ns // 10**6}", lambda ns: ns // 10**6 * 10**6),
    "µs": (lambda ns: f"{ns // 10**3}", lambda ns: ns // 10**3 * 10**3),
    "ns": (lambda ns: f"{ns}", lambda ns: ns),
    "ISO-8601": (_iso, lambda ns: ns),
    "ISO-8601 as tardis.dev (7 decimals)": (lambda ns: _iso(ns, 7), lambda ns: ns // 100 * 100),
}
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gz": lambda b: gzip.compress(b, mtime=0),
    "zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


def mixed_file(path: Path, unit: str, compress: str = "plain", steps: int = 150, snapshots: bool = True) -> Path:
    write = UNITS[unit][0]
    text = "".join(f"{write(ns)} {json.dumps(frame)}\n" for ns, _, frame in frames(steps, snapshots))
    path.write_bytes(COMPRESS[compress](text.encode()))
    return path


def todays_form(path: Path, unit: str, steps: int = 150, snapshots: bool = True) -> Path:
    """The same depth frames as raw payloads after ns receive times (what import read before mixed files)."""
    seen = UNITS[unit][1]
    lines = []
    for ns, depth, frame in frames(steps, snapshots):
        if depth:
            payload = frame["data"] if "data" in frame else frame
            if frame.get("stream") == "btcusdt@depthSnapshot":
                payload = {**payload, "symbol": "BTCUSDT"}
            lines.append(f"{seen(ns)} {json.dumps(payload)}\n")
    path.write_text("".join(lines))
    return path


def stored(data_dir: Path) -> dict[str, list[Event]]:
    store = SegmentStore(data_dir)
    return {s: [e for p in store.paths(s) for e in read_events(p)] for s in store.symbols()}


def depth_only(events: dict[str, list[Event]]) -> dict[str, list[Event]]:
    return {s: [e for e in evs if not isinstance(e, (Trade, BookTicker))] for s, evs in events.items()}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _counts() -> tuple[dict[str, int], dict[str, int]]:
    """``({"trade": n, "bookTicker": n}, {other stream: n})`` of ``frames()``."""
    imported: dict[str, int] = {}
    other: dict[str, int] = {}
    for _, depth, frame in frames():
        if depth:
            continue
        data = frame.get("data", frame)
        kind = "bookTicker" if "e" not in data else data["e"]
        target = imported if kind in ("trade", "bookTicker") else other
        target[kind] = target.get(kind, 0) + 1
    return imported, other


# --- the import -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", list(COMPRESS))
@pytest.mark.parametrize("unit", list(UNITS))
def test_a_mixed_file_imports_what_the_same_depth_frames_import_in_todays_form(
        unit: str, compress: str, tmp_path: Path) -> None:
    mixed = import_jsonl([mixed_file(tmp_path / f"mixed.{compress}", unit, compress)], tmp_path / "mixed")
    today = import_jsonl([todays_form(tmp_path / "today.jsonl", unit)], tmp_path / "today")
    assert mixed.malformed == 0 and mixed.quarantine is None
    got = stored(tmp_path / "mixed")
    assert depth_only(got) == stored(tmp_path / "today")  # every field, receive times included
    assert mixed.snapshots == {"BTCUSDT": 1, "ETHUSDT": 1}
    imported, other = _counts()
    assert sum(mixed.trades.values()) == imported["trade"]
    assert sum(mixed.book_tickers.values()) == imported["bookTicker"] and mixed.other_streams == other
    assert {s: mixed.events[s] - mixed.trades[s] - mixed.book_tickers[s] for s in SYMBOLS} == today.events
    # Trades and tickers are stored with their symbol's depth events, in receive order, with the receive
    # time the unit can say.
    seen = UNITS[unit][1]
    for symbol in SYMBOLS:
        want = [(seen(ns), frame.get("data", frame)) for ns, depth, frame in frames()
                if not depth and frame.get("data", frame).get("s") == symbol
                and frame.get("data", frame).get("e", "bookTicker") in ("trade", "bookTicker")]
        market = [e for e in got[symbol] if isinstance(e, (Trade, BookTicker))]
        assert [(e.recv_ns, e.trade_id if isinstance(e, Trade) else e.update_id) for e in market] == \
            [(ns, data["t"] if "t" in data else data["u"]) for ns, data in want]
        times = [e.recv_ns for e in got[symbol]]
        assert times == sorted(times)
    assert set(other) == {"aggTrade", "kline", "frobnicate"}
    expected_unit = TimeUnit.ISO if unit.startswith("ISO") else TimeUnit(unit.split()[0])
    assert mixed.times == {expected_unit.value: mixed.lines}
    assert mixed.lines == len(frames()) and mixed.clamped == 0


def test_the_summary_says_how_times_were_read_and_what_was_imported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = mixed_file(tmp_path / "cap.jsonl.gz", "µs", "gz")
    code, out, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data")], capsys)
    assert code == 0 and "malformed" not in err
    imported, other = _counts()
    assert f"  local receive times: {len(frames())} lines in µs; the unit read from each number's size: " \
           "s < 1e11 <= ms < 1e14 <= µs < 1e17 <= ns" in out
    assert f"  {imported['trade']} trades imported (BTCUSDT " in out
    assert f"  {imported['bookTicker']} bookTickers imported (BTCUSDT " in out
    assert f"  {sum(other.values())} lines of other streams skipped (aggTrade {other['aggTrade']}, frobnicate " \
           f"{other['frobnicate']}, kline {other['kline']})" in out
    assert "no depth snapshot" not in out


@pytest.mark.parametrize("token", ["2024-02-30T00:00:00Z", "2016-12-31T23:59:59.999Z", "12:00:00.123",
                                   "17145216001234567890123", "1714521600123x", "2024-05-01T00:00:00.1234567890Z",
                                   "٠١٧١٤٥٢١٦٠٠", "1e999999999"])
def test_a_bad_local_time_is_one_quarantined_line(token: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lines = mixed_file(tmp_path / "good.jsonl", "ISO-8601").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"depthUpdate"' in line and i > 40)
    bad = f"{token} {lines[index].partition(' ')[2]}"
    src = tmp_path / "cap.jsonl"
    src.write_text("\n".join(lines[:index] + [bad] + lines[index + 1:]) + "\n")
    code, out, err = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data")], capsys)
    assert code == 0 and "1 malformed lines" in err and f"{src}:{index + 1}: " in err
    quarantined = [json.loads(x) for x in (tmp_path / "data" / "quarantine" / "import.jsonl").read_text().splitlines()]
    assert [(q["where"], q["text"]) for q in quarantined] == [(f"{src}:{index + 1}", bad)]
    good = import_jsonl([tmp_path / "good.jsonl"], tmp_path / "good")
    assert f"imported {sum(good.events.values()) - 1} events from {good.lines} lines" in out


def test_without_a_snapshot_the_summary_says_rows_stay_invalid_and_replay_agrees(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = mixed_file(tmp_path / "cap.jsonl.zst", "ms", "zst", steps=1300, snapshots=False)  # > 2 minutes
    code, out, _ = run_cli(["import", str(src), "--data-dir", str(tmp_path / "data")], capsys)
    assert code == 0
    for symbol in SYMBOLS:
        assert f"  {symbol}: no depth snapshot in the input: replay's rows for it stay invalid until a snapshot" in out
    rows = list(replay(SegmentStore(tmp_path / "data"), SYMBOLS, default_registry().resolve(["mid"]), 0))
    assert len(rows) >= 4 and not any(row.valid for row in rows)


# --- the pieces -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "ns", "unit"), [
    ("1714521600", 1714521600 * 10**9, TimeUnit.S),
    ("1714521600.123456789", 1714521600123456789, TimeUnit.S),  # exact, no float on the way
    ("1714521600123", 1714521600123 * 10**6, TimeUnit.MS),
    ("1714521600123.5", 1714521600123500000, TimeUnit.MS),
    ("1714521600123456", 1714521600123456000, TimeUnit.US),
    ("1714521600123456789", 1714521600123456789, TimeUnit.NS),
    ("1.714521600123e12", 1714521600123 * 10**6, TimeUnit.MS),
    ("2024-05-01T00:00:00Z", 1714521600 * 10**9, TimeUnit.ISO),
    ("2024-05-01T00:00:00.0287011Z", 1714521600028701100, TimeUnit.ISO),
    ("2024-05-01T00:00:00.123456789Z", 1714521600123456789, TimeUnit.ISO),
    ("2024-05-01T02:00:00.5+02:00", 1714521600500000000, TimeUnit.ISO),
    ("2024-04-30T19:00:00-0500", 1714521600 * 10**9, TimeUnit.ISO),
    ("2024-05-01T00:00:00", 1714521600 * 10**9, TimeUnit.ISO),  # no zone: UTC
])
def test_local_times(token: str, ns: int, unit: TimeUnit) -> None:
    assert local_ns(token) == (ns, unit)


@pytest.mark.parametrize("token", ["nan", "inf", "-1714521600", "1483228799", "4102444800000", "1_714_521_600",
                                   "2024-05-01", "2024-05-01T00:00Z", "2024-05-01 00:00:00", "1e-999999"])
def test_not_local_times(token: str) -> None:
    with pytest.raises(MalformedMessageError):
        local_ns(token)


@pytest.mark.parametrize(("frame", "kind"), [
    ({"stream": "btcusdt@depth", "data": {}}, None),
    ({"stream": "btcusdt@depth@100ms", "data": {}}, None),
    ({"stream": "btcusdt@depthSnapshot", "generated": True, "data": {}}, None),
    ({"e": "depthUpdate"}, None),
    ({"lastUpdateId": 1, "bids": [], "asks": []}, None),
    ({"stream": "btcusdt@depth20@100ms", "data": {"lastUpdateId": 1}}, "depth20"),  # a partial book, not a snapshot
    ({"stream": "btcusdt@trade", "data": {}}, None),  # imported: trades and bookTickers are stored
    ({"stream": "btcusdt@bookTicker", "data": {}}, None),
    ({"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}, None),
    ({"e": "trade", "E": 1}, None),
    ({"stream": "btcusdt@aggTrade", "data": {}}, "aggTrade"),
    ({"stream": "btcusdt@kline_1m", "data": {}}, "kline"),
    ({"stream": "btcusdt@markPrice@1s", "data": {}}, "markPrice"),
    ({"stream": "!miniTicker@arr", "data": []}, "!miniTicker"),
    ({"e": "forceOrder", "E": 1}, "forceOrder"),
    ({"e": "depthUpdat", "U": 1, "u": 2, "b": [], "a": []}, None),  # a damaged diff: the decoder quarantines it
    ({"x": 1}, None),
    ([1, 2], None),
])
def test_stream_types(frame: Any, kind: str | None) -> None:
    assert stream_type(frame) == kind


def test_a_file_mixing_time_forms_and_lines_without_one_counts_each(tmp_path: Path) -> None:
    forms = [UNITS["ms"][0], _iso, lambda ns: ""]  # the last: no local time at all
    lines = []
    for n, (ns, depth, frame) in enumerate(frames(60)):
        if depth and "lastUpdateId" not in frame.get("data", frame) and "lastUpdateId" not in frame:
            lines.append(f"{forms[n % 3](ns)} {json.dumps(frame)}".lstrip())
    src = tmp_path / "cap.jsonl"
    src.write_text("\n".join(lines) + "\n")
    report = import_jsonl([src], tmp_path / "data")
    assert report.malformed == 0 and sum(report.times.values()) == len(lines)
    assert set(report.times) == {"ms", "ISO-8601", "none"} and min(report.times.values()) > 10
    note = report.notes()[0]
    assert f"{report.times['ms']} lines in ms" in note and f"{report.times['ISO-8601']} lines in ISO-8601" in note
    assert f"{report.times['none']} lines without one (a diff takes its exchange time E" in note


#: Frames of streams that are not imported, which a property case may insert anywhere (trades and bookTickers
#: are imported: with a receive time of their own they would move the clamp of later diffs).
OTHERS = [frame for _, depth, frame in frames(8) if not depth and stream_type(frame) is not None]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mix_of_time_forms_envelopes_and_other_streams_imports_like_todays_form(
        data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("mix")
    mixed: list[str] = []
    today: list[str] = []
    for ns, depth, frame in frames(20):
        for other in data.draw(st.lists(st.sampled_from(OTHERS), max_size=2)):
            write, _ = UNITS[data.draw(st.sampled_from(list(UNITS)))]
            mixed.append(f"{write(ns)} {json.dumps(other)}")
        if not depth:
            continue
        write, seen = UNITS[data.draw(st.sampled_from(list(UNITS)))]
        payload = frame.get("data", frame)
        if frame.get("stream") == "btcusdt@depthSnapshot":
            payload = {**payload, "symbol": "BTCUSDT"}
        wrapped = frame if "lastUpdateId" in payload else data.draw(st.sampled_from(
            [payload, {"stream": f"{payload['s'].lower()}@depth@100ms", "data": payload}]))
        mixed.append(f"{write(ns)} {json.dumps(wrapped)}")
        today.append(f"{seen(ns)} {json.dumps(payload)}")
    compress = data.draw(st.sampled_from(list(COMPRESS)))
    (work / "mixed").write_bytes(COMPRESS[compress]("\n".join(mixed).encode()))
    (work / "today").write_text("\n".join(today))
    got = import_jsonl([work / "mixed"], work / "a")
    want = import_jsonl([work / "today"], work / "b")
    market = sum(got.trades.values()) + sum(got.book_tickers.values())
    assert got.malformed == 0 and got.lines - market - sum(got.other_streams.values()) == want.lines
    assert depth_only(stored(work / "a")) == stored(work / "b")
