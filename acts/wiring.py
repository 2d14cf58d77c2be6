"""Builders used by the CLI (the composition root): sinks, logging, the recorder."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
import sys
import threading
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from acts.core.clock import Clock
from acts.core.markets import Market
from acts.core.secrets import Scrubber, ScrubbingFormatter, redact_uri
from acts.sinks import MongoSink, SpoolingSink, SqliteSink, entries_collection, entries_file
from acts.storage.layout import DataLayout

__all__ = ["build_sink", "setup_logging", "asset_of", "NonBlockingConsole", "LOG_MAX_BYTES", "LOG_KEEP", "Progress",
           "ProgressMode", "PROGRESS_EVERY_S"]

#: A log file is rotated past this size (``acts record --log-max-mb``) ...
LOG_MAX_BYTES = 50 * 2**20
#: ... and this many rotated files are kept (``--log-keep``): at most (1 + keep) x size per log file.
LOG_KEEP = 5


def build_sink(data_dir: Path, mongo_uri: str | None, market: Market = Market.SPOT) -> SqliteSink | SpoolingSink:
    """MongoDB behind an on-disk spool when a URI is given, else the embedded store under ``data_dir``;
    each market's entries in its own store (``acts.sinks.markets``)."""
    layout = DataLayout(data_dir)
    if mongo_uri:
        collection = entries_collection(market)
        logging.getLogger("acts").info("minute entries -> MongoDB at %s, collection %s", redact_uri(mongo_uri),
                                       collection)
        return SpoolingSink(MongoSink(mongo_uri, collection=collection),
                            SqliteSink(entries_file(layout.spool_db, market)))
    return SqliteSink(entries_file(layout.entries_db, market))


def asset_of(symbol: str) -> str:
    """``BTCUSDT`` -> ``BTC``: the seed's per-asset log names (``data-BTC.log``)."""
    return symbol.removesuffix("USDT") or symbol


class NonBlockingConsole(logging.Handler):
    """Console lines through a bounded queue and a writer thread, so that a stderr nobody reads (a
    full pipe under a supervisor, a stopped terminal) can never stall the event loop and with it the
    recording. Past ``capacity`` waiting lines, new ones are dropped and counted; the log files under
    ``DATA/logs`` still get every line."""

    def __init__(self, stream: TextIO, capacity: int = 10_000) -> None:
        super().__init__()
        self.stream = stream
        self.dropped = 0
        self._lines: queue.Queue[str | None] = queue.Queue(capacity)
        self._writer = threading.Thread(target=self._write_lines, name="acts-console", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.put_nowait(self.format(record) + "\n")
        except queue.Full:
            self.dropped += 1
        except Exception:  # noqa: BLE001 -- logging's contract: report, never raise
            self.handleError(record)

    def _write_lines(self) -> None:
        while (line := self._lines.get()) is not None:
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr: nothing to do
                self.stream.write(line)
                self.stream.flush()

    def close(self) -> None:
        """Let waiting lines out for up to a second (a blocked stderr must not hang the exit)."""
        with contextlib.suppress(queue.Full):  # a full queue that stays full: the writer is stuck
            self._lines.put(None, timeout=1.0)
        self._writer.join(timeout=1.0)
        super().close()


def _log_file(path: Path, max_bytes: int, keep: int) -> logging.Handler:
    """A log file that rotates by size (``acts.log`` -> ``acts.log.1`` ...), keeping ``keep`` old ones."""
    return logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=keep, encoding="utf-8")


def setup_logging(data_dir: Path, symbols: list[str], verbose: bool = False, max_bytes: int = LOG_MAX_BYTES,
                  keep: int = LOG_KEEP, scrub: Scrubber | None = None) -> None:
    """``DATA/logs/acts.log`` for the process, ``DATA/logs/data-{asset}.log`` per symbol, warnings to
    stderr (never blocking). Libraries' warnings (python-binance's) go to the same two places. Each
    file rotates at ``max_bytes`` and keeps ``keep`` rotated files; every line, on every handler,
    goes through ``scrub`` (the secrets of the Mongo URI), tracebacks included."""
    if max_bytes < 1 or keep < 1:
        raise ValueError(f"log rotation needs a size and a count of at least 1, got {max_bytes} and {keep}")
    logs = DataLayout(data_dir).logs
    logs.mkdir(parents=True, exist_ok=True)
    fmt = ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", scrub or Scrubber())
    root = logging.getLogger("acts")
    root.setLevel(logging.INFO)
    root.propagate = False
    everything = logging.getLogger()
    for logger in (root, everything):
        for handler in list(logger.handlers):
            if logger is root or getattr(handler, "acts_owned", False):
                logger.removeHandler(handler)
                handler.close()
    process = _log_file(logs / "acts.log", max_bytes, keep)
    process.setFormatter(fmt)
    console = NonBlockingConsole(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(fmt)
    root.addHandler(process)
    root.addHandler(console)
    for handler in (process, console):
        setattr(handler, "acts_owned", True)  # noqa: B010 -- a marker for the next setup_logging
        everything.addHandler(handler)
    for symbol in symbols:
        per_symbol = logging.getLogger(f"acts.symbol.{symbol}")
        for handler in list(per_symbol.handlers):
            per_symbol.removeHandler(handler)
            handler.close()
        handler = _log_file(logs / f"data-{asset_of(symbol)}.log", max_bytes, keep)
        handler.setFormatter(fmt)
        per_symbol.addHandler(handler)


# --- progress ----------------------------------------------------------------------------------

#: Non-terminal progress: at most one line per this many seconds of the injected clock.
PROGRESS_EVERY_S = 5.0


class ProgressMode(Enum):
    """How a long command shows its progress on stderr."""

    BAR = "bar"  #: stderr is a terminal: a rich bar (amount, rate, ETA)
    LINES = "lines"  #: stderr is a file or a pipe: a plain line now and then, and one at the end
    OFF = "off"  #: ``--quiet``


class Progress:
    """Progress of one long command (``import``, ``replay``, ...), on stderr only, so stdout keeps
    just the command's output. ``update(done, total)`` is cheap: call it as often as you like.

    # Strategy: ``LINES`` decides on the injected ``clock`` whether a line is due, so tests drive the
    # "at most one line every few seconds" rule with a ``FakeClock``; ``BAR`` hands the drawing to
    # rich, which refreshes the terminal on its own thread.
    """

    def __init__(self, what: str, unit: str, total: float | None, mode: ProgressMode, clock: Clock,
                 stream: TextIO | None = None, every_s: float = PROGRESS_EVERY_S) -> None:
        self.what, self.unit, self.total, self.mode = what, unit, total, mode
        self.done = 0.0
        self.clock = clock
        self.every_s = every_s
        self._stream = stream
        self._start = clock.monotonic()
        self._last_line = self._start
        self._bar: Any = None
        self._task: Any = None
        if mode is ProgressMode.BAR:
            self._bar, self._task = _rich_bar(what, unit, total, stream)
            self._bar.start()

    @classmethod
    def choose(cls, what: str, unit: str, total: float | None, quiet: bool, clock: Clock,
               stream: TextIO | None = None) -> Progress:
        """A bar when stderr (``stream``) is a terminal, plain lines when not, nothing when ``quiet``."""
        out = stream if stream is not None else sys.stderr
        mode = ProgressMode.OFF if quiet else ProgressMode.BAR if out.isatty() else ProgressMode.LINES
        return cls(what, unit, total, mode, clock, stream)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(finished=exc[0] is None)

    def update(self, done: float, total: float | None = None) -> None:
        """``done`` units so far (of ``total``, if it is now known)."""
        self.done = done
        if total is not None:
            self.total = total
        if self.mode is ProgressMode.BAR:
            self._bar.update(self._task, completed=done, total=self.total)
        elif self.mode is ProgressMode.LINES:
            now = self.clock.monotonic()
            if now - self._last_line >= self.every_s:
                self._last_line = now
                self._print(self.line(now))

    def advance(self, amount: float = 1) -> None:
        self.update(self.done + amount)

    def close(self, finished: bool = True) -> None:
        """Stop the bar; in ``LINES`` mode, say where it ended (once)."""
        if self.mode is ProgressMode.BAR:
            self._bar.stop()
        elif self.mode is ProgressMode.LINES and finished:
            self._print(self.line(self.clock.monotonic(), final=True))
        self.mode = ProgressMode.OFF

    def line(self, now: float, final: bool = False) -> str:
        """``replay: 120/720 min (16.7%), 40 min/s, ETA 0:00:15``; ``import: 3.0 MiB, 1.2 MiB/s``."""
        elapsed = now - self._start
        if final:
            return f"{self.what}: done, {_with_unit(self.done, self.unit)} in {elapsed:.1f} s"
        if self.total:
            amount = (f"{_amount(self.done, self.unit)}/{_with_unit(self.total, self.unit)} "
                      f"({min(self.done / self.total, 1):.1%})")
        else:
            amount = _with_unit(self.done, self.unit)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.what}: {amount}, {_with_unit(rate, self.unit)}/s"
        if self.total and rate > 0:
            left = int(max(self.total - self.done, 0) / rate)
            text += f", ETA {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"
        return text

    def _print(self, text: str) -> None:
        out = self._stream if self._stream is not None else sys.stderr
        out.write(text + "\n")
        out.flush()


def _with_unit(value: float, unit: str) -> str:
    return _amount(value, unit) if unit == "bytes" else f"{_amount(value, unit)} {unit}"


def _amount(value: float, unit: str) -> str:
    if unit == "bytes":
        for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if value >= scale:
                return f"{value / scale:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.1f}"


class _RateColumn(ProgressColumn):
    """rich column: ``40.0 min/s`` (rich's own rate columns speak bytes or iterations)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{_with_unit(speed, self.unit)}/s")


def _rich_bar(what: str, unit: str, total: float | None, stream: TextIO | None) -> tuple[RichProgress, TaskID]:
    console = Console(file=stream, stderr=stream is None)
    amount: list[ProgressColumn] = [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [
        MofNCompleteColumn(), TextColumn(unit), _RateColumn(unit)]
    bar = RichProgress(TextColumn("{task.description}"), BarColumn(), *amount, TimeRemainingColumn(),
                       console=console, redirect_stdout=False, redirect_stderr=False, transient=False)
    return bar, bar.add_task(what, total=total)
