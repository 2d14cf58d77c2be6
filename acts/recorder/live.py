"""``acts record``: the asyncio shell that carries out the ``RecorderSession``'s actions.

Strategy:

* Decisions are the session's (``acts.recorder.session``): this shell only reports what happened
  (frames, REST answers, connections opened or failed, timer ticks) and carries out the actions it
  gets back, in order. python-binance is reached only through ``acts.recorder.binance_adapter``
  (or any ``ExchangeClient``, e.g. a test's).
* Capture first. A connection takes every frame waiting in the client's queue (``Stream.ready``)
  and journals them all at once; books, features and entries are folded behind, by one fold task,
  from a queue of journaled records (``_unfolded``). Every journal append -- frames, snapshots,
  markers -- enqueues its record in the same synchronous step, so fold order is journal order and
  the rolled segments replay exactly what the live books saw. The fold yields to the loop after
  each slice (``FOLD_SLICE_S`` or ``FOLD_CHUNK`` records), so a burst's folds (or a slow feature)
  hold a frame's way to the journal back by a slice per loop turn, not by the whole burst. How far
  the fold lags is reported to the session, which warns and, past ``fold_backlog_max``, has the
  fold skip to a resync (``acts.recorder.session``).
* Sync. Binance's own procedure: subscribe, buffer, then fetch the REST snapshot; the
  sequencer does the rest. We do not use python-binance's ``DepthCacheManager``: it snapshots
  before subscribing and spins after a queue overflow.
* Time. Every wait, timeout and backoff goes through the injected ``Clock``: a stalled feed is a
  ``clock.wait_for`` that times out, a reconnect delay is a ``clock.sleep``, and one timer task
  ticks the session at its next deadline (timers, snapshot retries, the weight budget, the end).
  Under a ``FakeClock`` a test runs hours of recording in milliseconds.
* Slow things off the loop: sink writes and journal fsyncs (every ``journal_flush_s``, so a quiet
  feed is durable too) run in threads; the journal's own inline fsync is only a backstop for a late
  timer. A slow or dead MongoDB never delays capture. Journal rolls run in a child process
  (``acts.recorder.rollproc``): the recorder's memory stays flat and its loop keeps the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import signal
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acts.core.clock import Clock
from acts.core.errors import ExchangeError, StorageError, UnknownSymbolError
from acts.core.symbols import stream_name
from acts.features.entries import to_entry
from acts.features.registry import Feature
from acts.recorder.config import RecorderConfig
from acts.recorder.ingest import Ingestor
from acts.recorder.roll import Roller
from acts.recorder.rollproc import RollFailed, roll_apart
from acts.recorder.session import (
    Action,
    Close,
    Connect,
    FetchSnapshot,
    FlushJournal,
    HandOver,
    JournalAndFold,
    Log,
    LogHealth,
    PublishEntries,
    Reconnect,
    RecorderSession,
    RollJournal,
    SkipFolds,
    Stop,
    Wait,
    WriteMarker,
)
from acts.recorder.transport import ExchangeClient, RawFrame, Stream
from acts.storage.journal import Channel, JournalRecord, JournalWriter, list_journals
from acts.storage.records import marker_record

__all__ = ["RecorderConfig", "Recorder", "RecorderReport"]

log = logging.getLogger("acts.recorder")

#: The most reading ``exchangeInfo`` at start may take.
EXCHANGE_INFO_TIMEOUT_S = 30.0
#: The fold yields to the event loop after this much of its time (injected clock) or ``FOLD_CHUNK``
#: records, whichever comes first: a frame's path to the journal takes a few loop turns, each of
#: which may wait for one slice.
FOLD_SLICE_S = 0.002
FOLD_CHUNK = 64
#: The journal's own interval flush (an fsync on the event loop) waits this many timer intervals:
#: the timer's flush, in a thread, comes first unless the loop is that late.
INLINE_FLUSH_BACKSTOP = 3.0


@dataclass
class RecorderReport:
    frames: int = 0
    malformed: int = 0
    entries: int = 0
    reconnects: int = 0
    handovers: int = 0  # connections replaced while still open (24 h limit, serverShutdown)
    snapshots: int = 0
    segments: list[Path] = field(default_factory=list)
    #: Receive -> journal-append lag of recent frames (ns), queueing in python-binance included.
    lags_ns: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))
    #: Receive -> fold lag of recent records (ns): how far books and entries run behind capture.
    fold_lags_ns: deque[int] = field(default_factory=lambda: deque(maxlen=100_000))
    fold_skips: int = 0  # times the fold fell too far behind and skipped to a resync
    roll_failures: int = 0  # rolls that failed: their journals stay for the next start

    def lag_ms(self, quantile: float) -> float | None:
        return _quantile_ms(self.lags_ns, quantile)

    def fold_lag_ms(self, quantile: float) -> float | None:
        return _quantile_ms(self.fold_lags_ns, quantile)


def _quantile_ms(lags_ns: deque[int], quantile: float) -> float | None:
    if not lags_ns:
        return None
    ordered = sorted(lags_ns)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] / 1e6


def _disk_error(writer: JournalWriter, exc: OSError) -> StorageError:
    return StorageError(f"cannot write the journal {writer.path}: {exc.strerror or exc}; free space or fix "
                        "permissions and restart -- everything flushed before this is safe and is recovered on start")


class _GuardedJournal:
    """The journal as the ingestor sees it: a failed write is fatal, never retried like a network error."""

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer

    def append(self, record: JournalRecord) -> None:
        try:
            self.writer.append(record)
        except OSError as exc:
            raise _disk_error(self.writer, exc) from None


class Recorder:
    """Records ``config.symbols`` until stopped; publishes minute entries to ``sink``.

    ``exchange`` is how the exchange is reached; by default python-binance, built at ``run``."""

    def __init__(self, config: RecorderConfig, features: Sequence[Feature], sink: Any, clock: Clock,
                 roller: Roller, exchange: ExchangeClient | None = None) -> None:
        if roller.market is not config.market:
            raise ValueError(f"a {config.market} recorder needs a {config.market} roller, not {roller.market}")
        self.config = config
        self.features = features
        self.sink = sink
        self.clock = clock
        self.roller = roller
        self.report = RecorderReport()
        self.session = RecorderSession(config)
        self._exchange = exchange
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # the session's next deadline moved earlier
        self._journal: JournalWriter | None = None
        self._ingestor: Ingestor | None = None
        self._closing: set[int] = set()  # connections the session asked to close
        self._tasks: set[asyncio.Task[Any]] = set()
        self._entries: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._unfolded: deque[JournalRecord] = deque()  # journaled, not folded yet, in journal order
        self._fold_wake = asyncio.Event()
        self._writing: asyncio.Future[None] | None = None  # the sink write in progress
        self._flushing: asyncio.Task[None] | None = None  # the journal fsync in progress
        self._flushed: tuple[JournalWriter, int] | None = None  # (journal, records) at the last timed flush
        self._rolling = asyncio.Lock()  # rolls finish one at a time, in journal order
        self._rolls: set[asyncio.Task[None]] = set()  # never cancelled: a stop waits for them
        self._symbol_logs = {s: logging.getLogger(f"acts.symbol.{s}") for s in config.symbols}
        self.failure: BaseException | None = None  # what stopped the recorder, if not a signal

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        self.session.stop()
        self._stop.set()

    async def run(self) -> RecorderReport:
        """Recover old journals, validate symbols, record until stopped, then flush and roll."""
        if list_journals(self.roller.journal_dir):  # a previous run's: rolled apart, like every rotation
            self.report.segments += await roll_apart(self.roller, None, self.clock.time_ns())
        if self._exchange is None:
            from acts.recorder.binance_adapter import BinanceAdapter

            self._exchange = BinanceAdapter(self.clock, self.config.rest_url, self.config.stream_url,
                                            queue_size=self.config.queue_size,
                                            stale_after_s=self.config.stale_after_s, market=self.config.market)
        try:
            await self._validate_symbols()
            self._journal = self._open_journal()
            self._ingestor = Ingestor(self.config.symbols, self.features, _GuardedJournal(self._journal),
                                      self._on_malformed, self.config.market)
            self._install_signals()
            self._spawn(self._publish_loop())
            self._spawn(self._fold_loop())
            # The session's first actions: a RESTART marker for every symbol (this process knows
            # nothing of what came before: replay forgets at the same point), then the connections.
            self._run(self.session.start(self.clock.monotonic()))
            self._spawn(self._timers())
            await self._stop.wait()
        finally:
            await self._shutdown()
        return self.report

    def _open_journal(self) -> JournalWriter:
        try:
            writer = self.roller.open_journal(self.clock.time_ns())
            writer.flush_interval_s = max(writer.flush_interval_s, INLINE_FLUSH_BACKSTOP * self.config.journal_flush_s)
            return writer
        except OSError as exc:
            raise StorageError(f"cannot create a journal under {self.roller.journal_dir}: {exc.strerror or exc}; "
                               "check the --data-dir path, its permissions and free space") from None

    async def _shutdown(self) -> None:
        self.stop()
        for task in list(self._tasks):
            if task not in self._rolls:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fold_all()  # what capture journaled is folded too: its entries go out below
        clean = self._journal is not None and not isinstance(self.failure, StorageError)
        if clean:
            # The shutdown markers close the rows still waiting for a trade proof (features.trades):
            # folded before the drain, so they go out as replay of these segments gives them.
            self._run(self.session.shutdown_markers())
            self._fold_all()
        await self._drain_entries()
        if self._journal is None:
            pass
        elif not clean:
            # The disk refused a write: leave the journal exactly as it is; the next start recovers it.
            log.error("journal left for recovery at the next start: %s", self._journal.path)
        else:
            journal, self._journal = self._journal, None
            try:
                self.report.segments += await asyncio.to_thread(self.roller.finish, journal)
            except OSError as exc:
                self.failure = StorageError(f"could not roll {journal.path} into segments ({exc.strerror or exc}); "
                                            "it is kept and recovered at the next start")
        if self._exchange is not None:
            await self._exchange.close()
        self._log_health_now()
        fold_p99 = self.report.fold_lag_ms(0.99)
        if fold_p99 is not None:
            log.info("fold lag behind capture: p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d skips to a resync",
                     self.report.fold_lag_ms(0.5), fold_p99, max(self.report.fold_lags_ns) / 1e6,
                     self.report.fold_skips)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recorder task failed: %r; stopping", task.exception())
            self.failure = task.exception()
            self.stop()

    async def _timers(self) -> None:
        """Tick the session at its next deadline (sooner when it says so with ``Wait``)."""
        while True:
            now = self.clock.monotonic()
            self._run(self.session.tick(now))
            self._wake.clear()
            delay = self.session.next_deadline(now) - now
            with contextlib.suppress(TimeoutError):
                await self.clock.wait_for(self._wake.wait(), max(0.0, delay))

    # --- carrying out actions --------------------------------------------------------------

    def _run(self, actions: list[Action]) -> None:
        """Carry out ``actions`` in order, synchronously: a fold's follow-ups run before the next record."""
        for action in actions:
            if isinstance(action, JournalAndFold):
                self._journal_record(action.record)
            elif isinstance(action, WriteMarker):
                now = self.clock.time_ns() if action.recv_ns is None else action.recv_ns
                detail = dict(action.detail)
                for symbol in action.symbols:
                    self._journal_record(marker_record(action.kind, symbol, now, **detail))
            elif isinstance(action, SkipFolds):
                self.report.fold_skips += 1
                self._unfolded.clear()
            elif isinstance(action, PublishEntries):
                names = self.config.feature_names
                self._entries.put_nowait([to_entry(row, names) for row in action.rows])
            elif isinstance(action, FetchSnapshot):
                self._spawn(self._fetch_snapshot(action.symbol, action.limit))
            elif isinstance(action, Connect):
                self._spawn(self._connection(action.connection, action.symbols, 0.0))
            elif isinstance(action, Reconnect):
                self.report.reconnects += 1
                log.error("stream %s: %s; reconnecting in %.1fs", ",".join(action.symbols), action.reason,
                          action.after_s)
                self._spawn(self._connection(action.connection, action.symbols, action.after_s))
            elif isinstance(action, HandOver):
                self.report.handovers += 1
                self._spawn(self._connection(action.new, action.symbols, 0.0))
            elif isinstance(action, Close):
                self._closing.add(action.connection)
            elif isinstance(action, Wait):
                self._wake.set()
            elif isinstance(action, FlushJournal):
                self._flush_journal()
            elif isinstance(action, RollJournal):
                self._rotate_journal()
            elif isinstance(action, LogHealth):
                self._log_health_now()
            elif isinstance(action, Log):
                (self._symbol_logs[action.symbol] if action.symbol else log).log(action.level, action.message)
            elif isinstance(action, Stop):
                if action.failure is not None:
                    log.error("%s; stopping", action.failure)
                    self.failure = action.failure
                self.stop()

    def _journal_record(self, record: JournalRecord) -> None:
        """Append ``record`` to the journal and queue it for the fold, in one step (journal order = fold order)."""
        assert self._ingestor is not None
        self._ingestor.journal.append(record)
        if record.channel is Channel.STREAM:
            self.report.frames += 1
            self.report.lags_ns.append(self.clock.time_ns() - record.recv_ns)
        self._unfolded.append(record)
        self._fold_wake.set()

    # --- the fold, behind capture ----------------------------------------------------------

    async def _fold_loop(self) -> None:
        while True:
            await self._fold_wake.wait()
            self._fold_wake.clear()
            while self._unfolded:
                self._fold(FOLD_CHUNK, self.clock.monotonic() + FOLD_SLICE_S)
                await asyncio.sleep(0)  # capture journals what arrived meanwhile before the next chunk
            self._report_backlog()

    def _fold(self, most: int, until: float = float("inf")) -> None:
        """Fold up to ``most`` journaled records, oldest first, until the clock reads ``until`` (at least
        one), and carry out what the session makes of each."""
        assert self._ingestor is not None
        for i in range(min(most, len(self._unfolded))):
            if i and self.clock.monotonic() >= until:
                return
            record = self._unfolded.popleft()
            result = self._ingestor.fold(record)
            self.report.fold_lags_ns.append(self.clock.time_ns() - record.recv_ns)
            self._run(self.session.folded(result, self.clock.monotonic()))

    def _fold_all(self) -> None:
        if self._ingestor is not None:
            while self._unfolded:
                self._fold(len(self._unfolded))

    def _report_backlog(self) -> None:
        """Tell the session how far the fold is behind capture (it warns, or skips to a resync)."""
        waiting = len(self._unfolded)
        lag_s = (self.clock.time_ns() - self._unfolded[0].recv_ns) / 1e9 if waiting else 0.0
        self._run(self.session.fold_backlog(waiting, lag_s, self.clock.monotonic()))

    # --- symbols ---------------------------------------------------------------------------

    async def _validate_symbols(self) -> None:
        assert self._exchange is not None
        url = self._exchange.url
        try:
            info = await self.clock.wait_for(self._exchange.exchange_info(), EXCHANGE_INFO_TIMEOUT_S)
        except TimeoutError:
            raise ExchangeError(f"cannot read exchangeInfo from {url}: no answer in {EXCHANGE_INFO_TIMEOUT_S:.0f}s; "
                                "check that --rest-url is a Binance REST API base such as "
                                "http://127.0.0.1:9443/api") from None
        symbols = info.get("symbols") if isinstance(info, dict) else None
        if not isinstance(symbols, list) or not all(isinstance(s, dict) and isinstance(s.get("symbol"), str)
                                                    for s in symbols):
            raise ExchangeError(f"{url} answered exchangeInfo with {str(info)[:80]!r}, not Binance's exchangeInfo; "
                                "check that --rest-url is a Binance REST API base such as http://127.0.0.1:9443/api")
        listed = {s["symbol"]: s.get("status", "TRADING") for s in symbols}
        for symbol in self.config.symbols:
            if symbol not in listed:
                close = difflib.get_close_matches(symbol, list(listed), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise UnknownSymbolError(f"symbol {symbol} is not listed by the exchange{hint}")
            if listed[symbol] != "TRADING":
                log.warning("%s is listed with status %s: its stream may be silent", symbol, listed[symbol])

    # --- streams ---------------------------------------------------------------------------

    async def _connection(self, connection: int, symbols: tuple[str, ...], after_s: float) -> None:
        """One connection, from open to close: reports what happens to the session, which decides."""
        if after_s > 0:
            await self.clock.sleep(after_s)
        assert self._exchange is not None
        # Every stream of a symbol on the same connection: a trade or ticker is journaled in the same
        # order relative to the diffs as python-binance read them.
        stream = self._exchange.stream([stream_name(kind, s, self.config.market) for s in symbols
                                        for kind in self.config.streams])
        try:
            failure = await self._open(stream)
            if failure is not None:
                self._run(self.session.connection_failed(connection, self.clock.monotonic(), *failure))
                return
            self._run(self.session.connection_opened(connection, self.clock.monotonic()))
            while connection not in self._closing and not self._stop.is_set():
                try:
                    message = await self.clock.wait_for(stream.recv(), self.config.stale_after_s)
                except TimeoutError:
                    self._run(self.session.connection_failed(connection, self.clock.monotonic(), "", stalled=True))
                    return
                except Exception as exc:  # noqa: BLE001 -- every failure is the session's to judge; logged there
                    self._run(self.session.connection_failed(connection, self.clock.monotonic(),
                                                             f"{type(exc).__name__}: {exc}"))
                    return
                # Every frame already waiting is journaled now, as one batch, before any is folded.
                records: list[JournalRecord] = []
                error: str | None = None
                for item in [message, *stream.ready()]:
                    if isinstance(item, RawFrame):
                        records.append(JournalRecord(item.recv_ns, Channel.STREAM, "", item.payload))
                    elif isinstance(item, dict) and item.get("e") == "error":
                        error = f"ExchangeError: websocket {item.get('type')}: {item.get('m')}"
                        break
                if records:
                    self._run(self.session.frames(connection, records, self.clock.monotonic()))
                    self._report_backlog()
                if error is not None:
                    self._run(self.session.connection_failed(connection, self.clock.monotonic(), error))
                    return
        finally:
            self._closing.discard(connection)
            await stream.close()

    async def _open(self, stream: Stream) -> tuple[str, bool] | None:
        """Open ``stream``; on failure the (reason, stalled) the session is told."""
        try:
            await self.clock.wait_for(stream.open(), self.config.stale_after_s + self.config.rest_timeout_s)
        except TimeoutError:
            return "", True
        except Exception as exc:  # noqa: BLE001 -- judged by the session
            return f"{type(exc).__name__}: {exc}", False
        return None

    # --- snapshots, entries ----------------------------------------------------------------

    async def _fetch_snapshot(self, symbol: str, limit: int) -> None:
        assert self._exchange is not None
        try:
            body = await self.clock.wait_for(self._exchange.order_book(symbol, limit), self.config.rest_timeout_s)
        except Exception as exc:  # noqa: BLE001 -- the session judges: retry after a backoff, or give up
            self._run(self.session.snapshot_failed(symbol, self.clock.monotonic(), self._exchange.rest_failure(exc)))
            return
        self.report.snapshots += 1
        payload = json.dumps(body, separators=(",", ":")).encode()
        record = JournalRecord(self.clock.time_ns(), Channel.SNAPSHOT, symbol, payload)
        self._run(self.session.snapshot_received(record, self.clock.monotonic()))

    async def _publish_loop(self) -> None:
        while True:
            batch = await self._entries.get()
            # Shielded: cancelling this loop at shutdown must not abandon a write half-way (its thread
            # would run on, racing the drain); the drain waits for it instead.
            self._writing = asyncio.ensure_future(self._write_entries(batch))
            await asyncio.shield(self._writing)

    def _durable_write(self, batch: list[dict[str, Any]]) -> None:
        """Fsync the journal, then write ``batch``: an entry is published only once the records that
        closed its minute are durable, so a kill -9 can never leave an entry that replay contradicts."""
        journal = self._journal
        if journal is not None:  # a journal closed by a rotation meanwhile was flushed then: flush() is a no-op
            journal.flush()
        self.sink.write(batch, self.config.sink_timeout_s)

    async def _drain_entries(self) -> None:
        """At a stop: the write in progress ends within ``sink_timeout_s``; what is still queued goes
        out as one write, bounded the same way (a spooling sink keeps what its primary refuses, and
        only spools while its primary rests after a failure). The sink's owner closes it."""
        if self._writing is not None:
            await self._writing
        rest: list[dict[str, Any]] = []
        while not self._entries.empty():
            rest += self._entries.get_nowait()
        if rest:
            await self._write_entries(rest)

    async def _write_entries(self, batch: list[dict[str, Any]]) -> None:
        if self.sink is None:
            return
        try:
            await asyncio.to_thread(self._durable_write, batch)
            self.report.entries += len(batch)
        except Exception as exc:  # noqa: BLE001 -- the sink spools; recording must go on
            log.error("minute entries not written: %s", exc)

    def _on_malformed(self, record: JournalRecord, reason: str) -> None:
        self.report.malformed += 1
        log.warning("malformed %s message kept in the journal only: %s", record.channel.name.lower(), reason)

    # --- journal ---------------------------------------------------------------------------

    def _flush_journal(self) -> None:
        """Fsync the journal in a thread, so a quiet feed is durable within ``journal_flush_s``."""
        journal = self._journal
        if journal is None or (self._flushing is not None and not self._flushing.done()):
            return  # a flush still running takes these records along
        if self._flushed == (journal, journal.records):
            return  # nothing appended since the last timed flush: no thread hop for nothing
        self._flushed = (journal, journal.records)
        self._flushing = self._spawn(self._flush_in_thread(journal))

    async def _flush_in_thread(self, journal: JournalWriter) -> None:
        try:
            await asyncio.to_thread(journal.flush)
        except OSError as exc:
            raise _disk_error(journal, exc) from None

    def _rotate_journal(self) -> None:
        if self._journal is None or self._ingestor is None:
            return
        old = self._journal
        self._journal = self._open_journal()
        self._ingestor.journal = _GuardedJournal(self._journal)
        roll = self._spawn(self._roll(old))
        self._rolls.add(roll)
        roll.add_done_callback(self._rolls.discard)

    async def _roll(self, journal: JournalWriter) -> None:
        """Roll a rotated journal in a child process; if that fails, recording goes on and the journal
        stays in place for the next start's recovery (nothing is lost)."""
        try:  # at once, not in its turn: a roll waiting behind a slow one holds no open file
            await asyncio.to_thread(journal.close)
        except OSError as exc:
            raise _disk_error(journal, exc) from None
        async with self._rolling:
            try:
                self.report.segments += await roll_apart(self.roller, journal.path, self.clock.time_ns())
            except RollFailed as exc:
                self.report.roll_failures += 1
                log.error("%s", exc)

    def _log_health_now(self) -> None:
        if self._ingestor is None:
            return
        for symbol, health in self._ingestor.health.items():
            line = health.line(symbol, self._ingestor.valid(symbol))
            self._symbol_logs[symbol].info(line)
            log.info(line)
