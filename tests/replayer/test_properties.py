"""Properties of the book, the sequencer and the features, against the naive reference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acts.book.book import Book
from acts.book.sequencer import Gap, Sequencer
from acts.core.decimals import to_book
from acts.core.events import DepthUpdate, Snapshot
from acts.features.builtin import default_registry
from acts.features.pipeline import MinuteSampler
from acts.replayer.replay import ReplayReport, replay
from acts.storage.segments import write_segments
from acts.storage.store import SegmentStore
from tests.reference import ReferenceBook
from tests.strategies import SYMBOL, levels, valid_stream

NAMES = ["mid", "bias1", "bias3", "bias10", "bid_amount5", "ask_amount2", "microprice", "depth100", "depth5000"]
FEATURES = default_registry().resolve(NAMES)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ints(pairs: list) -> list[tuple[int, int]]:
    """Reference Decimals as book integers (value * 1e8, exact)."""
    return [(int(p * 10**8), int(q * 10**8)) for p, q in pairs]


def _reference_values(ref: ReferenceBook) -> tuple:
    return (ref.mid(), ref.bias(1), ref.bias(3), ref.bias(10), ref.amount("bids", 5), ref.amount("asks", 2),
            ref.microprice(), ref.depth(100), ref.depth(5000))


@FAST
@given(valid_stream())
def test_book_and_features_equal_the_reference_after_every_event(events: list) -> None:
    seq, ref = Sequencer(), ReferenceBook()
    for event in events:
        seq.apply(event)
        if isinstance(event, Snapshot):
            ref.load(list(event.bids), list(event.asks))
        else:
            ref.apply(list(event.bids), list(event.asks))
        assert seq.valid  # valid from the snapshot on
        view = seq.view()
        assert view.bids() == _ints(ref.top("bids", 10**6)) and view.asks() == _ints(ref.top("asks", 10**6))
        assert tuple(f.fn(view) for f in FEATURES) == _reference_values(ref)
        assert not view.is_crossed()


@FAST
@given(valid_stream(), st.data())
def test_stale_and_duplicate_events_change_nothing(events: list, data: st.DataObject) -> None:
    clean = Sequencer()
    for event in events:
        clean.apply(event)
    noisy = Sequencer()
    seen: list[DepthUpdate] = []
    for event in events:
        noisy.apply(event)
        if isinstance(event, DepthUpdate):
            seen.append(event)
            for old in data.draw(st.lists(st.sampled_from(seen), max_size=2)):  # re-sent, already covered
                noisy.apply(replace(old, bids=old.bids[::-1]))
    assert noisy.view().bids() == clean.view().bids() and noisy.view().asks() == clean.view().asks()
    assert noisy.valid and noisy.position == clean.position


@FAST
@given(valid_stream(max_diffs=10), st.integers(1, 5))
def test_a_gap_invalidates_until_the_next_snapshot(events: list, skipped: int) -> None:
    seq = Sequencer()
    for event in events:
        seq.apply(event)
    last = events[-1]
    broken = DepthUpdate(SYMBOL, last.event_time_ms + 100, last.final_update_id + 1 + skipped,
                         last.final_update_id + 1 + skipped, (("1.00", "1.00"),), (), 99)
    outcome = seq.apply(broken)
    assert outcome == Gap(last.final_update_id + 1, last.final_update_id + 1 + skipped) and not seq.valid
    after = replace(broken, first_update_id=broken.final_update_id + 1, final_update_id=broken.final_update_id + 1)
    seq.apply(after)
    assert not seq.valid  # still invalid: only a snapshot heals
    seq.apply(Snapshot(SYMBOL, broken.final_update_id, (("2.00", "1"),), (("300.00", "1"),), 100))
    assert seq.valid and seq.view().best_bid() == to_book("2.00")  # the buffered diff was older: dropped


@FAST
@given(valid_stream())
def test_the_fold_is_deterministic(events: list) -> None:
    def rows() -> list:
        sampler = MinuteSampler(SYMBOL, FEATURES)
        return [row for event in events for row in sampler.apply(event)[0]]

    assert rows() == rows()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(valid_stream(max_diffs=40), st.lists(st.integers(1, 40), max_size=4))
def test_split_segments_equal_joined(tmp_path_factory: object, events: list, cuts: list[int]) -> None:
    sampler = MinuteSampler(SYMBOL, FEATURES)
    expected = [row for event in events for row in sampler.apply(event)[0]]
    data_dir = Path(tmp_path_factory.mktemp("split"))  # type: ignore[attr-defined]
    bounds = sorted({0, len(events), *[c for c in cuts if c < len(events)]})
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        write_segments(data_dir, SYMBOL, events[start:stop])
    for engine in ("python", "fast"):
        got = list(replay(SegmentStore(data_dir), [SYMBOL], FEATURES, 0, None, ReplayReport(), engine=engine))
        assert got == expected


@FAST
@given(levels("bids", 30), levels("asks", 30))
def test_book_apply_matches_reference_for_any_levels(bids: tuple, asks: tuple) -> None:
    book, ref = Book(), ReferenceBook()
    book.apply(bids, asks)
    ref.apply(list(bids), list(asks))
    assert book.view().bids() == _ints(ref.top("bids", 100)) and book.view().asks() == _ints(ref.top("asks", 100))
