"""The export's fast fold: ``export._Fold`` driven over decoded row groups, the compiled lane folding the
runs of diffs that continue the chain and the writer getting each run's rows as columns.

# Strategy: the same sequencer rules as the reference fold, only faster where they are plain.
# While the book is LIVE, ``ArrayBook.follow_chain`` applies a run of diffs (stepping over trades);
# within the run, a diff was applied exactly when its final update id passes every earlier one (the
# lane skips the rest as covered), and the one that crossed the book, if any, is the run's last.
# So the run's rows (applied diffs' levels, trades) and their times (moved forward by a running
# maximum) come from the columns, and the writer gets them in one ``RowBatch``. A run stops where the
# reference fold does something else: at ``--from`` (the opening snapshot), at a new UTC day (the
# tardis day snapshot), at ``--to``, at any event other than a diff or trade, and before a diff a
# pending bookTicker waits for. Every such event goes through ``_Fold.apply`` one at a time, as in the
# reference fold (bookTickers straight from the columns, as replay does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from acts.book.sequencer import State
from acts.core.errors import CorruptSegmentError
from acts.core.events import EventKind, Side
from acts.replayer.lane_input import GroupHead, apply_ticker, lane_columns, lane_view, prefetched, segment_pieces
from acts.storage.columnar import RowGroup
from acts.storage.store import SegmentStore

if TYPE_CHECKING:
    from acts.replayer.export import _Fold

__all__ = ["fold_fast"]

_NS_PER_DAY = 86_400 * 10**9
_DEPTH = int(EventKind.DEPTH)
_TRADE = int(EventKind.TRADE)
_BOOK_TICKER = int(EventKind.BOOK_TICKER)
#: An ``E`` no diff reaches: the export closes no intervals.
_NO_LIMIT = 2**62


def fold_fast(store: SegmentStore, symbol: str, start_ns: int, end_ns: int | None, fold: _Fold, strict: bool,
              on_progress: Callable[[int], None] | None) -> None:
    """``export_symbol``'s loop over ``fold`` (built ``fast``), from row groups."""
    report = fold.report

    def on_problem(exc: CorruptSegmentError) -> None:
        if strict:
            raise exc
        report.problems.append(str(exc))

    end_ms = None if end_ns is None else end_ns // 1_000_000
    paths = store.plan(symbol, start_ns // 1_000_000, end_ms, on_problem)
    groups = prefetched(segment_pieces(paths, lambda path: lane_view(store.row_groups(path, symbol), store.market)))
    recv_ns = start_ns
    pending = _Pending(fold)
    for group in groups:
        pending.flush()  # its rows name the previous group's rows
        if isinstance(group, CorruptSegmentError):
            # The chain breaks across the missing events: the next diff is a gap, the book is cleared.
            on_problem(group)
            continue
        pending.group = group
        reached, recv_ns = _fold_group(fold, group, start_ns, end_ns, recv_ns, pending)
        if on_progress is not None:
            on_progress(recv_ns)
        if reached:
            break
    pending.flush()
    if on_progress is not None:
        on_progress(recv_ns if end_ns is None else min(recv_ns, end_ns))


def _fold_group(fold: _Fold, group: RowGroup, start_ns: int, end_ns: int | None, recv_ns: int,
                pending: _Pending) -> tuple[bool, int]:
    """Fold ``group``; ``(whether an event at or past --to was reached, the last receive time folded)``."""
    sequencer, recv = fold.sequencer, group.recv
    book = fold.book
    assert book is not None
    n = len(group)
    end_at = n if end_ns is None else _first_at_least(recv, end_ns, n)
    first_started = _first_at_least(recv, start_ns, n)
    day_cut: tuple[int, int] = (-1, n)  # (the day whose end it is, first row received after that day)
    i = 0
    while i < end_at:
        recv_ns = int(recv[i])
        if not fold.started and recv_ns >= start_ns:
            fold.start(start_ns)
        if fold.started:
            fold.new_day(recv_ns)
            assert fold.day is not None
            if day_cut[0] != fold.day:  # a guard: segments split at receive hours, so groups rarely span one
                day_cut = (fold.day, i + _first_at_least(recv[i:], (fold.day + 1) * _NS_PER_DAY, n - i))
            stop = min(end_at, day_cut[1])
        else:
            stop = min(end_at, first_started)
        if sequencer.state is State.LIVE and (columns := lane_columns(group, i, sequencer.bbo_wait)) is not None:
            if stop < len(columns.kinds):
                columns = GroupHead(columns, stop)  # type: ignore[arg-type]
            position = sequencer.position
            j, new_position, last_time, crossed = book.follow_chain(columns, i, position, _NO_LIMIT, True)
            if j > i:
                sequencer.followed(new_position, None if last_time < 0 else last_time)
                _lane_run(fold, group, i, j, position, crossed, pending)
                if crossed:
                    fold.settle(sequencer.crossed(new_position), int(recv[j - 1]))
                recv_ns = int(recv[j - 1])
                i = j
                continue
        if group.kinds[i] == _BOOK_TICKER:
            fold.report.events += 1  # ``_Fold.apply`` of a ticker, without spelling its event back as strings
            outcome = apply_ticker(sequencer, group, i)
            if fold.started:
                fold.settle(outcome, recv_ns)
        else:
            fold.apply(group.event(i))
        i += 1
    return end_at < n, recv_ns


def _first_at_least(values: np.ndarray, bound: int, n: int) -> int:
    """The first index whose value is at least ``bound`` (``n`` if none): receive times need not be sorted."""
    hits = np.flatnonzero(values >= bound)
    return int(hits[0]) if hits.size else n


def _lane_run(fold: _Fold, group: RowGroup, i: int, j: int, position: int, crossed: bool, pending: _Pending) -> None:
    """What ``_Fold.apply`` would have done for events ``i:j``, which the lane folded from ``position``: its
    rows join ``pending`` (written before anything else the writer is told)."""
    fold.report.events += j - i
    at = _short_run(fold, group, i, j, position) if j - i <= _SHORT_RUN else _long_run(fold, group, i, j, position)
    if crossed and at.size and at[-1] == j - 1:
        at = at[:-1]  # the crossing diff gives ``Crossed``, no rows: the clear follows
    if at.size and fold.started:
        pending.add(at)


#: Runs up to this long are read with Python ints: a numpy call costs more than a few items.
_SHORT_RUN = 8


def _short_run(fold: _Fold, group: RowGroup, i: int, j: int, position: int) -> np.ndarray:
    """``_long_run`` one event at a time."""
    items: list[int] = []
    kinds, finals, times = group.kinds, group.finals, group.times
    for k in range(i, j):
        kind = int(kinds[k])
        if kind == _DEPTH:
            fold.seen_exch(int(times[k]) * 1_000_000)
            final = int(finals[k])
            if final > position:
                position = final
                items.append(k)
        elif kind == _TRADE:
            items.append(k)
    return np.array(items, dtype=np.int64)


def _long_run(fold: _Fold, group: RowGroup, i: int, j: int, position: int) -> np.ndarray:
    """The rows of events ``i:j`` (a lane run from ``position``) that give the writer something: the diffs
    it applied (the others it skipped as covered: their final id does not pass every earlier one) and the
    trades it stepped over. Notes every diff's ``E``."""
    kinds = group.kinds[i:j]
    depth = kinds == _DEPTH
    if depth.any():
        fold.seen_exch(int(group.times[i:j][depth].max()) * 1_000_000)
    finals = group.finals[i:j]
    reached = np.maximum.accumulate(np.concatenate(([position], np.where(depth, finals, position))))
    applied = depth & (finals > reached[:-1])
    return np.flatnonzero(applied | (kinds == _TRADE)) + i


class _Pending:
    """Lane runs' items (rows of one group) not yet given to the writer.

    Strategy: a bookTicker stops the lane, so on a busy symbol with tickers a run is often one diff; one
    ``RowBatch`` per run would cost more than the rows. So runs are collected and written together, just
    before the fold tells the writer anything else (``_Fold.flush``), at the group's end, or when many."""

    __slots__ = ("fold", "group", "items", "size")

    #: Items held before they are written anyway (memory: a few MB).
    LIMIT = 1 << 16

    def __init__(self, fold: _Fold) -> None:
        self.fold = fold
        self.group: RowGroup | None = None  # whose rows ``items`` name
        self.items: list[np.ndarray] = []
        self.size = 0
        fold.flush = self.flush

    def add(self, at: np.ndarray) -> None:
        self.items.append(at)
        self.size += len(at)
        if self.size >= self.LIMIT:
            self.flush()

    def flush(self) -> None:
        if self.items:
            assert self.group is not None
            at = self.items[0] if len(self.items) == 1 else np.concatenate(self.items)
            self.items, self.size = [], 0
            _write_items(self.fold, self.group, at)


def _write_items(fold: _Fold, group: RowGroup, at: np.ndarray) -> None:
    """Applied diffs and trades (rows ``at`` of ``group``, in order) to the writer as one ``RowBatch``."""
    from acts.replayer.export import RowBatch

    report = fold.report
    is_trade = group.kinds[at] == _TRADE
    exch = np.where(is_trade, group.trade_times[at], group.times[at]).astype(np.int64) * 1_000_000
    local = group.recv[at].astype(np.int64)
    in_order = np.ones(len(at), dtype=bool) if fold.writer.trades_in_order else ~is_trade
    exch[in_order], local[in_order] = fold.moved_forward(exch[in_order], local[in_order])
    starts = group.starts[at].astype(np.int64)
    counts = np.where(is_trade, 1, group.ends[at] - starts).astype(np.int64)
    total = int(counts.sum())
    rows = np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
    bid = group.side[rows] == Side.BID
    trade_rows = np.repeat(is_trade, counts)
    if trade_rows.any():
        bid[trade_rows] = ~group.makers[at[is_trade]]  # the buyer was the taker
    price = group.price[rows].astype(np.int64) * group.price_factor
    qty = group.qty[rows].astype(np.int64) * group.qty_factor
    trades = int(is_trade.sum())
    report.rows += total - trades
    report.trades += trades
    fold.writer.rows(RowBatch(is_trade, exch, local, counts, bid, price, qty,
                              group.trade_ids[at[is_trade]].astype(np.int64)))
