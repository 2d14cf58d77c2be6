"""bookTickers inside the compiled lane: on ticker-dense data the fast engine gives the reference engine's
rows and report counts, at one minute, one second and every event, with tickers that are checked at once,
wait for one or two diffs, are dropped (passed, mid-batch), differ (at once or after waiting), and across
gaps, snapshots, trades and USD-M futures.

The tickers are made from the reference sequencer's own book (``_dense``), so most are equal and the
lane's compare is what decides; a few are made wrong on purpose.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from acts.book.sequencer import Sequencer
from acts.core.events import BookTicker, DepthUpdate, Event, Snapshot, Trade
from acts.core.markets import Market
from acts.core.symbols import StreamKind
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, MinuteRow
from acts.replayer.replay import ReplayReport, replay
from acts.storage.segments import write_segments
from acts.storage.store import SegmentStore
from tests.conftest import NEAR_HOUR_MS
from tests.replayer.test_bbo_replay import SYMBOL, _text
from tests.replayer.test_bbo_replay import _both as both_engines

#: Every count the fold keeps (``problems`` stays empty here).
COUNTS = ("events", "gaps", "stale_snapshots", "crossed", "bbo_checked", "bbo_mismatched")


def _ticker(u: int, bbo: tuple[int, int, int, int], recv_ns: int, wrong: str = "") -> BookTicker:
    bid, bid_qty, ask, ask_qty = bbo
    if wrong == "qty":
        ask_qty += 1
    elif wrong == "price":
        bid -= 1
    elif wrong == "empty":
        bid_qty = 0  # an empty bid side: equal only to a book without bids
    return BookTicker(SYMBOL, u, _text(bid), _text(bid_qty), _text(ask), _text(ask_qty), recv_ns)


def _dense(events: Sequence[Event], seed: int, wrong_rate: float = 0.0) -> list[Event]:
    """``events`` with about one bookTicker per 1.5 diffs, from the reference book after each applied diff:
    folded after its diff (checked at once), before it (it waits), before the diff before it (it waits
    two diffs), at a u inside the diff's batch (dropped once passed), at an older u (dropped at once), and
    with ``wrong_rate`` of them wrong (a quantity, a price, an empty side). Now and then a diff comes
    twice (the copy is covered: ``Ignored``), between tickers that wait."""
    rng = random.Random(seed)
    truth = Sequencer()
    out: list[Event] = []
    previous_at: int | None = None  # where in ``out`` the previous applied diff sits
    for event in events:
        if previous_at is not None and rng.random() < 0.02:
            out.append(out[previous_at])  # a duplicate of the previous diff, after its tickers
        outcome = truth.apply(event)
        applied = (isinstance(event, DepthUpdate) and truth.valid and truth.position == event.final_update_id
                   and type(outcome).__name__ in ("Applied", "BboChecked"))
        if not applied:
            out.append(event)
            continue
        assert isinstance(event, DepthUpdate)
        bids, asks = truth.view().bids(1), truth.view().asks(1)
        bbo = (*(bids[0] if bids else (0, 0)), *(asks[0] if asks else (0, 0)))
        u, recv = event.final_update_id, event.recv_ns
        before: list[Event] = []
        after: list[Event] = []
        for _ in range(rng.choice((0, 1, 1, 2))):
            wrong = rng.choice(("qty", "price", "empty")) if rng.random() < wrong_rate else ""
            where = rng.random()
            if where < 0.35:
                after.append(_ticker(u, bbo, recv, wrong))
            elif where < 0.7:
                before.append(_ticker(u, bbo, recv, wrong))
            elif where < 0.8 and previous_at is not None:
                out.insert(previous_at, _ticker(u, bbo, recv, wrong))  # waits across the previous diff
                previous_at += 1
            elif where < 0.9 and event.first_update_id < u:
                (before if rng.random() < 0.5 else after).append(_ticker(u - 1, bbo, recv, wrong))  # mid-batch
            else:
                after.append(_ticker(u - rng.randint(1, 50), bbo, recv, wrong))  # long passed
        out += before
        previous_at = len(out)
        out.append(event)
        out += after
    return out


@pytest.fixture(scope="module")
def dense() -> list[Event]:
    events = synthetic_events([SYMBOL], 5, seed=11, start_ms=NEAR_HOUR_MS, snapshot_every_s=60, gap_rate=0.005,
                              depth=40, streams=(StreamKind.DEPTH, StreamKind.TRADE))
    return _dense(list(events), seed=3, wrong_rate=0.003)


def _counts(report: ReplayReport) -> tuple[int, ...]:
    return tuple(getattr(report, name) for name in COUNTS)


def _both(events: Sequence[Event], names: Sequence[str], interval_ms: int, group_size: int,
          ) -> tuple[list[MinuteRow], ReplayReport, list[MinuteRow], ReplayReport]:
    """Both engines over ``events`` without their trades (the hand-built row groups cannot spell a trade
    back: the segment test below keeps them)."""
    return both_engines([e for e in events if not isinstance(e, Trade)], names, interval_ms, group_size)


def test_the_data_holds_every_case(dense: list[Event]) -> None:
    diffs = sum(isinstance(e, DepthUpdate) for e in dense)
    tickers = sum(isinstance(e, BookTicker) for e in dense)
    assert tickers > diffs / 2 and any(isinstance(e, Trade) for e in dense)
    _, ref_report, _, _ = _both(dense, ["mid"], 60_000, 1000)
    assert ref_report.bbo_checked > 1000 and ref_report.bbo_mismatched >= 3 and ref_report.gaps >= 2


@pytest.mark.parametrize("interval_ms", [60_000, 1000, EVERY_EVENT], ids=["1 min", "1 s", "every event"])
@pytest.mark.parametrize("names", [["mid", "bias10", "best_ask"], ["microprice", "mid"]],
                         ids=["lane samples", "lane follows"])
@pytest.mark.parametrize("group_size", [257, 5000])
def test_fast_equals_reference_rows_and_counts(dense: list[Event], interval_ms: int, names: list[str],
                                               group_size: int) -> None:
    ref_rows, ref_report, fast_rows, fast_report = _both(dense, names, interval_ms, group_size)
    assert fast_rows == ref_rows
    assert _counts(fast_report) == _counts(ref_report)
    assert sum(not r.valid for r in ref_rows) > 0 and sum(r.valid for r in ref_rows) > len(ref_rows) // 2


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_wrong_tickers_everywhere(dense: list[Event], seed: int) -> None:
    # Many wrong ones: each invalidates the book until the next snapshot, where the next ones are checked.
    events = _dense([e for e in dense if not isinstance(e, BookTicker)], seed=seed, wrong_rate=0.05)
    for interval_ms in (1000, EVERY_EVENT):
        ref_rows, ref_report, fast_rows, fast_report = _both(events, ["mid", "bias10"], interval_ms, 700)
        assert fast_rows == ref_rows
        assert _counts(fast_report) == _counts(ref_report)
        assert ref_report.bbo_mismatched >= 5


def _futures(events: Sequence[Event]) -> list[Event]:
    """Spot events as USD-M ones: each diff's pu is U - 1 (what the spot chain implies), so gaps stay gaps."""
    return [dataclasses.replace(e, prev_final_update_id=e.first_update_id - 1) if isinstance(e, DepthUpdate) else e
            for e in events]


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM])
def test_from_segments_both_engines_agree(dense: list[Event], tmp_path: Path, market: Market) -> None:
    events = _futures(dense) if market is Market.USDM else dense
    write_segments(tmp_path, SYMBOL, events, market=market)
    store = SegmentStore(tmp_path, market=market)
    features = default_registry().resolve(["mid", "bias10"])
    for interval_ms in (60_000, 1000, EVERY_EVENT):
        results = {}
        for engine in ("python", "fast"):
            report = ReplayReport()
            rows = list(replay(store, [SYMBOL], features, 0, None, report, engine=engine, interval_ms=interval_ms))
            results[engine] = rows, _counts(report)
        assert results["fast"] == results["python"]
        assert results["python"][1][COUNTS.index("bbo_checked")] > 1000


def test_event_mode_trade_features_hear_a_tickers_receive_time(tmp_path: Path) -> None:
    # A ticker received past the grace after a diff decides that diff's trade window unproven (null), before
    # the next trade could prove it: the fast engine must give the ticker to the sampler, not the sequencer only.
    t0, ms = NEAR_HOUR_MS, 1_000_000

    def at(recv_ms: int) -> int:
        return (t0 + recv_ms) * ms

    def depth(u: int, e_ms: int, recv_ms: int, bid: str) -> DepthUpdate:
        return DepthUpdate(SYMBOL, t0 + e_ms, u, u, ((bid, "1"),), (), at(recv_ms))

    def trade(trade_id: int, recv_ms: int) -> Trade:
        return Trade(SYMBOL, t0 + recv_ms, trade_id, "10.50", "1", t0 + recv_ms, False, at(recv_ms))

    events = [Snapshot(SYMBOL, 100, (("9.00", "1"),), (("11.00", "1"),), at(0)), trade(1, 5),
              depth(101, 10, 20, "10.00"), trade(2, 30), depth(102, 100, 110, "10.10"),
              BookTicker(SYMBOL, 102, "10.10", "1", "11.00", "1", at(6110)), trade(3, 6200),
              depth(103, 6300, 6310, "10.20"), trade(4, 6400), depth(104, 6500, 6510, "10.30")]
    write_segments(tmp_path, SYMBOL, events)
    features = default_registry().resolve(["mid", "trade_count"])
    rows = {engine: list(replay(SegmentStore(tmp_path), [SYMBOL], features, 0, None, ReplayReport(), engine=engine,
                                interval_ms=EVERY_EVENT)) for engine in ("python", "fast")}
    assert rows["fast"] == rows["python"]
    assert [r.values[1] for r in rows["python"]][1] is None  # diff 102's window: decided by the ticker
