"""What the local exchange serves: a ``Feed`` steps 100 ms at a time and answers depth snapshots.

The protocol is deliberately small so a feed replaying recorded segments fits it too: the server
owns pacing, fan-out and every fault (update-id jumps included), the feed only owns the market.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from acts.book.sequencer import Sequencer
from acts.core.decimals import BOOK_SCALE, format_decimal
from acts.core.events import BookTicker, DepthUpdate, Event, Snapshot, Trade, to_wire
from acts.core.markets import Market
from acts.core.timeunits import MINUTE_MS
from acts.exchange.generator import DEFAULT_START_MS, STEP_MS, MarketGenerator, SymbolSpec, spec_for

__all__ = ["Feed", "GeneratorFeed", "SegmentFeed"]


class Feed(Protocol):
    """A market the exchange can serve."""

    @property
    def symbols(self) -> list[str]:
        """Upper-case symbols, e.g. ``["BTCUSDT", "ETHUSDT"]``."""
        ...

    def step(self) -> list[dict[str, Any]]:
        """The next 100 ms of messages, each naming its symbol in ``"s"``: ``depthUpdate`` diffs and,
        if the feed has them, ``trade`` and ``bookTicker`` messages (``acts.exchange.wire.message_kind``)."""
        ...

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        """``GET /api/v3/depth`` for ``symbol`` as of the last step."""
        ...

    def spec(self, symbol: str) -> SymbolSpec:
        """Tick and lot sizes for ``exchangeInfo``."""
        ...


class GeneratorFeed:
    """The seeded ``MarketGenerator`` as a feed, trades and tickers included (exchange time starts at
    ``start_ms``, rounded to 100 ms)."""

    def __init__(self, symbols: Sequence[str], seed: int = 7, depth: int = 300, gap_rate: float = 0.0,
                 start_ms: int = DEFAULT_START_MS) -> None:
        self.generator = MarketGenerator(list(symbols), seed=seed, depth=depth, gap_rate=gap_rate,
                                         start_ms=start_ms - start_ms % 100)

    @property
    def symbols(self) -> list[str]:
        return self.generator.symbols

    def step(self) -> list[dict[str, Any]]:
        return self.generator.step_streams()

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        return self.generator.snapshot(symbol, limit)

    def spec(self, symbol: str) -> SymbolSpec:
        return spec_for(symbol)


class SegmentFeed:
    """Recorded history as a feed: the recorded diffs (and trades and tickers), 100 ms of exchange time per step.

    Snapshots are answered from a book rebuilt by the same sequencer (prices and quantities with
    8 decimals, ``lastUpdateId`` = its position); while that book is invalid (a recorded gap), the
    most recent recorded snapshot is served, which a client then sees as stale and retries.

    ``rebase_to_ms``: send every ``E`` shifted by whole minutes so that the first diff's lies within the
    minute before that time (``acts exchange --history`` serves old recordings "now": the recorder refuses
    event times far from its receive times). Minute boundaries, and so minute rows, are kept.
    """

    def __init__(self, data_dir: Any, symbols: Sequence[str] | None = None, start_ms: int | None = None,
                 rebase_to_ms: int | None = None) -> None:
        from acts.storage.store import SegmentStore

        store = SegmentStore(data_dir) if not isinstance(data_dir, SegmentStore) else data_dir
        chosen = store.check_symbols(list(symbols or []))
        self._symbols = chosen
        self._events = {s: self._iter(store, s) for s in chosen}
        self._pending: dict[str, Any] = {s: next(self._events[s], None) for s in chosen}
        self.market = store.market  # the store's rules rebuild the books (USD-M futures: the pu chain)
        self._books = {s: Sequencer(market=store.market) for s in chosen}
        self._last_snapshot: dict[str, dict[str, Any]] = {}
        self.shift_ms = 0  # set below; what comes before the first diff (a trade, a ticker) is not sent
        for symbol in chosen:  # markers and snapshots before the first diff carry no E: take them now
            while self._pending[symbol] is not None and not isinstance(self._pending[symbol], DepthUpdate):
                self._take(symbol)
        firsts = [e.event_time_ms for e in self._pending.values() if isinstance(e, DepthUpdate)]
        self.now_ms = start_ms if start_ms is not None else (min(firsts) - STEP_MS if firsts else 0)
        #: Added to every ``E`` sent (a multiple of a minute; 0 without ``rebase_to_ms``).
        self.shift_ms = ((rebase_to_ms - min(firsts)) // MINUTE_MS * MINUTE_MS
                         if rebase_to_ms is not None and firsts else 0)

    @staticmethod
    def _iter(store: Any, symbol: str) -> Iterator[Event]:
        for path in store.paths(symbol):
            yield from store.events(path, symbol)

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def step(self) -> list[dict[str, Any]]:
        self.now_ms += STEP_MS
        out = []
        for symbol in self._symbols:
            while True:
                event = self._pending[symbol]
                if event is None or (isinstance(event, (DepthUpdate, Trade)) and event.event_time_ms > self.now_ms):
                    break
                wire = self._take(symbol)
                if wire is not None:
                    out.append(wire)
        return out

    def _take(self, symbol: str) -> dict[str, Any] | None:
        """Apply the pending event; the diff to send, if it is one."""
        event = self._pending[symbol]
        self._pending[symbol] = next(self._events[symbol], None)
        self._books[symbol].apply(event)
        if isinstance(event, Snapshot):
            self._last_snapshot[symbol] = to_wire(event)
            return None
        if not isinstance(event, (DepthUpdate, Trade, BookTicker)):
            return None
        wire = to_wire(event)
        for key in ("E", "T"):  # a spot bookTicker has neither
            if key in wire:
                wire[key] += self.shift_ms
        return wire

    def snapshot(self, symbol: str, limit: int) -> dict[str, Any]:
        book = self._books[symbol]
        if not book.valid:
            return self._last_snapshot.get(symbol, {"lastUpdateId": 0, "bids": [], "asks": []})
        view = book.view()
        last = book.position
        pending = self._pending[symbol]
        if self.market is Market.USDM and isinstance(pending, DepthUpdate) and pending.prev_final_update_id == last:
            # A futures snapshot lies inside the next diff's [U, u] (taken mid-batch on Binance), so a client
            # that missed the diff ending at ``last`` still bridges with the next (its levels are absolute).
            last = pending.first_update_id
        return {
            "lastUpdateId": last,
            "bids": [[format_decimal(p, BOOK_SCALE), format_decimal(q, BOOK_SCALE)] for p, q in view.bids(limit)],
            "asks": [[format_decimal(p, BOOK_SCALE), format_decimal(q, BOOK_SCALE)] for p, q in view.asks(limit)],
        }

    def spec(self, symbol: str) -> SymbolSpec:
        return spec_for(symbol)
