"""The local exchange and the recorder as real processes (``acts exchange``, ``acts record``), for the
benchmarks and the soak: started one way, stopped one way."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
#: ``python -c CLI ...`` runs the ``acts`` command line from this checkout, installed or not.
CLI = "from acts.cli import app_main; app_main()"

__all__ = ["ROOT", "CLI", "Exchange", "exchange_process", "start_recorder"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """A running ``acts exchange``: its process and the URLs it printed."""

    process: subprocess.Popen[str]
    rest_url: str
    stream_url: str


@contextmanager
def exchange_process(symbols: Sequence[str], faults: Sequence[str] = ()) -> Iterator[Exchange]:
    """``acts exchange`` for ``symbols`` on a free port (each of ``faults`` a ``--fault``); stopped on exit."""
    args = ["exchange", "--symbols", ",".join(symbols), "--port", "0", *[a for f in faults for a in ("--fault", f)]]
    process = subprocess.Popen([sys.executable, "-c", CLI, *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        rest = process.stdout.readline().split()[-1]  # "REST <url>", then "STREAM <url>"
        stream = process.stdout.readline().split()[-1]
        yield Exchange(process, rest, stream)
    finally:
        process.terminate()
        process.wait(timeout=30)


def start_recorder(symbols: Sequence[str], data_dir: Path, exchange: Exchange, *extra: str,
                   stderr: IO[str] | int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """``acts record`` of ``symbols`` into ``data_dir`` from ``exchange``, with ``extra`` options.

    ``stderr``: pass a file to read it afterwards; never a pipe read only at the end (it fills up and
    stalls the recorder)."""
    args = ["record", *symbols, "--data-dir", str(data_dir), "--rest-url", exchange.rest_url,
            "--stream-url", exchange.stream_url, *extra]
    return subprocess.Popen([sys.executable, "-c", CLI, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                            text=True)
