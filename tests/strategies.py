"""Hypothesis strategies: Binance-like event sequences (8-decimal strings, any spelling of zero, U/u chains)."""

from __future__ import annotations

from hypothesis import strategies as st

from acts.core.decimals import format_decimal
from acts.core.events import DepthUpdate, Snapshot

SYMBOL = "TESTUSDT"
ZEROS = st.sampled_from(["0", "0.00000000", "0.00", "0.0"])


@st.composite
def decimal_text(draw: st.DrawFn, low: int, high: int) -> str:
    """A plain decimal string: an integer count of 1e-8 in [low, high], spelled with 2..8 decimals."""
    exp = draw(st.sampled_from([2, 4, 8]))
    units = draw(st.integers(low, high)) // 10 ** (8 - exp)
    return format_decimal(max(units, 1), exp)


@st.composite
def levels(draw: st.DrawFn, side: str, max_size: int = 6) -> tuple[tuple[str, str], ...]:
    # Bids below 100, asks above 100, so the generated book is never crossed.
    low, high = (10**8, 99 * 10**8) if side == "bids" else (101 * 10**8, 200 * 10**8)
    out = {}
    for _ in range(draw(st.integers(0, max_size))):
        price = draw(decimal_text(low, high))
        qty = draw(st.one_of(ZEROS, decimal_text(1, 5 * 10**9)))
        out[price] = qty
    return tuple(out.items())


@st.composite
def valid_stream(draw: st.DrawFn, max_diffs: int = 25) -> list[DepthUpdate | Snapshot]:
    """A snapshot, then diffs chained U = previous u + 1, the first one straddling lastUpdateId + 1."""
    last = draw(st.integers(100, 10**6))
    snapshot = Snapshot(SYMBOL, last, draw(levels("bids", 10)), draw(levels("asks", 10)), 1)
    events: list[DepthUpdate | Snapshot] = [snapshot]
    first = last + 1 - draw(st.integers(0, 3))  # straddle: U <= L + 1 <= u
    time_ms = draw(st.integers(0, 10**6)) * 100
    for i in range(draw(st.integers(1, max_diffs))):
        final = max(first, last + 1) + draw(st.integers(0, 4))
        time_ms += draw(st.sampled_from([0, 100, 100, 100, 30_000, 61_000]))
        events.append(DepthUpdate(SYMBOL, time_ms, first, final, draw(levels("bids")), draw(levels("asks")), 2 + i))
        first = final + 1
    return events


@st.composite
def messy_stream(draw: st.DrawFn, max_steps: int = 40) -> list[DepthUpdate | Snapshot]:
    """What a feed really does: diffs that continue the chain, lost diffs (gaps), re-sent old diffs,
    quiet stretches of minutes, snapshots (fresh, too old, while valid), and now and then a diff
    that crosses the book. Times never go backwards."""
    position = draw(st.integers(100, 10**6))
    time_ms = draw(st.integers(0, 10**6)) * 100
    events: list[DepthUpdate | Snapshot] = []
    sent: list[DepthUpdate] = []
    recv = 0
    for _ in range(draw(st.integers(1, max_steps))):
        recv += 1
        step = draw(st.sampled_from(["next", "next", "next", "next", "lost", "resend", "snapshot", "old_snapshot",
                                     "cross"]))
        if step == "snapshot" or step == "old_snapshot":
            last = position if step == "snapshot" else position - draw(st.integers(1, 5))
            events.append(Snapshot(SYMBOL, last, draw(levels("bids", 6)), draw(levels("asks", 6)), recv))
            continue
        if step == "resend" and sent:
            old = draw(st.sampled_from(sent))
            events.append(DepthUpdate(SYMBOL, time_ms, old.first_update_id, old.final_update_id, old.bids, old.asks,
                                      recv))
            continue
        time_ms += draw(st.sampled_from([0, 100, 100, 5_000, 59_900, 60_000, 61_000, 180_000]))
        if step == "lost":
            position += draw(st.integers(1, 4))  # these ids never arrive
        first, final = position + 1, position + 1 + draw(st.integers(0, 3))
        bids = (("250.00", "1.00"),) if step == "cross" else draw(levels("bids"))
        diff = DepthUpdate(SYMBOL, time_ms, first, final, bids, draw(levels("asks")), recv)
        events.append(diff)
        sent.append(diff)
        position = final
    return events
