"""A trade-id jump is recorded live like a depth gap: a GAP marker saying ``"stream": "trade"``, a log line,
and no resync. First the real fold (``Ingestor``) and session on typed trades; then the asyncio shell on a
fake clock, through to the rolled segments."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from acts.core.clock import FakeClock
from acts.core.events import EventKind, Marker, Trade, to_wire
from acts.recorder.ingest import Ingestor, TradeGap
from acts.recorder.session import Log, RecorderSession, WriteMarker
from acts.storage.journal import Channel, JournalRecord
from acts.storage.records import marker_record
from acts.storage.store import SegmentStore
from tests.recorder.test_session import BASE, markers
from tests.recorder.test_shell import SYMBOL, FakeExchange, _recorder, _until

T0_MS = 1_700_000_000_000


class _Journal:
    def append(self, record: JournalRecord) -> None:
        pass


def _trade_record(trade_id: int, n: int, symbol: str = "BTCUSDT") -> JournalRecord:
    """A typed trade, as the exchange spells it, journaled ``n`` ms after T0."""
    ms = T0_MS + n
    trade = Trade(symbol, ms, trade_id, "100.00", "0.5", ms, False, ms * 1_000_000)
    payload = json.dumps({"stream": f"{symbol.lower()}@trade", "data": to_wire(trade)}).encode()
    return JournalRecord(trade.recv_ns, Channel.STREAM, "", payload)


def _fold_all(steps: list[int | EventKind]) -> tuple[list[WriteMarker], list[object], Ingestor]:
    """Fold trade ids (and chain-affecting markers) through the real fold and session: the GAP markers
    written, every action, and the fold."""
    session = RecorderSession(BASE)
    session.start(0.0)
    ingestor = Ingestor(["BTCUSDT"], [], _Journal())
    actions: list[object] = []
    for n, step in enumerate(steps):
        record = (marker_record(step, "BTCUSDT", (T0_MS + n) * 1_000_000) if isinstance(step, EventKind)
                  else _trade_record(step, n))
        actions += session.folded(ingestor.fold(record), 1.0 + n)
    return markers(actions, EventKind.GAP), actions, ingestor  # type: ignore[arg-type]


@pytest.mark.parametrize(("steps", "gaps"), [
    ([7, 8, 9, 10], []),  # consecutive: no marker
    ([7, 8, 8, 6, 9], []),  # a duplicate and an old id: ignored, and the chain goes on from 8
    ([7, 8, 11, 12], [(2, 9, 11)]),  # 9 and 10 lost
    ([7, 8, 11, 11, 14], [(2, 9, 11), (4, 12, 14)]),
    ([7, 8, EventKind.RESTART, 20, 21], []),  # a new process: its first trade has no previous
    ([7, 8, EventKind.DISCONNECT, EventKind.CONNECT, 20, 21], []),  # a reconnect's first trade neither
    ([7, 8, EventKind.DISCONNECT, 20, 22], [(4, 21, 22)]),  # ... but the chain starts again from it
    ([7, 8, EventKind.CONNECT, 9, 12], [(4, 10, 12)]),  # a handover's CONNECT alone: the feed goes on
    ([EventKind.RESYNC, 7, EventKind.GAP, 9], [(3, 8, 9)]),  # other markers leave the chain alone
])
def test_a_trade_id_jump_writes_one_gap_marker(steps: list[int | EventKind], gaps: list[tuple[int, int, int]]) -> None:
    written, _, ingestor = _fold_all(steps)
    # (position of the jumping trade, expected, got): the marker carries that trade's receive time.
    assert [(m.symbols, m.recv_ns, dict(m.detail)) for m in written] == [
        (("BTCUSDT",), (T0_MS + i) * 1_000_000, {"stream": "trade", "expected": e, "got": g}) for i, e, g in gaps]
    assert ingestor.health["BTCUSDT"].trade_gaps == len(gaps)


def test_a_trade_gap_logs_one_line_and_asks_for_no_snapshot() -> None:
    """With a valid book (no snapshot needed), a trade gap's actions are its log line and its marker only."""
    from acts.book.sequencer import Noted
    from acts.recorder.ingest import Ingested
    from acts.storage.records import record_to_event

    session = RecorderSession(BASE)
    session.start(0.0)
    event = record_to_event(_trade_record(11, 2))
    actions = session.folded(Ingested("BTCUSDT", event, Noted(), trade_gap=TradeGap(9, 11)), 1.0)
    assert actions == [Log(logging.WARNING, "trade gap: expected t=9, got 11", "BTCUSDT"),
                       WriteMarker(EventKind.GAP, ("BTCUSDT",), (("stream", "trade"), ("expected", 9), ("got", 11)),
                                   event.recv_ns)]


def test_the_fold_reports_the_jump_and_the_trade() -> None:
    ingestor = Ingestor(["BTCUSDT", "ETHUSDT"], [], _Journal())
    ingestor.fold(_trade_record(7, 0))
    ingestor.fold(_trade_record(100, 1, "ETHUSDT"))  # per symbol: another symbol's ids are another chain
    result = ingestor.fold(_trade_record(9, 2))
    assert result.trade_gap == TradeGap(expected=8, got=9) and isinstance(result.event, Trade)
    assert ingestor.fold(_trade_record(101, 3, "ETHUSDT")).trade_gap is None
    assert "1 trade gaps" in ingestor.health["BTCUSDT"].line("BTCUSDT", False)


async def test_the_shell_records_a_trade_gap_marker_in_the_segments(tmp_path: Path) -> None:
    """Typed trades through the asyncio shell on a fake clock: the marker is journaled, rolled and stored."""
    clock = FakeClock(autojump=False)
    exchange = FakeExchange(clock)
    recorder = _recorder(tmp_path, clock, exchange)
    task = asyncio.create_task(recorder.run())
    await _until(lambda: bool(exchange.open_streams()), "the stream opened")
    ids = [50, 51, 54, 54, 52, 55]  # 52 and 53 lost; then a duplicate and an old id
    for trade_id in ids:
        ms = clock.time_ns() // 1_000_000
        trade = Trade(SYMBOL, ms, trade_id, "100.00", "0.5", ms, True, clock.time_ns())
        exchange.streams[0].send(json.dumps({"stream": f"{SYMBOL.lower()}@trade", "data": to_wire(trade)}).encode())
    await _until(lambda: recorder.report.frames == len(ids) and not recorder._unfolded, "the trades folded")
    recorder.stop()
    await task
    assert recorder.failure is None
    store = SegmentStore(tmp_path)
    events = [e for p in store.paths(SYMBOL) for e in store.events(p, SYMBOL)]
    gaps = [e for e in events if isinstance(e, Marker) and e.kind is EventKind.GAP]
    assert [json.loads(m.detail) for m in gaps] == [{"stream": "trade", "expected": 52, "got": 54}]
    # After the trade that jumped (capture first: the burst was journaled before the fold), at its receive time.
    jumped = next(i for i, e in enumerate(events) if isinstance(e, Trade) and e.trade_id == 54)
    assert events.index(gaps[0]) > jumped and gaps[0].recv_ns == events[jumped].recv_ns
    assert [e.trade_id for e in events if isinstance(e, Trade)] == ids  # every frame recorded as sent
