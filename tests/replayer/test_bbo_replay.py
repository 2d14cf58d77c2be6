"""The audit in replay: the fast engine (compiled lane + ArrayBook) checks exactly the tickers the reference
engine checks, gives the same rows, and a wrong ticker invalidates rows until the next snapshot.

Row groups are built here from typed events (bookTicker rows as kind 8 with ``finals`` = u, as the segment
reader gives them), so the fold is tested apart from storage.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from acts.book.book import SCALE
from acts.book.sequencer import BboChecked, BboMismatch, Sequencer
from acts.core.decimals import to_book
from acts.core.events import BookTicker, DepthUpdate, Event, EventKind, Side, Snapshot
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, MinuteRow, MinuteSampler
from acts.replayer.lane_input import lane_columns
from acts.replayer.replay import ReplayReport, _fast_steps, _reference_steps, _rows
from acts.storage.columnar import RowGroup
from tests.conftest import NEAR_HOUR_MS

SYMBOL = "BTCUSDT"


class _TickerGroup(RowGroup):
    """A ``RowGroup`` whose kind 8 rows come back as the ``BookTicker`` they were built from."""

    __slots__ = ("tickers",)

    def event(self, i: int) -> Any:
        if int(self.kinds[i]) == EventKind.BOOK_TICKER:
            return self.tickers[i]
        return super().event(i)


def _group(events: Sequence[Event]) -> RowGroup:
    starts, ends, kinds, times, firsts, finals, recv = ([] for _ in range(7))
    side: list[int] = []
    price: list[int] = []
    qty: list[int] = []
    tickers: dict[int, BookTicker] = {}
    for i, e in enumerate(events):
        starts.append(len(side))
        kinds.append(int(e.kind))
        recv.append(e.recv_ns)
        times.append(e.event_time_ms if isinstance(e, DepthUpdate) else 0)
        firsts.append(e.first_update_id if isinstance(e, DepthUpdate) else 0)
        if isinstance(e, (DepthUpdate, Snapshot)):
            finals.append(e.final_update_id if isinstance(e, DepthUpdate) else e.last_update_id)
            for s, levels in ((Side.BID, e.bids), (Side.ASK, e.asks)):
                for p, q in levels:
                    side.append(int(s))
                    price.append(to_book(p))
                    qty.append(to_book(q))
        elif isinstance(e, BookTicker):  # one bid row, one ask row, as segments store it
            finals.append(e.update_id)
            tickers[i] = e
            for s, p, q in ((Side.BID, e.bid_price, e.bid_qty), (Side.ASK, e.ask_price, e.ask_qty)):
                side.append(int(s))
                price.append(to_book(p))
                qty.append(to_book(q))
        else:
            finals.append(0)
        ends.append(len(side))

    def arr(values: list[int], dtype: Any = np.int64) -> np.ndarray:
        return np.array(values, dtype=dtype)

    group = _TickerGroup(SYMBOL, arr(starts), arr(ends), arr(kinds), arr(times), arr(firsts), arr(finals), arr(recv),
                         arr(side, np.int8), (arr(price), 1), (arr(qty), 1),
                         pa.chunked_array([pa.array(["{}"] * len(events))]))
    group.tickers = tickers
    return group


def _text(value: int) -> str:
    return f"{value // SCALE}.{value % SCALE:08d}"


def _with_tickers(events: Sequence[Event], seed: int, wrong_at: int | None = None) -> list[Event]:
    """``events`` with bookTickers: for most applied diffs, the true best bid/ask at its final u, folded
    just before or just after it (either stream may lead); some at a u that ends no diff (never checked);
    the ``wrong_at``-th one with a wrong ask quantity."""
    rng = random.Random(seed)
    truth = Sequencer()
    out: list[Event] = []
    made = 0
    for event in events:
        outcome = truth.apply(event)
        if not (isinstance(event, DepthUpdate) and truth.valid and truth.position == event.final_update_id
                and outcome.__class__.__name__ == "Applied" and rng.random() < 0.6):
            out.append(event)
            continue
        view = truth.view()
        (bid, bid_qty), (ask, ask_qty) = view.bids(1)[0], view.asks(1)[0]
        if made == wrong_at:
            ask_qty += 1
        u = event.final_update_id if rng.random() < 0.85 else event.final_update_id - 1  # mid-batch: unchecked
        ticker = BookTicker(SYMBOL, u, _text(bid), _text(bid_qty), _text(ask), _text(ask_qty), event.recv_ns)
        made += 1
        out += [ticker, event] if rng.random() < 0.5 else [event, ticker]
    return out


@pytest.fixture(scope="module")
def depth_events() -> list[Event]:
    return [e for e in synthetic_events([SYMBOL], 6, seed=5, start_ms=NEAR_HOUR_MS, snapshot_every_s=120,
                                        gap_rate=0.001, depth=40)]


def _groups(events: Sequence[Event], size: int) -> Iterator[RowGroup]:
    for i in range(0, len(events), size):
        yield _group(events[i : i + size])


def _both(events: Sequence[Event], names: Sequence[str], interval_ms: int, group_size: int = 700,
          ) -> tuple[list[MinuteRow], ReplayReport, list[MinuteRow], ReplayReport]:
    from acts.book.arraybook import ArrayBook

    features = default_registry().resolve(list(names))
    ref_report, fast_report = ReplayReport(), ReplayReport()
    reference = MinuteSampler(SYMBOL, features, None, interval_ms)
    ref_rows = list(_rows(_reference_steps(reference, iter(events), ref_report), 0, None, ref_report, print))
    book = ArrayBook()
    fast = MinuteSampler(SYMBOL, features, Sequencer(book=book), interval_ms)
    fast_rows = list(_rows(_fast_steps(fast, book, _groups(events, group_size), fast_report), 0, None, fast_report,
                           print))
    return ref_rows, ref_report, fast_rows, fast_report


@pytest.mark.parametrize("interval_ms", [60_000, 1000, EVERY_EVENT])
@pytest.mark.parametrize("names", [["mid", "bias10"], ["microprice", "mid"]], ids=["compiled", "python features"])
def test_fast_engine_checks_what_the_reference_checks(depth_events: list[Event], interval_ms: int,
                                                       names: list[str]) -> None:
    events = _with_tickers(depth_events, seed=1)
    ref_rows, ref_report, fast_rows, fast_report = _both(events, names, interval_ms)
    assert fast_rows == ref_rows
    assert (fast_report.bbo_checked, fast_report.bbo_mismatched) == (ref_report.bbo_checked, 0)
    assert ref_report.bbo_checked > 200 and ref_report.bbo_mismatched == 0
    assert fast_report.events == ref_report.events == len(events)


@pytest.mark.parametrize("names", [["mid", "bias10"], ["microprice"]], ids=["compiled", "python features"])
def test_a_wrong_ticker_is_counted_and_invalidates_rows_until_the_snapshot(depth_events: list[Event],
                                                                           names: list[str]) -> None:
    events = _with_tickers(depth_events, seed=2, wrong_at=150)
    ref_rows, ref_report, fast_rows, fast_report = _both(events, names, 1000)
    assert fast_rows == ref_rows
    assert ref_report.bbo_mismatched == fast_report.bbo_mismatched == 1

    # Where it happened, by the reference sequencer: rows from there to the next snapshot are invalid.
    seq = Sequencer()
    found = None
    for index, event in enumerate(events):
        if isinstance(seq.apply(event), BboMismatch):
            found = index
            break
    assert found is not None
    bad_ms = max(e.event_time_ms for e in events[:found] if isinstance(e, DepthUpdate))
    snapshot_ns = next(e.recv_ns for e in events[found:] if isinstance(e, Snapshot))
    after = [r for r in ref_rows if bad_ms - bad_ms % 1000 <= r.minute_ms < snapshot_ns // 1_000_000 - 1000]
    assert after and not any(r.valid for r in after)
    before = [r for r in ref_rows if r.minute_ms < bad_ms - 5000]
    assert sum(r.valid for r in before) > len(before) // 2  # the data itself is mostly fine


def test_without_tickers_the_lane_is_not_cut(depth_events: list[Event]) -> None:
    group = _group(depth_events[:50])
    assert lane_columns(group, 3, None) is group


def test_the_lane_stops_before_the_diff_a_ticker_waits_for(depth_events: list[Event]) -> None:
    diffs = [e for e in depth_events if isinstance(e, DepthUpdate)][:40]
    group = _group(diffs)
    waited = diffs[25].final_update_id
    cut = lane_columns(group, 5, waited)
    assert cut is not None and len(cut.starts) == 25 and cut.finals[-1] < waited
    assert cut.side is group.side  # the level rows are shared, not copied
    assert lane_columns(group, 25, waited) is None  # the waited-for diff itself goes through the sampler
    assert lane_columns(group, 26, waited) is None  # a later final >= wait as well (it will settle)


def test_the_reference_counts_checks_in_the_sequencer(depth_events: list[Event]) -> None:
    events = _with_tickers(depth_events, seed=3)
    seq = Sequencer()
    outcomes = [seq.apply(e) for e in events]
    checked = sum(isinstance(o, BboChecked) for o in outcomes)
    tickers = sum(isinstance(e, BookTicker) for e in events)
    assert 0 < checked < tickers  # mid-batch tickers are never checked


# --- from segments: tickers stored (kind 8), replayed by both engines, verified -------------------------------


def test_from_segments_both_engines_and_verify_agree(depth_events: list[Event], tmp_path: Any,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from acts.cli import main
    from acts.replayer.replay import replay
    from acts.replayer.verify import verify
    from acts.storage.segments import write_segments
    from acts.storage.store import SegmentStore

    events = _with_tickers(depth_events, seed=4, wrong_at=100)
    write_segments(tmp_path, SYMBOL, events)
    features = default_registry().resolve(["mid", "bias10"])
    results = {}
    for engine in ("python", "fast"):
        report = ReplayReport()
        rows = list(replay(SegmentStore(tmp_path), [SYMBOL], features, 0, None, report, engine=engine,
                           interval_ms=1000))
        results[engine] = rows, (report.bbo_checked, report.bbo_mismatched)
    assert results["fast"] == results["python"]
    checked, mismatched = results["python"][1]
    assert checked > 200 and mismatched == 1
    assert any(not r.valid for r in results["python"][0])

    hours = verify(tmp_path, [SYMBOL]).hours
    assert (sum(h.bbo_checked for h in hours), sum(h.bbo_mismatched for h in hours)) == (checked, mismatched)
    assert main(["verify", "--data-dir", str(tmp_path), "--quiet", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["hours"]
    assert sum(h["bbo_checked"] for h in shown) == checked and sum(h["bbo_mismatched"] for h in shown) == 1


def test_book_at_checks_tickers_in_both_engines(depth_events: list[Event], tmp_path: Any) -> None:
    from acts.replayer.replay import book_at
    from acts.storage.segments import write_segments
    from acts.storage.store import SegmentStore

    events = _with_tickers(depth_events, seed=6, wrong_at=60)
    write_segments(tmp_path, SYMBOL, events)
    store = SegmentStore(tmp_path)
    times = sorted(e.event_time_ms for e in events if isinstance(e, DepthUpdate))
    states = []
    for at_ms in times[:: len(times) // 40]:
        fast, slow = (book_at(store, SYMBOL, at_ms, ReplayReport(), engine) for engine in ("fast", "python"))
        assert (fast.valid, fast.position, fast.bbo_wait) == (slow.valid, slow.position, slow.bbo_wait)
        if slow.valid:
            assert fast.view().bids(5) == slow.view().bids(5) and fast.view().asks(5) == slow.view().asks(5)
        states.append(slow.valid)
    assert True in states and False in states[3:]  # invalid stretches (the mismatch, gaps) are sampled too
