"""What the compiled lane is handed, shared by replay and the exports: segments' row groups read one ahead
in a worker thread, the futures view of a row group, the cut before a diff a bookTicker waits for, and a
ticker row applied from the columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePath
from typing import Any, TypeVar

import numpy as np

from acts.book.arraybook import EventColumns
from acts.book.sequencer import Outcome, Sequencer
from acts.core.errors import CorruptSegmentError
from acts.core.events import DepthUpdate, EventKind
from acts.core.markets import Market
from acts.storage.columnar import RowGroup

__all__ = ["LANE_LOOKAHEAD", "FuturesGroup", "GroupHead", "apply_ticker", "lane_columns", "lane_view", "prefetched",
           "segment_pieces"]

#: ``EventKind.BOOK_TICKER`` as a plain int: an enum member's lookup costs microseconds per row.
_BOOK_TICKER = int(EventKind.BOOK_TICKER)

T = TypeVar("T")


def lane_view(groups: Iterable[RowGroup], market: Market) -> Iterator[RowGroup]:
    """``groups`` as the compiled lane must see them: unchanged on spot; on USD-M futures each with
    ``firsts`` = ``pu + 1``, so the lane's ``U == position + 1`` test is the futures ``pu == position``
    (a diff without ``pu`` gets 0 and breaks the lane's run: the sequencer judges it)."""
    for group in groups:
        yield group if market is Market.SPOT or group.prevs is None else FuturesGroup.of(group)


class FuturesGroup(RowGroup):
    """A futures row group for the lane: ``firsts`` hold ``pu + 1``; ``event(i)`` still builds the
    diff with its real ``U`` for the sequencer."""

    __slots__ = ("_real_firsts",)
    _real_firsts: np.ndarray

    @classmethod
    def of(cls, group: RowGroup) -> FuturesGroup:
        view = cls.__new__(cls)
        for name in RowGroup.__slots__:
            setattr(view, name, getattr(group, name))
        assert group.prevs is not None
        view._real_firsts = group.firsts
        view.firsts = group.prevs + 1
        return view

    def event(self, i: int) -> Any:
        event = super().event(i)
        if isinstance(event, DepthUpdate):
            return dataclasses.replace(event, first_update_id=int(self._real_firsts[i]))
        return event


def segment_pieces(paths: Sequence[PurePath],
                   read: Callable[[PurePath], Iterable[T]]) -> Iterator[T | CorruptSegmentError]:
    """What ``read`` gives for each segment in turn; a segment that fails to read, as its error (after
    whatever it gave before failing)."""
    for path in paths:
        try:
            yield from read(path)
        except CorruptSegmentError as exc:
            yield exc


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each produced in a worker thread while the caller works on the previous one.

    Strategy: pyarrow's decode and numpy's conversions release the GIL, and so does the compiled
    lane, so decoding row group n+1 overlaps folding row group n on a second core. One item
    ahead keeps memory at two row groups; items keep their order, so output is unchanged.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="acts-decode") as pool:
        ahead = pool.submit(_next_one, items)
        while (got := ahead.result()) is not None:
            ahead = pool.submit(_next_one, items)
            yield got[0]


def _next_one(items: Iterator[T]) -> tuple[T] | None:
    """The next item, boxed so that any item is told apart from the end (``None``)."""
    for item in items:
        return (item,)
    return None


def apply_ticker(sequencer: Sequencer[Any], group: RowGroup, i: int) -> Outcome:
    """``sequencer.apply`` of the bookTicker in row ``i``: its bid level row, then its ask level row."""
    bid, p, q = int(group.starts[i]), group.price_factor, group.qty_factor
    return sequencer.apply_ticker(int(group.finals[i]), int(group.price[bid]) * p, int(group.qty[bid]) * q,
                                  int(group.price[bid + 1]) * p, int(group.qty[bid + 1]) * q)


#: How far ahead ``lane_columns`` looks for the diff a pending bookTicker waits for: the lane stops at
#: most this many events on, so finding the stop never costs more than the lane's own run.
LANE_LOOKAHEAD = 4096


def lane_columns(group: RowGroup, i: int, wait: int | None, position: int | None = None) -> EventColumns | None:
    """What the compiled lane may fold from event ``i``: the whole ``group`` when no bookTicker waits
    (``wait`` None); else the group cut before the first event with final update id >= ``wait`` (looking
    at most ``LANE_LOOKAHEAD`` events ahead), or None when that is event ``i`` itself, or ``i`` is a ticker
    the lane would stop at: any, unless it checks tickers at ``position`` (then one with ``u`` past it
    while a ticker waits in the sequencer: the lane lets none wait then)."""
    if group.kinds[i] == _BOOK_TICKER and (position is None or (wait is not None and group.finals[i] > position)):
        return None  # the lane stops at this ticker row at once: spare its call
    if wait is None:
        return group
    stop = min(len(group), i + LANE_LOOKAHEAD)
    reached = np.flatnonzero(group.finals[i:stop] >= wait)
    end = i + int(reached[0]) if reached.size else stop
    if end == i:
        return None
    return group if end == len(group) else GroupHead(group, end)


class GroupHead:
    """The first ``end`` events of a row group, for the lane (numpy views: nothing copied). The per-event
    columns are cut, the level rows and anything else are the group's own."""

    _CUT = ("starts", "ends", "kinds", "times", "recv", "firsts", "finals")

    def __init__(self, group: RowGroup, end: int) -> None:
        self._group = group
        for name in self._CUT:
            setattr(self, name, getattr(group, name)[:end])

    def __getattr__(self, name: str) -> Any:  # only for what is not cut
        return getattr(self._group, name)
