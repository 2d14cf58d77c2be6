"""What a recording is told: symbols, where to write, and every interval the session and shell keep."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acts.core.markets import Market
from acts.core.symbols import StreamKind

__all__ = ["RecorderConfig"]


@dataclass(frozen=True)
class RecorderConfig:
    symbols: tuple[str, ...]
    data_dir: Path
    feature_names: tuple[str, ...]
    #: ``"spot"`` or ``"usdm"`` (USD-M futures: ``/fapi`` REST, futures streams and sequencing rules).
    market: Market = Market.SPOT
    rest_url: str | None = None  # None: python-binance's default (the real Binance)
    stream_url: str | None = None
    #: Streams subscribed per symbol (``acts record --streams``; the CLI's default adds trades).
    streams: tuple[StreamKind, ...] = (StreamKind.DEPTH,)
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
    #: The journal is fsynced at least this often, frames or not (a timer on the injected clock).
    journal_flush_s: float = 1.0
    weight_per_minute: int = 3000  # half of Binance's 6000: room for other clients
    health_every_s: float = 60.0
    #: The most one minute-entry write may wait for a remote store (MongoDB) before the entries stay
    #: spooled; it also bounds how long a stop waits for a write in progress.
    sink_timeout_s: float = 2.0
    #: Folding (books, features, entries) runs behind capture; lagging by more than this is logged.
    fold_lag_warn_s: float = 1.0
    #: Journaled records waiting for the fold past which the fold skips them and resyncs every book
    #: (a RESTART marker, then snapshots): the journal keeps them all, live rows go invalid meanwhile.
    fold_backlog_max: int = 50_000
    duration_s: float | None = None  # stop by itself (demos, tests)
