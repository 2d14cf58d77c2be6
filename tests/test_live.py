"""The promise, tested: the minute entries written live equal the replay of the recorded segments."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from acts.core.events import BookTicker, DepthUpdate, Trade, to_wire
from acts.core.symbols import StreamKind, parse_time_ms
from acts.core.timeunits import MINUTE_MS
from acts.exchange.wire import message_kind
from acts.features.builtin import default_registry
from acts.sinks import MongoSink, SpoolingSink, SqliteSink
from acts.storage.store import SegmentStore
from tests.live import run_live

SYMBOLS = ["BTCUSDT", "SHIBUSDT"]
TRADE_NAMES = ["trade_count", "buy_volume", "sell_volume", "vwap", "last_price", "trade_imbalance"]


def _recorded_wires(data_dir: Path, symbol: str, kind: type = DepthUpdate) -> list[dict]:
    store = SegmentStore(data_dir)
    return [to_wire(e) for p in store.paths(symbol) for e in store.events(p, symbol) if isinstance(e, kind)]


def _assert_recorded_as_sent(data_dir: Path, sent_texts: list[str], symbols: list[str] = SYMBOLS) -> None:
    """Each symbol's recorded diffs are an unbroken run of what the exchange sent, byte-exact once parsed."""
    sent = [json.loads(text) for text in sent_texts]
    for symbol in symbols:
        recorded = _recorded_wires(data_dir, symbol)
        mine = [m for m in sent if m["s"] == symbol]
        start = mine.index(recorded[0])
        assert recorded == mine[start : start + len(recorded)] and len(recorded) > 100


@pytest.mark.mongo
@pytest.mark.slow
def test_live_entries_in_mongo_equal_the_replay(tmp_path: Path, mongo_uri: str) -> None:
    sink = SpoolingSink(MongoSink(mongo_uri, database=f"live{uuid.uuid4().hex[:8]}"),
                        SqliteSink(tmp_path / "spool.sqlite"))
    run = run_live(tmp_path, SYMBOLS, 7, sink)
    sink.close()
    assert len(run.live) >= 2 * len(SYMBOLS), "several simulated minutes were recorded"
    assert sum(e["valid"] for e in run.live) >= len(SYMBOLS)
    assert run.live == run.replayed(SYMBOLS)  # field for field, minute for minute


@pytest.mark.slow
def test_recorded_events_reserialize_to_what_the_exchange_sent(tmp_path: Path) -> None:
    run = run_live(tmp_path, SYMBOLS, 4, SqliteSink(tmp_path / "entries.sqlite"))
    _assert_recorded_as_sent(tmp_path, run.sent)
    assert run.live == run.replayed(SYMBOLS)


@pytest.mark.slow
def test_journal_rotations_while_recording_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """Rolls run in a worker thread while recording goes on; every diff sent is in exactly one segment."""
    run = run_live(tmp_path, SYMBOLS, 6, SqliteSink(tmp_path / "entries.sqlite"), roll_every_s=1.5)
    assert len(run.report.segments) >= 3 * len(SYMBOLS)  # rotated (and rolled) while recording
    _assert_recorded_as_sent(tmp_path, run.sent)
    assert run.live == run.replayed(SYMBOLS)


@pytest.mark.mongo
@pytest.mark.slow
def test_mongo_outage_loses_nothing_and_duplicates_nothing(tmp_path: Path, mongo_uri: str) -> None:
    dead = MongoSink("mongodb://127.0.0.1:9/?directConnection=true", timeout_ms=200)
    sink = SpoolingSink(dead, SqliteSink(tmp_path / "spool.sqlite"))
    run = run_live(tmp_path, SYMBOLS, 6, sink)
    assert run.report.frames > 1000  # recording went on at full speed
    assert run.live is None  # MongoDB was unreachable throughout ...
    assert sink.pending >= 2 * len(SYMBOLS)  # ... and every entry is kept on disk
    sink.primary = MongoSink(mongo_uri, database=f"back{uuid.uuid4().hex[:8]}")  # MongoDB is back
    assert sink.flush() == 0
    sink.flush()  # flushing again writes nothing twice
    assert sink.read() == run.replayed(SYMBOLS)
    sink.close()


@pytest.mark.slow
def test_trades_and_tickers_recorded_live_replay_as_they_were_sent(tmp_path: Path) -> None:
    """``--streams depth,trade,bookTicker``: every trade and ticker of a symbol is recorded, byte-exact once
    parsed, as an unbroken run of what the exchange sent; the live entries, trade features included,
    equal the replay's, and each valid minute's trade_count is the number of recorded trades in it."""
    extra = default_registry().resolve(TRADE_NAMES)
    # One symbol: three frames a step, the exchange and the recorder on one loop, keeping up at 40x.
    symbols = ["SHIBUSDT"]
    run = run_live(tmp_path, symbols, 6, SqliteSink(tmp_path / "entries.sqlite"), streams=tuple(StreamKind),
                   extra=extra)
    _assert_recorded_as_sent(tmp_path, run.sent, symbols)
    sent = [json.loads(text) for text in run.exchange.sent_other]
    for symbol in symbols:
        for kind, event_type in ((StreamKind.TRADE, Trade), (StreamKind.BOOK_TICKER, BookTicker)):
            recorded = _recorded_wires(tmp_path, symbol, event_type)
            mine = [m for m in sent if m["s"] == symbol and message_kind(m) is kind]
            start = mine.index(recorded[0])
            assert recorded == mine[start : start + len(recorded)] and len(recorded) > 100, (symbol, kind)
    assert run.live == run.replayed(symbols)
    counted = [e for e in run.live if e["trade_count"] is not None]
    assert counted  # a minute with a trade before it and after it
    for entry in counted:
        minute_ms = parse_time_ms(entry["time"])
        times = [t["T"] for t in _recorded_wires(tmp_path, entry["symbol"], Trade)]
        assert entry["trade_count"] == sum(minute_ms <= t < minute_ms + MINUTE_MS for t in times) > 0


@pytest.mark.slow
def test_a_trade_gap_live_nulls_the_trade_features_of_its_minute(tmp_path: Path) -> None:
    """``skip_trades``: the recorded trade ids jump once; that minute's trade features are null, live and
    in replay alike, and the minutes before and after it count their trades."""
    extra = default_registry().resolve(TRADE_NAMES)
    run = run_live(tmp_path, ["BTCUSDT"], 6, SqliteSink(tmp_path / "entries.sqlite"),
                   streams=(StreamKind.DEPTH, StreamKind.TRADE), faults=("skip_trades:BTCUSDT:2",), extra=extra)
    trades = _recorded_wires(tmp_path, "BTCUSDT", Trade)
    jumps = [(a, b) for a, b in zip(trades, trades[1:], strict=False) if b["t"] != a["t"] + 1]
    assert [b["t"] - a["t"] for a, b in jumps] == [3]
    ((_, after),) = jumps
    gap_minute = after["T"] - after["T"] % MINUTE_MS
    rows = {parse_time_ms(e["time"]): e for e in run.live}
    assert rows[gap_minute]["trade_count"] is None
    assert any(e["trade_count"] for e in run.live)
    assert run.live == run.replayed(["BTCUSDT"])


@pytest.mark.parametrize(("streams", "message"), [
    ("depth,kline_1m", "unknown stream 'kline_1m'; use some of depth,trade,bookTicker"),
    ("trade,bookTicker", "must include depth"),
])
def test_record_streams_unknown_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       streams: str, message: str) -> None:
    from acts.cli import main

    code = main(["record", "BTC", "--data-dir", str(tmp_path / "data"), "--streams", streams, "--duration", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()  # nothing started, nothing written
