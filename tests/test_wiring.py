"""Console logging never blocks the recorder, even when nobody reads stderr."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

from acts.wiring import NonBlockingConsole


class StuckStream(io.StringIO):
    """A stderr whose reader went away: every write waits until ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(timeout=30)
        return super().write(text)


def test_a_stuck_stderr_neither_blocks_logging_nor_loses_the_order() -> None:
    stream = StuckStream()
    console = NonBlockingConsole(stream, capacity=50)
    console.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("acts.test.console")
    logger.propagate = False
    logger.addHandler(console)
    try:
        emitter = threading.Thread(target=lambda: [logger.warning("line %d", i) for i in range(500)])
        emitter.start()
        emitter.join(timeout=10)
        assert not emitter.is_alive(), "logging blocked on a stderr nobody reads"
        assert console.dropped >= 500 - 50 - 1  # the queue, plus the one line the writer holds
        stream.release.set()
        console.close()
        numbers = [int(line.removeprefix("line ")) for line in stream.getvalue().splitlines()]
        # Which lines get dropped depends on when the writer thread first runs; what holds is that
        # every line not counted as dropped comes out, once, in order.
        assert numbers == sorted(set(numbers)) and len(numbers) == 500 - console.dropped
        assert not console._writer.is_alive(), "close() left the writer thread running"
    finally:
        stream.release.set()
        logger.removeHandler(console)


def test_log_files_rotate_by_size_and_keep_n(tmp_path: Path) -> None:
    from acts.wiring import setup_logging

    setup_logging(tmp_path, ["BTCUSDT"], max_bytes=2_000, keep=3)
    try:
        for i in range(500):
            logging.getLogger("acts.test.rotation").warning("line %d %s", i, "x" * 40)
            logging.getLogger("acts.symbol.BTCUSDT").warning("health %d %s", i, "y" * 40)
    finally:
        for name in ("acts", "acts.symbol.BTCUSDT", ""):
            for handler in list(logging.getLogger(name).handlers):
                if name == "acts.symbol.BTCUSDT" or getattr(handler, "acts_owned", False):
                    logging.getLogger(name).removeHandler(handler)
                    handler.close()
    for stem in ("acts.log", "data-BTC.log"):
        files = sorted(p.name for p in (tmp_path / "logs").glob(f"{stem}*"))
        assert files == [stem, f"{stem}.1", f"{stem}.2", f"{stem}.3"]  # the live file and 3 rotated ones
        assert all((tmp_path / "logs" / name).stat().st_size <= 2_000 for name in files)
    assert "line 499" in (tmp_path / "logs" / "acts.log").read_text()
