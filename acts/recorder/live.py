"""``acts record``: the asyncio shell around python-binance and the pure ``Ingestor``.

Strategy:

* Capture. python-binance parses every websocket frame with ``ReconnectingWebsocket.json_loads``
  inside its read loop; we replace that method on each socket with one that returns the raw
  text plus ``time_ns()``, so every frame is timestamped where it is read and journaled
  byte-for-byte before anything parses it.
* Order. Everything that touches the journal and the books runs on the event loop without an
  ``await`` between "journal" and "fold" (``Ingestor.ingest``), so journal order is fold order
  and the rolled segments replay exactly what the live books saw.
* Sync. Binance's own procedure: subscribe, buffer, then fetch the REST snapshot; the
  sequencer does the rest. A gap or a stale snapshot asks for a new snapshot. We do not use
  python-binance's ``DepthCacheManager``: it snapshots before subscribing and spins after a
  queue overflow.
* Resilience. A stalled feed (``asyncio.TimeoutError``) reconnects after a constant delay, other
  failures back off exponentially up to a cap, forever by default; a connection is replaced
  before Binance's 24 h cut or at its ``serverShutdown`` notice, with overlap, merged in order by
  ``recorder.handover`` (duplicates are ignored by the sequencer).
* Slow things off the loop: sink writes and journal-to-segment rolls run in threads; a slow or
  dead MongoDB never delays capture.
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

import aiohttp
from binance import AsyncClient, BinanceSocketManager
from binance.exceptions import BinanceAPIException, BinanceRequestException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from acts.book.sequencer import Gap, StaleSnapshot
from acts.core.clock import Clock
from acts.core.errors import ExchangeError, StorageError, UnknownSymbolError
from acts.core.events import EventKind
from acts.core.weights import depth_weight
from acts.features.entries import to_entry
from acts.features.registry import Feature
from acts.recorder.handover import Handover
from acts.recorder.ingest import Ingested, Ingestor
from acts.recorder.roll import Roller
from acts.storage.journal import Channel, JournalRecord, JournalWriter

__all__ = ["RecorderConfig", "Recorder", "RecorderReport", "stream_name"]

log = logging.getLogger("acts.recorder")


@dataclass(frozen=True)
class RecorderConfig:
    symbols: tuple[str, ...]
    data_dir: Path
    feature_names: tuple[str, ...]
    rest_url: str | None = None  # None: python-binance's default (the real Binance)
    stream_url: str | None = None
    snapshot_limit: int = 1000
    rest_timeout_s: float = 10.0
    snapshot_every_s: float = 3600.0  # checkpoint snapshots
    roll_every_s: float = 3600.0  # journal -> segments
    stale_after_s: float = 10.0  # no frame for this long: reconnect
    reconnect_delay_s: float = 1.0  # after a stall
    backoff_max_s: float = 60.0  # cap of the exponential backoff after errors
    max_retries: int | None = None  # None: keep going 24/7
    max_connection_age_s: float = 23.5 * 3600  # Binance cuts at 24 h
    streams_per_connection: int = 200
    queue_size: int = 10_000  # python-binance's per-socket queue
    journal_flush_s: float = 1.0
    weight_per_minute: int = 3000  # half of Binance's 6000: room for other clients
    health_every_s: float = 60.0
    #: The most one minute-entry write may wait for a remote store (MongoDB) before the entries stay
    #: spooled; it also bounds how long a stop waits for a write in progress.
    sink_timeout_s: float = 2.0
    duration_s: float | None = None  # stop by itself (demos, tests)


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


def stream_name(symbol: str) -> str:
    return f"{symbol.lower()}@depth@100ms"


class _GuardedJournal:
    """The journal as the ingestor sees it: a failed write is fatal, never retried like a network error."""

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer

    def append(self, record: JournalRecord) -> None:
        try:
            self.writer.append(record)
        except OSError as exc:
            raise StorageError(
                f"cannot write the journal {self.writer.path}: {exc.strerror or exc}; free space or fix "
                "permissions and restart -- everything flushed before this is safe and is recovered on start"
            ) from None


class _RawFrame:
    """What our capture hook hands python-binance's queue instead of parsed JSON."""

    __slots__ = ("payload", "recv_ns")

    def __init__(self, payload: bytes, recv_ns: int) -> None:
        self.payload = payload
        self.recv_ns = recv_ns


class _WeightBudget:
    """Binance REST request weight per rolling minute, so snapshots never earn a 429."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.spent: list[tuple[float, int]] = []
        self.banned_until = 0.0

    async def acquire(self, weight: int) -> None:
        while True:
            now = self.clock.monotonic()
            if now < self.banned_until:
                await self.clock.sleep(self.banned_until - now)
                continue
            self.spent = [(t, w) for t, w in self.spent if now - t < 60.0]
            if sum(w for _, w in self.spent) + weight <= self.per_minute:
                self.spent.append((now, weight))
                return
            await self.clock.sleep(max(0.05, 60.0 - (now - self.spent[0][0])))

    def ban(self, seconds: float) -> None:
        self.banned_until = max(self.banned_until, self.clock.monotonic() + seconds)


class _Demoted(logging.LoggerAdapter[logging.Logger]):
    """python-binance's socket logger once we close that socket on purpose: its read loop reports the
    connection we abort as an ERROR (``ConnectionClosedError``), which at a stop, a stale-feed
    reconnect or a handover is expected. Those lines go out at DEBUG; a close we did not ask for
    happens before this is installed and is still logged as the error it is."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(min(level, logging.DEBUG), msg, *args, **kwargs)


async def _close_quietly(socket: Any) -> None:
    """Close a python-binance socket for good, without ever hanging the recorder on it.

    The TCP connection is aborted first: python-binance's own close waits for its read loop, and a
    connection left open with nobody reading fills up and can stall the sender's other clients.
    """
    from binance.ws.constants import WSListenerState

    socket._log = _Demoted(socket._log, {})  # the abort below is ours: not an error to report
    socket.ws_state = WSListenerState.EXITING
    transport = getattr(getattr(socket, "ws", None), "transport", None)
    if transport is not None:
        transport.abort()
    try:
        await asyncio.wait_for(socket.__aexit__(None, None, None), 5)
    except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 -- already failing; just let go
        log.warning("websocket close did not finish cleanly: %r", exc)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, BinanceAPIException):
        return exc.status_code >= 500 or exc.status_code in (429, 418)
    return isinstance(exc, (BinanceRequestException, asyncio.TimeoutError, OSError, ExchangeError))


class Recorder:
    """Records ``config.symbols`` until stopped; publishes minute entries to ``sink``."""

    def __init__(self, config: RecorderConfig, features: Sequence[Feature], sink: Any, clock: Clock,
                 roller: Roller) -> None:
        self.config = config
        self.features = features
        self.sink = sink
        self.clock = clock
        self.roller = roller
        self.report = RecorderReport()
        self._stop = asyncio.Event()
        self._journal: JournalWriter | None = None
        self._ingestor: Ingestor | None = None
        self._client: AsyncClient | None = None
        self._budget = _WeightBudget(config.weight_per_minute, clock)
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._entries: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self._writing: asyncio.Future[None] | None = None  # the sink write in progress
        self._symbol_logs = {s: logging.getLogger(f"acts.symbol.{s}") for s in config.symbols}
        self.failure: BaseException | None = None  # what stopped the recorder, if not a signal

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> RecorderReport:
        """Recover old journals, validate symbols, record until stopped, then flush and roll."""
        self.report.segments += await asyncio.to_thread(self.roller.recover)
        self._client = AsyncClient(requests_params={"timeout": 10})
        if self.config.rest_url:
            self._client.API_URL = self.config.rest_url
        try:
            await self._validate_symbols()
            self._journal = self._open_journal()
            self._ingestor = Ingestor(self.config.symbols, self.features, _GuardedJournal(self._journal),
                                      self._on_malformed)
            # This process knows nothing of what came before: say so in the data, so that replay
            # forgets at the same point and equals what live publishes from here on.
            self._mark_all(list(self.config.symbols), EventKind.RESTART)
            self._install_signals()
            self._spawn(self._publish_loop())
            self._spawn(self._timer(self.config.snapshot_every_s, self._checkpoint_all))
            self._spawn(self._timer(self.config.roll_every_s, self._rotate_journal))
            self._spawn(self._timer(self.config.health_every_s, self._log_health))
            symbols = list(self.config.symbols)
            size = self.config.streams_per_connection
            for i in range(0, len(symbols), size):
                self._spawn(self._connection_loop(symbols[i : i + size]))
            if self.config.duration_s is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.config.duration_s)
            else:
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
        self._stop.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._drain_entries()
        if self._journal is None:
            pass
        elif isinstance(self.failure, StorageError):
            # The disk refused a write: leave the journal exactly as it is; the next start recovers it.
            log.error("journal left for recovery at the next start: %s", self._journal.path)
        else:
            assert self._ingestor is not None
            now = self.clock.time_ns()
            for symbol in self.config.symbols:
                self._ingestor.marker(EventKind.DISCONNECT, symbol, now, reason="shutdown")
            journal, self._journal = self._journal, None
            try:
                self.report.segments += await asyncio.to_thread(self.roller.finish, journal)
            except OSError as exc:
                self.failure = StorageError(f"could not roll {journal.path} into segments ({exc.strerror or exc}); "
                                            "it is kept and recovered at the next start")
        if self._client is not None:
            await self._client.close_connection()
        self._log_health_now()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recorder task failed: %r; stopping", task.exception())
            self.failure = task.exception()
            self.stop()

    async def _timer(self, every_s: float, action: Any) -> None:
        while True:
            await self.clock.sleep(every_s)
            await action()

    # --- symbols ---------------------------------------------------------------------------

    async def _validate_symbols(self) -> None:
        assert self._client is not None
        url = self._client.API_URL
        try:
            info = await asyncio.wait_for(self._client.get_exchange_info(), 30)
        except (BinanceAPIException, BinanceRequestException, asyncio.TimeoutError, OSError,
                aiohttp.ClientError) as exc:  # ClientError: e.g. an HTML page where JSON was due
            raise ExchangeError(f"cannot read exchangeInfo from {url}: {str(exc)[:200]}; check that --rest-url is a "
                                "Binance REST API base such as http://127.0.0.1:9443/api") from None
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

    async def _connection_loop(self, symbols: list[str], ready: asyncio.Event | None = None,
                               handover: Handover[_RawFrame] | None = None) -> None:
        """Keep one connection for ``symbols`` alive; ``ready`` is set at its first frame; ``handover``
        when it replaces an older connection that is still delivering."""
        failures = 0
        while not self._stop.is_set():
            try:
                await self._stream_once(symbols, ready, handover)
                return  # handed over to a successor connection, or stopping
            except (asyncio.CancelledError, StorageError):
                raise  # not a network problem: retrying cannot help
            except asyncio.TimeoutError:
                delay, reason = self.config.reconnect_delay_s, "stale feed"
            except Exception as exc:  # noqa: BLE001 -- every failure reconnects; it is logged loudly
                failures += 1
                delay = min(self.config.backoff_max_s, self.config.reconnect_delay_s * 2 ** (failures - 1))
                reason = f"{type(exc).__name__}: {exc}"
            self.report.reconnects += 1
            log.error("stream %s: %s; reconnecting in %.1fs", ",".join(symbols), reason, delay)
            self._mark_all(symbols, EventKind.DISCONNECT, reason=reason)
            if self.config.max_retries is not None and failures > self.config.max_retries:
                raise ExchangeError(f"gave up after {failures} failed connections: {reason}")
            await self.clock.sleep(delay)

    async def _stream_once(self, symbols: list[str], ready: asyncio.Event | None,
                           incoming: Handover[_RawFrame] | None) -> None:
        assert self._client is not None
        manager = BinanceSocketManager(self._client, max_queue_size=self.config.queue_size)
        if self.config.stream_url:
            manager.STREAM_URL = self.config.stream_url
        socket = manager.multiplex_socket([stream_name(s) for s in symbols])
        socket.json_loads = self._capture  # type: ignore[method-assign]
        socket.TIMEOUT = self.config.stale_after_s
        # ACTS owns reconnection (backoff, markers, resync). python-binance's own retry loop would keep
        # the socket alive behind our back, and its __aexit__ then waits for that loop forever.
        socket.MAX_RECONNECTS = 0
        opened = self.clock.monotonic()
        outgoing: Handover[_RawFrame] | None = None  # once a successor connection is taking over from this one

        def may_hand_over() -> bool:  # one handover at a time: not while this one is still taking over
            return outgoing is None and (incoming is None or incoming.done)

        await asyncio.wait_for(socket.__aenter__(), self.config.stale_after_s + self.config.rest_timeout_s)
        try:
            self._mark_all(symbols, EventKind.CONNECT, streams=len(symbols))
            while not self._stop.is_set():
                msg = await asyncio.wait_for(socket.recv(), self.config.stale_after_s)
                if isinstance(msg, _RawFrame):
                    if b'"serverShutdown"' in msg.payload[:80]:
                        # Binance announces its 24 h cut (or maintenance): hand over now, not at the close.
                        log.warning("stream %s: the exchange announced serverShutdown", ",".join(symbols))
                        if may_hand_over():
                            outgoing = self._hand_over(symbols)
                        continue
                    if incoming is not None and not incoming.done:
                        incoming.new_frame(msg)  # held until the old connection has delivered it too
                    elif outgoing is not None:
                        if outgoing.old_frame(msg):
                            return  # the successor has caught up: close this one
                    else:
                        self._on_frame(msg)
                    if ready is not None:
                        ready.set()
                        ready = None
                elif isinstance(msg, dict) and msg.get("e") == "error":
                    raise ExchangeError(f"websocket {msg.get('type')}: {msg.get('m')}")
                if may_hand_over() and self.clock.monotonic() - opened >= self.config.max_connection_age_s:
                    # Replace the connection before Binance's 24 h cut, overlapping so nothing is lost.
                    outgoing = self._hand_over(symbols)
        except Exception as exc:
            if outgoing is None or isinstance(exc, StorageError):
                raise
            # The successor is already connecting: it is the feed now, no reconnect from here.
            log.warning("stream %s: %s: %s during the handover", ",".join(symbols), type(exc).__name__, exc)
            self._mark_all(symbols, EventKind.DISCONNECT, reason=f"{type(exc).__name__}: {exc}")
        finally:
            if outgoing is not None:
                outgoing.old_gone()
            await _close_quietly(socket)

    def _hand_over(self, symbols: list[str]) -> Handover[_RawFrame]:
        """Open a successor connection for ``symbols``; this one stays the feed until it has caught up."""
        self.report.handovers += 1
        handover: Handover[_RawFrame] = Handover(self._on_frame)
        self._spawn(self._connection_loop(symbols, handover=handover))
        return handover

    def _capture(self, text: str | bytes) -> _RawFrame:
        payload = text if isinstance(text, bytes) else text.encode()
        return _RawFrame(payload, self.clock.time_ns())

    def _on_frame(self, frame: _RawFrame) -> None:
        assert self._ingestor is not None
        self.report.frames += 1
        result = self._ingestor.ingest(JournalRecord(frame.recv_ns, Channel.STREAM, "", frame.payload))
        self.report.lags_ns.append(self.clock.time_ns() - frame.recv_ns)
        self._handle(result)

    def _mark_all(self, symbols: list[str], kind: EventKind, **detail: Any) -> None:
        if self._ingestor is None:
            return
        now = self.clock.time_ns()
        for symbol in symbols:
            self._ingestor.marker(kind, symbol, now, **detail)

    # --- books, snapshots, entries ---------------------------------------------------------

    def _handle(self, result: Ingested) -> None:
        if result.rows:
            names = self.config.feature_names
            self._entries.put_nowait([to_entry(row, names) for row in result.rows])
        outcome = result.outcome
        if isinstance(outcome, Gap):
            assert self._ingestor is not None and result.event is not None
            self._symbol_logs[result.symbol].warning("gap: expected U=%d, got %d", outcome.expected, outcome.got)
            self._ingestor.marker(EventKind.GAP, result.symbol, result.event.recv_ns,
                                  expected=outcome.expected, got=outcome.got)
        elif isinstance(outcome, StaleSnapshot):
            self._symbol_logs[result.symbol].warning("snapshot %d older than buffered diffs", outcome.last_update_id)
        if result.needs_snapshot:
            self._request_snapshot(result.symbol, "gap" if isinstance(outcome, Gap) else "sync")

    def _request_snapshot(self, symbol: str, reason: str) -> None:
        if symbol in self._in_flight or self._stop.is_set():
            return
        self._in_flight.add(symbol)
        assert self._ingestor is not None
        self._ingestor.marker(EventKind.RESYNC, symbol, self.clock.time_ns(), reason=reason)
        self._spawn(self._fetch_snapshot(symbol))

    async def _fetch_snapshot(self, symbol: str) -> None:
        assert self._client is not None and self._ingestor is not None
        limit = self.config.snapshot_limit
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retryable),
                wait=wait_exponential(multiplier=self.config.reconnect_delay_s, max=self.config.backoff_max_s),
                stop=stop_after_attempt(self.config.max_retries + 1) if self.config.max_retries is not None
                else (lambda _state: self._stop.is_set()),
                reraise=True,
            ):
                with attempt:
                    await self._budget.acquire(depth_weight(limit))
                    try:
                        body = await asyncio.wait_for(self._client.get_order_book(symbol=symbol, limit=limit),
                                                      self.config.rest_timeout_s)
                    except BinanceAPIException as exc:
                        if exc.status_code in (429, 418):
                            retry_after = float(exc.response.headers.get("Retry-After", 60))
                            log.error("REST %d: backing off %.0fs as asked", exc.status_code, retry_after)
                            self._budget.ban(retry_after)
                        raise
        except Exception as exc:  # noqa: BLE001 -- logged; the book stays invalid, never wrong
            self._in_flight.discard(symbol)
            self._symbol_logs[symbol].error("snapshot failed: %r", exc)
            return
        self._in_flight.discard(symbol)
        self.report.snapshots += 1
        payload = json.dumps(body, separators=(",", ":")).encode()
        self._handle(self._ingestor.ingest(JournalRecord(self.clock.time_ns(), Channel.SNAPSHOT, symbol, payload)))

    async def _checkpoint_all(self) -> None:
        for symbol in self.config.symbols:
            self._request_snapshot(symbol, "checkpoint")

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

    async def _rotate_journal(self) -> None:
        if self._journal is None or self._ingestor is None:
            return
        old = self._journal
        self._journal = self._open_journal()
        self._ingestor.journal = _GuardedJournal(self._journal)
        self.report.segments += await asyncio.to_thread(self.roller.finish, old)

    async def _log_health(self) -> None:
        self._log_health_now()

    def _log_health_now(self) -> None:
        if self._ingestor is None:
            return
        for symbol, health in self._ingestor.health.items():
            line = health.line(symbol, self._ingestor.valid(symbol))
            self._symbol_logs[symbol].info(line)
            log.info(line)
