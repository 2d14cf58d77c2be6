"""Replacing a connection: frames of an old and a new connection merged into one in-order feed."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from acts.recorder.handover import Handover, frame_key


@dataclass(frozen=True)
class Frame:
    payload: bytes
    via: str = "old"


def diff(n: int, symbol: str = "BTCUSDT") -> bytes:
    data = {"e": "depthUpdate", "E": n, "s": symbol, "U": 10 * n, "u": 10 * n + 9, "b": [], "a": []}
    return json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data}).encode()


def ids(frames: list[Frame]) -> list[int]:
    return [json.loads(f.payload)["data"]["E"] for f in frames]


def first_seen(frames: list[Frame]) -> list[int]:
    """Event numbers in the order the feed first saw them (what the sequencer acts on)."""
    seen: list[int] = []
    for n in ids(frames):
        if n not in seen:
            seen.append(n)
    return seen


def test_key_is_the_diffs_identity_not_its_bytes() -> None:
    spaced = json.dumps(json.loads(diff(3)), indent=1).encode()
    assert frame_key(spaced) == frame_key(diff(3)) != frame_key(diff(4))
    assert frame_key(b"not json") == b"not json"
    assert frame_key(b'{"e":"serverShutdown"}') == b'{"e":"serverShutdown"}'


def test_new_connection_ahead_waits_for_the_old_one() -> None:
    out: list[Frame] = []
    h = Handover(out.append)
    assert not h.old_frame(Frame(diff(1)))
    h.new_frame(Frame(diff(3), "new"))  # the new connection subscribed at 3 and is quicker
    h.new_frame(Frame(diff(4), "new"))
    assert first_seen(out) == [1]  # 3 must not overtake 2
    assert not h.old_frame(Frame(diff(2)))
    assert not h.old_frame(Frame(diff(3)))
    assert h.old_frame(Frame(diff(4)))  # caught up: the old one may close
    h.new_frame(Frame(diff(5), "new"))
    assert first_seen(out) == [1, 2, 3, 4, 5]
    assert sorted(ids([f for f in out if f.via == "new"])) == [3, 4, 5]  # every received frame delivered


def test_old_connection_ahead_hands_over_at_its_next_frame() -> None:
    out: list[Frame] = []
    h = Handover(out.append)
    for n in (1, 2, 3):
        assert not h.old_frame(Frame(diff(n)))
    h.new_frame(Frame(diff(2), "new"))  # behind the old one: a duplicate, delivered at once
    assert h.old_frame(Frame(diff(4)))
    for n in (3, 4, 5):
        h.new_frame(Frame(diff(n), "new"))
    assert first_seen(out) == [1, 2, 3, 4, 5] and len(out) == 8


def test_old_connection_dying_releases_what_the_new_one_holds() -> None:
    out: list[Frame] = []
    h = Handover(out.append)
    h.old_frame(Frame(diff(1)))
    h.new_frame(Frame(diff(4), "new"))
    h.old_gone()  # 2 and 3 are lost: the sequencer will see the gap, honestly
    h.new_frame(Frame(diff(5), "new"))
    assert h.done and first_seen(out) == [1, 4, 5]


def test_frames_the_old_connection_skipped_do_not_block_the_handover() -> None:
    out: list[Frame] = []
    h = Handover(out.append)
    h.new_frame(Frame(diff(2), "new"))
    h.old_frame(Frame(diff(3)))  # the old connection never had 2
    h.new_frame(Frame(diff(3), "new"))  # so 2 is behind it: released, stale, the gap already seen
    assert not h._held
    assert h.old_frame(Frame(diff(4)))


def test_a_lagging_old_connection_is_given_up_past_the_limit() -> None:
    out: list[Frame] = []
    h = Handover(out.append, limit=3)
    for n in range(10, 14):
        h.new_frame(Frame(diff(n), "new"))
    assert h.done and first_seen(out) == [10, 11, 12, 13]


def test_memory_is_bounded_while_the_new_connection_is_still_connecting() -> None:
    out: list[Frame] = []
    h = Handover(out.append, limit=3)
    for n in range(100):
        assert not h.old_frame(Frame(diff(n)))
    assert len(h._delivered) == 3
    h.new_frame(Frame(diff(99), "new"))  # still recognised as delivered
    assert h.old_frame(Frame(diff(100)))
    assert first_seen(out) == list(range(101))


@given(st.integers(0, 10**6), st.integers(1, 30), st.integers(0, 30))
def test_any_interleaving_keeps_the_exchange_order(seed: int, start: int, total: int) -> None:
    """The old connection has every event 0..N, the new one those from ``start``; whatever the
    interleaving of their arrivals, the feed first sees every event once, in order."""
    rng = random.Random(seed)
    n_events = start + total
    old = [Frame(diff(n)) for n in range(n_events)]
    new = [Frame(diff(n), "new") for n in range(start, n_events)]
    out: list[Frame] = []
    h = Handover(out.append)
    old_open = True
    while (old and old_open) or new:
        if old and old_open and (not new or rng.random() < 0.5):
            old_open = not h.old_frame(old.pop(0))
        else:
            h.new_frame(new.pop(0))
    if old_open:
        h.old_gone()
    assert first_seen(out) == list(range(n_events))


def test_combined_streams_of_several_symbols() -> None:
    out: list[Frame] = []
    h = Handover(out.append)
    frames = [diff(n, s) for n in range(1, 4) for s in ("BTCUSDT", "ETHUSDT")]
    h.old_frame(Frame(frames[0]))
    for p in frames[1:]:
        h.new_frame(Frame(p, "new"))
    for p in frames[1:]:
        closed = h.old_frame(Frame(p))
    assert closed
    keys = [frame_key(f.payload) for f in out]
    assert list(dict.fromkeys(keys)) == [frame_key(p) for p in frames]
