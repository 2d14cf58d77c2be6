"""Builders used by the CLI (the composition root): sinks, logging, the recorder."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
import sys
import threading
from pathlib import Path
from typing import TextIO

from acts.core.secrets import Scrubber, ScrubbingFormatter, redact_uri
from acts.sinks import MongoSink, SpoolingSink, SqliteSink
from acts.storage.layout import DataLayout

__all__ = ["build_sink", "setup_logging", "asset_of", "NonBlockingConsole", "LOG_MAX_BYTES", "LOG_KEEP"]

#: A log file is rotated past this size (``acts record --log-max-mb``) ...
LOG_MAX_BYTES = 50 * 2**20
#: ... and this many rotated files are kept (``--log-keep``): at most (1 + keep) x size per log file.
LOG_KEEP = 5


def build_sink(data_dir: Path, mongo_uri: str | None) -> SqliteSink | SpoolingSink:
    """MongoDB behind an on-disk spool when a URI is given, else the embedded store under ``data_dir``."""
    if mongo_uri:
        logging.getLogger("acts").info("minute entries -> MongoDB at %s", redact_uri(mongo_uri))
        return SpoolingSink(MongoSink(mongo_uri), SqliteSink(DataLayout(data_dir).spool_db))
    return SqliteSink(DataLayout(data_dir).entries_db)


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
