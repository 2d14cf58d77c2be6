"""Trade features per interval, valid only where the trade-id chain proves them.

Rules (``MinuteSampler`` applies them when any trade feature is requested; live and replay alike):

* A trade belongs to the interval of its trade time ``T``. Taker side from ``m``: ``m`` false means
  the buyer was the taker (a buy), true a sell.
* Trade ids are consecutive per symbol. The trade features of interval k are **valid only when the
  chain is proven across k**: a trade with ``T`` before k's start is known (the anchor), and every
  trade after it has id ``previous + 1`` up to and including the first trade with ``T >= end(k)``.
  An id jump (a trade gap: the missing trades happened at an unknown time since the previous one),
  a ``RESTART`` marker (the new process knows no trade) or no trade known before k make k's trade
  features null. A trade whose id is not past the last one seen is a duplicate: ignored.
* k's trade part **closes** at the first trade with ``T >= end(k)`` (which proves k, or, if its id
  jumps, does not), or at the first event of any kind, in fold order, received at or after
  ``end(k) + TRADE_GRACE_MS``, whichever comes first; k not proven by then is null. So a quiet
  interval is valid with zero counts once the next consecutive trade arrives within the grace, and
  a feed that stopped sending trades cannot pass for a quiet market. A trade whose interval closed
  already (``T`` ran backwards, or it came later than the grace) is not counted.
* A clean stop (``ends_the_feed``: the ``DISCONNECT`` marker the recorder writes for ``shutdown``) closes
  at once every interval before the book's open one: no trade can prove them any more, so those not
  proven already are null, and the rows go out with the book part the book proved. The chain starts
  afresh after it, as after a ``RESTART``. Live and replay both read that marker, so they agree.
* Values: ``trade_count``; ``buy_volume`` and ``sell_volume`` (base quantity); ``vwap`` (null when no
  trade); ``last_price`` (the last trade's price up to the interval's end, carried over quiet
  intervals; a trade not counted because its interval had closed still sets it); ``trade_imbalance``
  = (buy - sell) / (buy + sell), null when no volume. Sums are exact integers at the book's scale;
  each value is divided once, into a float, at the end.

Event mode (a row per diff): the row of diff d holds the trades *received* since the previous diff
(fold order, not ``T``: a diff has no interval of trade time), so every trade lands in exactly one
row. The same proof applies to that window: valid only if a trade was known before it, its trades
are consecutive, and so is the first trade after it; the window closes at that trade or at the first
event received ``TRADE_GRACE_MS`` after d, whichever first. A ``RESTART`` or a clean stop nulls the
open windows.
``last_price`` is the last trade's price received up to d (``EventTradeTape``).

``TradeTape`` is sans-I/O: trades and receive times go in, the values of closed intervals come out.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from acts.book.protocol import BookView
from acts.core.decimals import to_book
from acts.core.events import DisconnectReason, EventKind, Marker, Trade
from acts.features.registry import Registry

__all__ = ["TRADE_GRACE_MS", "TradeStat", "TradeFeature", "TradeTape", "EventTradeTape", "add_trade_features",
           "ends_the_feed"]

#: How long after an interval's end its trade part waits for the trade that proves it (receive time).
TRADE_GRACE_MS = 5_000

_SCALE = 10**8  # to_book's scale (decimals.BOOK_SCALE)
_NS_PER_MS = 1_000_000


def ends_the_feed(marker: Marker) -> bool:
    """Whether ``marker`` is a clean stop: no trade of this process follows it (module docstring)."""
    if marker.kind is not EventKind.DISCONNECT:
        return False
    try:
        detail = json.loads(marker.detail)
    except ValueError:
        return False  # an imported or hand-made marker: not the recorder's clean stop
    return isinstance(detail, dict) and detail.get("reason") == DisconnectReason.SHUTDOWN


class TradeStat(IntEnum):
    """What a trade feature reports of its interval."""

    COUNT = 0
    BUY_VOLUME = 1
    SELL_VOLUME = 2
    VWAP = 3
    LAST_PRICE = 4
    IMBALANCE = 5


@dataclass(frozen=True, slots=True)
class TradeFeature:
    """A registered trade feature: the sampler fills its value from the trades, not from the book."""

    stat: TradeStat

    def __call__(self, view: BookView) -> float | None:
        return None  # a book alone knows no trade (the sampler never calls this)


@dataclass(slots=True)
class _Sums:
    """One interval's trades, exactly: quantities and notional as integers (book scale; notional squared)."""

    count: int = 0
    buy: int = 0
    sell: int = 0
    notional: int = 0
    last_price: int | None = None

    def add(self, trade: Trade) -> None:
        price, qty = to_book(trade.price), to_book(trade.qty)
        self.count += 1
        if trade.buyer_is_maker:
            self.sell += qty
        else:
            self.buy += qty
        self.notional += price * qty
        self.last_price = price


def _value(stat: TradeStat, sums: _Sums, last_price: int | None) -> float | None:
    volume = sums.buy + sums.sell
    if stat is TradeStat.COUNT:
        return float(sums.count)
    if stat is TradeStat.BUY_VOLUME:
        return sums.buy / _SCALE
    if stat is TradeStat.SELL_VOLUME:
        return sums.sell / _SCALE
    if stat is TradeStat.VWAP:
        return None if volume == 0 else sums.notional / (volume * _SCALE)
    if stat is TradeStat.LAST_PRICE:
        return None if last_price is None else last_price / _SCALE
    return None if volume == 0 else (sums.buy - sums.sell) / volume


class TradeTape:
    """One symbol's trade-id chain and the trade values of its intervals (see the module docstring).

    ``frontier`` is the start of the first interval whose trade part is still open: every interval
    before it is closed, and ``values(start)`` gives its values (null unless proven). Intervals are
    asked for in increasing order; what was asked for is forgotten."""

    __slots__ = ("step", "stats", "frontier", "_last_id", "_valid_from", "_sums", "_price", "_runs")

    def __init__(self, interval_ms: int, stats: tuple[TradeStat, ...]) -> None:
        self.step = interval_ms
        self.stats = stats
        self.frontier: int | None = None
        self._last_id: int | None = None
        #: Intervals starting here or later are anchored with no jump since; None: nothing anchored.
        self._valid_from: int | None = None
        self._sums = _Sums()  # the frontier interval's trades
        self._price: int | None = None  # last price before the frontier interval
        #: Closed, proven intervals not yet asked for: (start, stop, values) runs; the rest are null.
        self._runs: deque[tuple[int, int, tuple[float | None, ...]]] = deque()

    def deadline_ns(self) -> int:
        """Receive time from which an event closes the frontier interval by the grace rule."""
        if self.frontier is None:
            return 0  # the first event sets the frontier
        return (self.frontier + self.step + TRADE_GRACE_MS) * _NS_PER_MS

    def trade(self, trade: Trade) -> None:
        """Fold a trade: extend or break the chain, close the intervals it proves, count it."""
        if self._last_id is not None and trade.trade_id <= self._last_id:
            return  # a duplicate: counted already
        start = trade.trade_time_ms - trade.trade_time_ms % self.step
        if self._last_id is None or trade.trade_id != self._last_id + 1:
            # No anchor, or a gap: the missing trades lie somewhere up to this one's interval.
            self._valid_from = start + self.step if self._valid_from is None else max(self._valid_from,
                                                                                   start + self.step)
        self._last_id = trade.trade_id
        if self.frontier is None:
            self.frontier = start
        if start > self.frontier:
            self._close(start, proven=True)
        if start == self.frontier:
            self._sums.add(trade)
        elif start < self.frontier:
            # Its interval closed already (uncounted), but it is the latest price known before the frontier.
            self._price = to_book(trade.price)

    def received(self, recv_ns: int) -> None:
        """Any event's receive time: intervals ended ``TRADE_GRACE_MS`` before it close, null if unproven."""
        limit = recv_ns // _NS_PER_MS - TRADE_GRACE_MS
        stop = limit - limit % self.step  # intervals starting before it ended at or before limit
        if self.frontier is None:
            self.frontier = stop
        elif stop > self.frontier:
            self._close(stop, proven=False)

    def restart(self) -> None:
        """A recorder restart: the new process knows no trade; the chain starts afresh."""
        self._last_id = None
        self._valid_from = None

    def stopped(self, open_start: int | None) -> None:
        """A clean stop: intervals before ``open_start`` (the book's open interval) close now, null if
        not proven already; the chain starts afresh."""
        if open_start is not None and self.frontier is not None and open_start > self.frontier:
            self._close(open_start, proven=False)
        self.restart()

    def _close(self, stop: int, proven: bool) -> None:
        """Close every interval from the frontier up to ``stop``."""
        assert self.frontier is not None
        first, sums = self.frontier, self._sums
        last = sums.last_price if sums.last_price is not None else self._price
        valid_from = self._valid_from
        if proven and valid_from is not None and valid_from < stop:
            if first >= valid_from:
                self._runs.append((first, first + self.step, self._values(sums, last)))
            quiet_from = max(first + self.step, valid_from)
            if quiet_from < stop:
                self._runs.append((quiet_from, stop, self._values(_Sums(), last)))
        self._price = last
        self._sums = _Sums()
        self.frontier = stop

    def _values(self, sums: _Sums, last_price: int | None) -> tuple[float | None, ...]:
        return tuple(_value(stat, sums, last_price) for stat in self.stats)

    def values(self, start: int) -> tuple[float | None, ...] | None:
        """The closed interval ``start``'s values, one per stat; None when not proven."""
        runs = self._runs
        while runs and runs[0][1] <= start:
            runs.popleft()
        if runs and runs[0][0] <= start:
            return runs[0][2]
        return None


@dataclass(slots=True)
class _Window:
    """Event mode: the trades received between two diffs, and whether the chain held across them."""

    sums: _Sums
    chained: bool  # anchored when it opened, and no jump inside
    closed_ns: int = 0  # receive time of the diff that closed it
    values: tuple[float | None, ...] | None = None
    decided: bool = False


class EventTradeTape:
    """Event mode's trade windows (see the module docstring): ``diff`` closes one, ``trade`` and
    ``received`` decide closed ones, in order; ``pop_decided`` hands them out."""

    __slots__ = ("stats", "_last_id", "_price", "_open", "_closed")

    def __init__(self, stats: tuple[TradeStat, ...]) -> None:
        self.stats = stats
        self._last_id: int | None = None
        self._price: int | None = None
        self._open = _Window(_Sums(), False)
        self._closed: deque[_Window] = deque()

    def trade(self, trade: Trade) -> None:
        if self._last_id is not None and trade.trade_id <= self._last_id:
            return  # a duplicate: counted already
        consecutive = self._last_id is not None and trade.trade_id == self._last_id + 1
        for window in self._closed:  # the first trade after each: it proves them, or not
            if not window.decided:
                self._decide(window, window.chained and consecutive)
        self._last_id = trade.trade_id
        self._open.chained = self._open.chained and consecutive
        self._open.sums.add(trade)
        self._price = self._open.sums.last_price

    def diff(self, recv_ns: int) -> None:
        """A diff closes the open window (its row's trades)."""
        window = self._open
        window.closed_ns = recv_ns
        window.sums.last_price = self._price  # carried into a window without trades
        self._closed.append(window)
        self._open = _Window(_Sums(), self._last_id is not None)

    def received(self, recv_ns: int) -> None:
        limit = recv_ns - TRADE_GRACE_MS * _NS_PER_MS
        for window in self._closed:
            if window.closed_ns > limit:
                break
            if not window.decided:
                self._decide(window, False)

    def restart(self) -> None:
        for window in self._closed:
            if not window.decided:
                self._decide(window, False)
        self._last_id = None
        self._open.chained = False

    def _decide(self, window: _Window, proven: bool) -> None:
        window.decided = True
        if proven:
            window.values = tuple(_value(stat, window.sums, window.sums.last_price) for stat in self.stats)

    def pop_decided(self) -> _Window | None:
        """The first closed window once decided (its ``values`` None: null), else None."""
        if not self._closed or not self._closed[0].decided:
            return None
        return self._closed.popleft()


def add_trade_features(registry: Registry) -> None:
    """Register the trade features beside the book features."""
    docs = {
        "trade_count": (TradeStat.COUNT, "trades in the interval (by trade time T)"),
        "buy_volume": (TradeStat.BUY_VOLUME, "base quantity of trades whose taker bought (m false)"),
        "sell_volume": (TradeStat.SELL_VOLUME, "base quantity of trades whose taker sold (m true)"),
        "vwap": (TradeStat.VWAP, "sum(price * qty) / sum(qty) of the interval's trades; null when none"),
        "last_price": (TradeStat.LAST_PRICE, "price of the last trade up to the interval's end (carried)"),
        "trade_imbalance": (TradeStat.IMBALANCE, "(buy - sell) / (buy + sell) volume; null when none"),
    }
    for name, (stat, doc) in docs.items():
        registry.add(name, TradeFeature(stat), doc + "; null unless the trade-id chain proves the interval")
