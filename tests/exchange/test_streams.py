"""Trades and bookTickers: what the generator makes, how the exchange serves them, and their faults."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from acts.core.events import BookTicker, Trade, decode_message
from acts.core.symbols import StreamKind
from acts.exchange.faults import Fault, FaultKind, Faults, parse_fault
from acts.exchange.generator import STEP_MS, MarketGenerator
from acts.exchange.server import LocalExchange
from acts.exchange.wire import message_kind
from tests.exchange.conftest import SYMBOLS, read_frames

_STEPS = 600


def _run(symbols: list[str], steps: int = _STEPS, seed: int = 3) -> list[dict[str, Any]]:
    gen = MarketGenerator(symbols, seed=seed)
    return [m for _ in range(steps) for m in gen.step_streams()]


def _of(messages: list[dict[str, Any]], symbol: str, kind: StreamKind) -> list[dict[str, Any]]:
    return [m for m in messages if m["s"] == symbol and message_kind(m) is kind]


def test_trades_are_consecutive_within_their_step_and_both_ways() -> None:
    messages = _run(["BTCUSDT", "SHIBUSDT"])
    for symbol in ("BTCUSDT", "SHIBUSDT"):
        trades = _of(messages, symbol, StreamKind.TRADE)
        assert len(trades) > _STEPS / 2
        assert [t["t"] for t in trades] == list(range(trades[0]["t"], trades[0]["t"] + len(trades)))
        assert all(t["E"] - STEP_MS < t["T"] <= t["E"] for t in trades)
        assert [t["T"] for t in trades] == sorted(t["T"] for t in trades)
        assert {t["m"] for t in trades} == {True, False}
        assert list(trades[0]) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]  # Binance's spot trade keys
        assert all(isinstance(decode_message(t, t["E"] * 10**6), Trade) for t in trades)


def test_trades_at_the_best_levels_and_tickers_equal_the_book_after_their_diff() -> None:
    """Rebuild the book from a snapshot and the diffs: every trade is at the best bid (m) or ask (not m)
    and no bigger than it; every ticker names the diff just applied and that book's best bid and ask."""
    gen = MarketGenerator(["ETHUSDT"], seed=9)
    snap = gen.snapshot("ETHUSDT", 5000)
    bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
    last_u, tickers, trades = snap["lastUpdateId"], 0, 0
    for _ in range(_STEPS):
        for msg in gen.step_streams():
            kind = message_kind(msg)
            if kind is StreamKind.DEPTH:
                for side, levels in ((bids, msg["b"]), (asks, msg["a"])):
                    for p, q in levels:
                        side.pop(Decimal(p), None) if Decimal(q) == 0 else side.__setitem__(Decimal(p), Decimal(q))
                last_u = msg["u"]
                continue
            best_bid, best_ask = max(bids), min(asks)
            if kind is StreamKind.TRADE:
                trades += 1
                price = best_bid if msg["m"] else best_ask
                assert Decimal(msg["p"]) == price and 0 < Decimal(msg["q"]) <= (bids if msg["m"] else asks)[price]
            else:
                tickers += 1
                assert list(msg) == ["u", "s", "b", "B", "a", "A"]  # Binance's spot bookTicker keys
                assert msg["u"] == last_u
                assert (Decimal(msg["b"]), Decimal(msg["B"]), Decimal(msg["a"]), Decimal(msg["A"])) == (
                    best_bid, bids[best_bid], best_ask, asks[best_ask])
                assert isinstance(decode_message(msg, -1), BookTicker)
    assert trades > _STEPS / 2 and _STEPS / 4 < tickers <= _STEPS  # a ticker only when the BBO moved


def test_same_seed_same_bytes_and_the_diffs_do_not_change() -> None:
    assert _run(SYMBOLS, 200) == _run(SYMBOLS, 200)
    depth_only = MarketGenerator(SYMBOLS, seed=3)
    diffs = [m for _ in range(200) for m in depth_only.step()]
    assert [m for m in _run(SYMBOLS, 200) if message_kind(m) is StreamKind.DEPTH] == diffs


# --- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("skip_trades:BTCUSDT:2", Fault(FaultKind.SKIP_TRADES, symbol="BTCUSDT", count=2)),
    ("drop_trades@5", Fault(FaultKind.SKIP_TRADES, 5.0)),
    ("bad_ticker@1:ETHUSDT", Fault(FaultKind.BAD_TICKER, 1.0, "ETHUSDT")),
])
def test_parse_trade_and_ticker_faults(spec: str, expected: Fault) -> None:
    parsed = parse_fault(spec)
    assert (parsed.kind, parsed.delay_s, parsed.symbol, parsed.count) == (
        expected.kind, expected.delay_s, expected.symbol, expected.count)


def test_skip_trades_makes_one_trade_id_gap_and_leaves_diffs_alone() -> None:
    gen, faults = MarketGenerator(SYMBOLS, seed=3), Faults(SYMBOLS)
    faults.inject("skip_trades@1:BTCUSDT:3", 0.0)
    sent = [m for step in range(100) for m in faults.plan(gen.step_streams(), step / 10).messages]
    reference = _run(SYMBOLS, 100)
    ids = [t["t"] for t in _of(sent, "BTCUSDT", StreamKind.TRADE)]
    ((before, after),) = [(a, b) for a, b in zip(ids, ids[1:], strict=False) if b != a + 1]
    assert after == before + 4  # three trade ids never sent
    assert len(ids) == len(_of(reference, "BTCUSDT", StreamKind.TRADE)) - 3
    assert _of(sent, "ETHUSDT", StreamKind.TRADE) == _of(reference, "ETHUSDT", StreamKind.TRADE)
    assert [m for m in sent if message_kind(m) is not StreamKind.TRADE] == [
        m for m in reference if message_kind(m) is not StreamKind.TRADE]


def test_bad_ticker_doubles_one_bid_quantity() -> None:
    gen, faults = MarketGenerator(SYMBOLS, seed=3), Faults(SYMBOLS)
    faults.inject("bad_ticker:ETHUSDT", 0.0)
    sent = [m for _ in range(50) for m in faults.plan(gen.step_streams(), 0.0).messages]
    reference = _run(SYMBOLS, 50)
    changed = [(a, b) for a, b in zip(sent, reference, strict=True) if a != b]
    ((bad, good),) = changed
    assert message_kind(bad) is StreamKind.BOOK_TICKER and bad["s"] == "ETHUSDT"
    assert Decimal(bad["B"]) == 2 * Decimal(good["B"]) and {**bad, "B": good["B"]} == good


def test_restart_renumbers_tickers_with_the_diffs() -> None:
    gen, faults = MarketGenerator(["BTCUSDT"], seed=3), Faults(["BTCUSDT"])
    faults.inject("restart:+5000", 0.0)
    sent = [m for _ in range(30) for m in faults.plan(gen.step_streams(), 0.0).messages]
    last_u = None
    for msg in sent:
        if message_kind(msg) is StreamKind.DEPTH:
            last_u = msg["u"]
        elif message_kind(msg) is StreamKind.BOOK_TICKER:
            assert msg["u"] == last_u
    assert last_u == gen.streams["BTCUSDT"].last_update_id + 5000


# --- over loopback ------------------------------------------------------------------------


async def test_combined_trade_and_ticker_streams_with_subscribe_and_unsubscribe(
        http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    names = "btcusdt@trade/btcusdt@bookTicker/ethusdt@depth@100ms"
    async with http.ws_connect(f"{ex.stream_url}stream?streams={names}") as ws:
        frames = await read_frames(ws, 60)
        assert {f["stream"] for f in frames} == set(names.split("/"))
        for frame in frames:
            kind = {"btcusdt@trade": StreamKind.TRADE, "btcusdt@bookTicker": StreamKind.BOOK_TICKER}.get(
                frame["stream"], StreamKind.DEPTH)
            assert message_kind(frame["data"]) is kind
        await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@depth@100ms"],
                                      "id": 7}))
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 8}))
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
        frames = await read_frames(ws, 100_000, until=lambda f: f.get("id") == 9)
        assert sorted(frames[-1]["result"]) == ["btcusdt@bookTicker", "ethusdt@trade"]
        later = await read_frames(ws, 40)
    assert {f["stream"] for f in later} == {"btcusdt@bookTicker", "ethusdt@trade"}


async def test_raw_trade_stream(http: aiohttp.ClientSession, ex: LocalExchange) -> None:
    async with http.ws_connect(f"{ex.stream_url}ws/ethusdt@trade") as ws:
        frames = await read_frames(ws, 20)
    assert len(frames) == 20 and all(f["e"] == "trade" and f["s"] == "ETHUSDT" for f in frames)
    assert [f["t"] for f in frames] == list(range(frames[0]["t"], frames[0]["t"] + 20))


def test_synthetic_recording_with_trades_and_tickers_keeps_its_depth_events() -> None:
    from acts.core.events import DepthUpdate, Marker, Snapshot
    from acts.exchange.synthetic import synthetic_events

    plain = list(synthetic_events(SYMBOLS, 0.5, gap_rate=0.05))
    full = list(synthetic_events(SYMBOLS, 0.5, gap_rate=0.05, streams=tuple(StreamKind)))
    assert [e for e in full if isinstance(e, (DepthUpdate, Snapshot, Marker))] == plain
    trades = [e for e in full if isinstance(e, Trade)]
    assert len(trades) > 300 and {type(e) for e in full} == {DepthUpdate, Snapshot, Marker, Trade, BookTicker}
    assert all(e.recv_ns > e.trade_time_ms * 10**6 for e in trades)
    only_trades = list(synthetic_events(SYMBOLS, 0.5, streams=(StreamKind.DEPTH, StreamKind.TRADE)))
    assert not any(isinstance(e, BookTicker) for e in only_trades)


def test_recorded_trades_and_tickers_are_served_from_segments(tmp_path: Any) -> None:
    """``acts exchange --history``: recorded trades and tickers go out with their diffs, as recorded, each
    trade no earlier than the step of its ``E``."""
    from acts.core.events import to_wire
    from acts.exchange.feed import SegmentFeed
    from acts.exchange.synthetic import synthetic_events
    from acts.storage.store import SegmentStore
    from tests.conftest import record

    record(tmp_path, list(synthetic_events(["BTCUSDT"], 1, seed=3, streams=tuple(StreamKind))))
    store = SegmentStore(tmp_path)
    recorded = [to_wire(e) for p in store.paths("BTCUSDT") for e in store.events(p, "BTCUSDT")
                if isinstance(e, (Trade, BookTicker))]
    feed = SegmentFeed(tmp_path)
    served: list[dict[str, Any]] = []
    for _ in range(700):
        step = feed.step()
        assert all(m["E"] <= feed.now_ms for m in step if message_kind(m) is StreamKind.TRADE)
        served += [m for m in step if message_kind(m) is not StreamKind.DEPTH]
    assert len(recorded) > 500 and served == recorded


async def test_a_combined_url_of_hundreds_of_streams_is_served(http: aiohttp.ClientSession) -> None:
    """200 symbols x depth, trade and bookTicker: a ~14 KiB URL, past aiohttp's default 8 KiB line."""
    from acts.core.symbols import stream_name
    from acts.exchange.feed import GeneratorFeed

    symbols = [f"S{i:03d}USDT" for i in range(200)]
    names = "/".join(stream_name(kind, s) for s in symbols for kind in StreamKind)
    assert len(names) > 8192
    async with LocalExchange(GeneratorFeed(symbols, seed=1, depth=20), speed=0.5) as ex:  # 600 frames a step
        async with http.ws_connect(f"{ex.stream_url}stream?streams={names}") as ws:
            frames = await read_frames(ws, 50)
    assert len(frames) == 50 and {message_kind(f["data"]) for f in frames} == set(StreamKind)
