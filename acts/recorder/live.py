"""``acts record``: the asyncio shell that carries out the ``RecorderSession``'s actions.

Strategy:

* Decisions are the session's (``acts.recorder.session``): this shell only reports what happened
  (frames, REST answers, connections opened or failed, timer ticks) and carries out the actions it
  gets back, in order. python-binance is reached only through ``acts.recorder.binance_adapter``
  (or any ``ExchangeClient``, e.g. a test's).
* Order. Everything that touches the journal and the books runs on the event loop without an
  ``await`` between "journal" and "fold" (``Ingestor.ingest``), so journal order is fold order
  and the rolled segments replay exactly what the live books saw.
* Sync. Binance's own procedure: subscribe, buffer, then fetch the REST snapshot; the
  sequencer does the rest. We do not use python-binance's ``DepthCacheManager``: it snapshots
  before subscribing and spins after a queue overflow.
* Time. Every wait, timeout and backoff goes through the injected ``Clock``: a stalled feed is a
  ``clock.wait_for`` that times out, a reconnect delay is a ``clock.sleep``, and one timer task
  ticks the session at its next deadline (timers, snapshot retries, the weight budget, the end).
  Under a ``FakeClock`` a test runs hours of recording in milliseconds.
* Slow things off the loop: sink writes, journal fsyncs (every ``journal_flush_s``, so a quiet
  feed is durable too) and journal-to-segment rolls run in threads; a slow or dead MongoDB never
  delays capture.
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
from acts.core.symbols import depth_stream
from acts.features.entries import to_entry
from acts.features.registry import Feature
from acts.recorder.config import RecorderConfig
from acts.recorder.ingest import Ingestor
from acts.recorder.roll import Roller
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
    Stop,
    Wait,
    WriteMarker,
)
from acts.recorder.transport import ExchangeClient, RawFrame, Stream
from acts.storage.journal import Channel, JournalRecord, JournalWriter

__all__ = ["RecorderConfig", "Recorder", "RecorderReport"]

log = logging.getLogger("acts.recorder")

#: The most reading ``exchangeInfo`` at start may take.
EXCHANGE_INFO_TIMEOUT_S = 30.0


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

    def lag_ms(self, quantile: float) -> float | None:
        if not self.lags_ns:
            return None
        ordered = sorted(self.lags_ns)
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
        self.report.segments += await asyncio.to_thread(self.roller.recover)
        if self._exchange is None:
            from acts.recorder.binance_adapter import BinanceAdapter

            self._exchange = BinanceAdapter(self.clock, self.config.rest_url, self.config.stream_url,
                                            queue_size=self.config.queue_size,
                                            stale_after_s=self.config.stale_after_s)
        try:
            await self._validate_symbols()
            self._journal = self._open_journal()
            self._ingestor = Ingestor(self.config.symbols, self.features, _GuardedJournal(self._journal),
                                      self._on_malformed)
            self._install_signals()
            self._spawn(self._publish_loop())
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
            return self.roller.open_journal(self.clock.time_ns())
        except OSError as exc:
            raise StorageError(f"cannot create a journal under {self.roller.journal_dir}: {exc.strerror or exc}; "
                               "check the --data-dir path, its permissions and free space") from None

    async def _shutdown(self) -> None:
        self.stop()
        for task in list(self._tasks):
            if task not in self._rolls:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._drain_entries()
        if self._journal is None:
            pass
        elif isinstance(self.failure, StorageError):
            # The disk refused a write: leave the journal exactly as it is; the next start recovers it.
            log.error("journal left for recovery at the next start: %s", self._journal.path)
        else:
            self._run(self.session.shutdown_markers())
            journal, self._journal = self._journal, None
            try:
                self.report.segments += await asyncio.to_thread(self.roller.finish, journal)
            except OSError as exc:
                self.failure = StorageError(f"could not roll {journal.path} into segments ({exc.strerror or exc}); "
                                            "it is kept and recovered at the next start")
        if self._exchange is not None:
            await self._exchange.close()
        self._log_health_now()

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
                self._journal_and_fold(action.record)
            elif isinstance(action, WriteMarker):
                assert self._ingestor is not None
                now = self.clock.time_ns() if action.recv_ns is None else action.recv_ns
                detail = dict(action.detail)
                for symbol in action.symbols:
                    self._ingestor.marker(action.kind, symbol, now, **detail)
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

    def _journal_and_fold(self, record: JournalRecord) -> None:
        assert self._ingestor is not None
        result = self._ingestor.ingest(record)
        if record.channel is Channel.STREAM:
            self.report.frames += 1
            self.report.lags_ns.append(self.clock.time_ns() - record.recv_ns)
        self._run(self.session.folded(result, self.clock.monotonic()))

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
        stream = self._exchange.stream([depth_stream(s) for s in symbols])
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
                if isinstance(message, RawFrame):
                    record = JournalRecord(message.recv_ns, Channel.STREAM, "", message.payload)
                    self._run(self.session.frame(connection, record, self.clock.monotonic()))
                elif isinstance(message, dict) and message.get("e") == "error":
                    reason = f"ExchangeError: websocket {message.get('type')}: {message.get('m')}"
                    self._run(self.session.connection_failed(connection, self.clock.monotonic(), reason))
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
        async with self._rolling:
            self.report.segments += await asyncio.to_thread(self.roller.finish, journal)

    def _log_health_now(self) -> None:
        if self._ingestor is None:
            return
        for symbol, health in self._ingestor.health.items():
            line = health.line(symbol, self._ingestor.valid(symbol))
            self._symbol_logs[symbol].info(line)
            log.info(line)
