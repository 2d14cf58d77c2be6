"""USD-M futures rules, table-driven like the spot ones, on the reference Book and the ArrayBook.

Each futures rule is checked both ways: what it accepts and what it refuses, and that the spot
sequencer judges the same events by spot rules (never by ``pu``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acts.book.arraybook import ArrayBook
from acts.book.sequencer import (
    Applied,
    Buffered,
    Checkpoint,
    Gap,
    Ignored,
    Loaded,
    Sequencer,
    StaleSnapshot,
    State,
    Synced,
)
from acts.core.decimals import to_book
from acts.core.events import DepthUpdate, Snapshot
from acts.core.markets import Market

S = "BTCUSDT"


def fdiff(first: int, final: int, pu: int | None, bid: str = "1.00") -> DepthUpdate:
    return DepthUpdate(S, 1000 * final, first, final, ((bid, "1"),), (("9.00", "1"),), final, prev_final_update_id=pu)


def snap(last: int) -> Snapshot:
    return Snapshot(S, last, (("0.50", "2"),), (("10.00", "2"),), 0)


# Futures ids jump: U of the next event is not the previous u + 1, pu says what it follows.
LIVE_AT_20 = [snap(9), fdiff(5, 12, 3), fdiff(15, 20, 12)]  # valid, position 20
CASES = [
    ("buffer before any snapshot", [], fdiff(5, 7, 2), Buffered(), State.NO_BOOK),
    ("snapshot alone waits for the bridge", [], snap(9), Loaded(9), State.SYNCING),
    ("buffered chain bridging L applies", [fdiff(1, 4, 0), fdiff(6, 12, 4), fdiff(20, 25, 12)], snap(9),
     Synced(9, 2), State.LIVE),
    ("buffered diffs all after L: stale snapshot", [fdiff(12, 14, 8)], snap(9), StaleSnapshot(9, 12), State.NO_BOOK),
    # SYNCING: drop u < L; U <= L <= u bridges (u == L included, unlike spot's u <= L drop)
    ("syncing: u < L dropped", [snap(9)], fdiff(5, 8, 4), Ignored(8), State.SYNCING),
    ("syncing: u == L bridges", [snap(9)], fdiff(5, 9, 4), Applied(), State.LIVE),
    ("syncing: U <= L <= u bridges", [snap(9)], fdiff(8, 12, 7), Applied(), State.LIVE),
    ("syncing: U == L bridges", [snap(9)], fdiff(9, 12, 7), Applied(), State.LIVE),
    ("syncing: U == L + 1 is stale (spot would take it)", [snap(9)], fdiff(10, 12, 9), StaleSnapshot(9, 10),
     State.NO_BOOK),
    ("syncing: the bridge needs no pu", [snap(9)], fdiff(8, 12, None), Applied(), State.LIVE),
    # LIVE: pu chain
    ("live: pu == previous u applies, U may jump", LIVE_AT_20, fdiff(31, 40, 20), Applied(), State.LIVE),
    ("live: U == u + 1 but pu elsewhere is a gap", LIVE_AT_20, fdiff(21, 25, 19), Gap(20, 19), State.NO_BOOK),
    ("live: pu past the position is a gap", LIVE_AT_20, fdiff(31, 40, 27), Gap(20, 27), State.NO_BOOK),
    ("live: no pu proves nothing", LIVE_AT_20, fdiff(21, 25, None), Gap(20, 0), State.NO_BOOK),
    ("live: duplicate ignored", LIVE_AT_20, fdiff(15, 20, 12), Ignored(20), State.LIVE),
    ("live: stale ignored", LIVE_AT_20, fdiff(5, 12, 3), Ignored(12), State.LIVE),
    ("live: snapshot is a checkpoint", LIVE_AT_20, snap(50), Checkpoint(50), State.LIVE),
]


def _arrays(event: DepthUpdate | Snapshot) -> DepthUpdate | Snapshot:
    def levels(pairs: tuple) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([to_book(p) for p, _ in pairs], dtype=np.int64),
                np.array([to_book(q) for _, q in pairs], dtype=np.int64))

    return dataclasses.replace(event, bids=levels(event.bids), asks=levels(event.asks))  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ["reference", "array"])
@pytest.mark.parametrize(("name", "before", "event", "outcome", "state"), CASES, ids=[c[0] for c in CASES])
def test_futures_rule(engine: str, name: str, before: list, event: DepthUpdate | Snapshot, outcome: object,
                      state: State) -> None:
    seq: Sequencer = Sequencer(market=Market.USDM) if engine == "reference" else Sequencer(
        book=ArrayBook(), market=Market.USDM)
    convert = (lambda e: e) if engine == "reference" else _arrays
    for earlier in before:
        seq.apply(convert(earlier))
    assert seq.apply(convert(event)) == outcome
    assert seq.state is state and seq.market is Market.USDM


SPOT_JUDGES = [
    # The same events under spot rules: pu is never read, U must be u + 1.
    ("spot ignores a wrong pu when U continues", [snap(9), fdiff(10, 12, 3)], fdiff(13, 14, 99), Applied()),
    ("spot refuses a jump that pu would allow", [snap(9), fdiff(10, 12, 3)], fdiff(20, 24, 12), Gap(13, 20)),
    ("spot drops u == L", [snap(9)], fdiff(5, 9, 4), Ignored(9)),
    ("spot takes U == L + 1", [snap(9)], fdiff(10, 12, 9), Applied()),
]


@pytest.mark.parametrize(("name", "before", "event", "outcome"), SPOT_JUDGES, ids=[c[0] for c in SPOT_JUDGES])
def test_spot_never_judges_by_pu(name: str, before: list, event: DepthUpdate, outcome: object) -> None:
    seq = Sequencer()
    for earlier in before:
        seq.apply(earlier)
    assert seq.market is Market.SPOT and seq.apply(event) == outcome


@st.composite
def futures_chain(draw: st.DrawFn) -> tuple[int, list[DepthUpdate]]:
    """A snapshot id and a pu-linked chain of diffs whose U jump; the first bridges the snapshot."""
    last = draw(st.integers(100, 10**6))
    first = last - draw(st.integers(0, 5))
    final = last + draw(st.integers(0, 5))
    chain = [fdiff(first, final, first - 1)]
    for _ in range(draw(st.integers(1, 20))):
        start = final + draw(st.integers(1, 50))
        pu, final = final, start + draw(st.integers(0, 5))
        chain.append(fdiff(start, final, pu, bid=draw(st.sampled_from(["1.00", "2.00", "3.00"]))))
    return last, chain


@settings(max_examples=60, deadline=None)
@given(futures_chain(), st.data())
def test_a_pu_chain_holds_and_any_lost_diff_is_a_gap(case: tuple[int, list[DepthUpdate]], data: st.DataObject) -> None:
    last, chain = case
    seq = Sequencer(market=Market.USDM)
    seq.apply(snap(last))
    assert all(seq.apply(d) == Applied() for d in chain) and seq.position == chain[-1].final_update_id
    # Lose one diff after the bridge: the next one's pu names the lost u, a Gap at once, never applied.
    lost = data.draw(st.integers(1, len(chain) - 1)) if len(chain) > 2 else 1
    seq = Sequencer(market=Market.USDM)
    seq.apply(snap(last))
    outcomes = [seq.apply(d) for i, d in enumerate(chain) if i != lost]
    if lost < len(chain) - 1:
        assert outcomes[lost] == Gap(chain[lost - 1].final_update_id, chain[lost].final_update_id)
        assert all(o == Applied() for o in outcomes[:lost])
    else:
        assert all(o == Applied() for o in outcomes)
