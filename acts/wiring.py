"""Builders used by the CLI (the composition root): sinks, logging, the recorder."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from acts.secrets import redact_uri
from features.sinks import MongoSink, SpoolingSink, SqliteSink

__all__ = ["build_sink", "setup_logging", "asset_of"]


def build_sink(data_dir: Path, mongo_uri: str | None) -> SqliteSink | SpoolingSink:
    """MongoDB behind an on-disk spool when a URI is given, else the embedded store under ``data_dir``."""
    if mongo_uri:
        logging.getLogger("acts").info("minute entries -> MongoDB at %s", redact_uri(mongo_uri))
        return SpoolingSink(MongoSink(mongo_uri), SqliteSink(data_dir / "spool" / "entries-spool.sqlite"))
    return SqliteSink(data_dir / "entries.sqlite")


def asset_of(symbol: str) -> str:
    """``BTCUSDT`` -> ``BTC``: the seed's per-asset log names (``data-BTC.log``)."""
    return symbol.removesuffix("USDT") or symbol


def setup_logging(data_dir: Path, symbols: list[str], verbose: bool = False) -> None:
    """``DATA/logs/acts.log`` for the process, ``DATA/logs/data-{asset}.log`` per symbol, warnings to stderr."""
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger("acts")
    root.setLevel(logging.INFO)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    process = logging.FileHandler(logs / "acts.log")
    process.setFormatter(fmt)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(fmt)
    root.addHandler(process)
    root.addHandler(console)
    for symbol in symbols:
        per_symbol = logging.getLogger(f"acts.symbol.{symbol}")
        for handler in list(per_symbol.handlers):
            per_symbol.removeHandler(handler)
            handler.close()
        handler = logging.FileHandler(logs / f"data-{asset_of(symbol)}.log")
        handler.setFormatter(fmt)
        per_symbol.addHandler(handler)
