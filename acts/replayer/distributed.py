"""Scale-out replay on Dask: one task per (symbol, UTC day).

Strategy: replay from any point needs only the nearest snapshot before it (the recorder writes
one at least hourly), so a (symbol, day) partition is an ordinary ``replay_symbol`` over
``[day, day + 1)`` that reads from its own snapshot onwards -- the book is carried across the
day boundary by the recording itself, not by shipping state between tasks. Any sampling interval
works: an interval that straddles midnight starts before it, so it belongs to the earlier part,
whose replay reads on past its end until the diff that closes it. Rows are merged by
``(time, symbol)`` exactly as the single-process path does, so outputs are identical.
Tasks receive feature *names* and resolve them on the worker (user features must be importable
there).
"""

from __future__ import annotations

import heapq
import importlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acts.core.errors import InputError, ServiceError
from acts.core.markets import Market
from acts.core.timeunits import DAY_MS, MINUTE_MS
from acts.features.builtin import default_registry
from acts.features.pipeline import MinuteRow
from acts.replayer.replay import ReplayReport, replay_symbol
from acts.storage.store import SegmentStore

__all__ = ["partitions", "replay_partition", "replay_distributed", "check_options"]



def partitions(store: SegmentStore, symbols: Sequence[str], start_ms: int,
               end_ms: int | None) -> list[tuple[str, int, int | None]]:
    """``(symbol, part_start, part_end)`` per symbol and UTC day of data in ``[start_ms, end_ms)``."""
    parts: list[tuple[str, int, int | None]] = []
    for symbol in sorted(symbols):
        days = store.days(symbol)
        if not days:
            continue
        last_day_ms = int(datetime.fromisoformat(days[-1]).replace(tzinfo=UTC).timestamp() * 1000)
        stop = end_ms if end_ms is not None else last_day_ms + DAY_MS
        day = start_ms - start_ms % DAY_MS
        while day < stop:
            part_start = max(start_ms, day)
            part_end = min(stop, day + DAY_MS)
            open_end = end_ms is None and part_end == stop
            if part_start < part_end:
                parts.append((symbol, part_start, None if open_end else part_end))
            day += DAY_MS
    return parts


def replay_partition(data_dir: str, symbol: str, feature_names: Sequence[str], start_ms: int,
                     end_ms: int | None, interval_ms: int = MINUTE_MS,
                     market: str = Market.SPOT.value) -> tuple[list[MinuteRow], ReplayReport]:
    """One task: runs on a worker, so it builds its own store and features. ``interval_ms`` as
    ``replay_symbol`` takes it (``EVERY_EVENT``: a row after every diff)."""
    from acts.core.errors import NoDataError

    features = default_registry().resolve(feature_names)
    report = ReplayReport()
    try:
        store = SegmentStore.open(data_dir, Market(market))
        rows = list(replay_symbol(store, symbol, features, start_ms, end_ms, report, interval_ms=interval_ms))
    except NoDataError:
        rows = []  # a day without data inside the range: nothing to emit
    return rows, report


def check_options(workers: int | None, scheduler: str | None) -> None:
    """``InputError`` unless Dask is installed, ``workers`` is at least 1 and ``scheduler`` is an address.

    Checked before any work: a missing extra, ``--workers 0`` (once silently 2) or ``-1`` (once a
    hang) and ``--scheduler bogus`` (once a traceback) are the user's to fix.
    """
    try:
        importlib.import_module("distributed")
    except ImportError:
        raise InputError("--workers/--scheduler need Dask, which is not installed: pip install 'acts[dask]', "
                         "or replay without them") from None
    from distributed.comm.addressing import get_address_host_port, parse_address

    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: use 1 or more local worker processes")
    if scheduler is not None:
        try:
            parse_address(scheduler, strict=True)
            get_address_host_port(scheduler)
        except ValueError as exc:
            raise InputError(f"--scheduler {scheduler!r} is not a scheduler address ({exc}); give one like "
                             "tcp://10.0.0.5:8786") from None


def replay_distributed(data_dir: Path | str, symbols: Sequence[str], feature_names: Sequence[str], start_ms: int,
                       end_ms: int | None, workers: int | None = None, scheduler: str | None = None,
                       report: ReplayReport | None = None, interval_ms: int = MINUTE_MS,
                       processes: bool = True, market: Market = Market.SPOT) -> Iterator[MinuteRow]:
    """Replay on a local cluster of ``workers`` processes (threads if not ``processes``) or an existing
    scheduler (``tcp://host:port``), sampled every ``interval_ms`` like ``replay``.

    The cluster starts (and bad options fail) before this returns. Rows are then streamed a UTC day at
    a time: the client holds one day's rows of every symbol, while the workers go on with later days."""
    check_options(workers, scheduler)
    from distributed import Client, LocalCluster

    report = report if report is not None else ReplayReport()
    store = SegmentStore.open(data_dir, market)
    parts = partitions(store, symbols, start_ms, end_ms)
    location = str(data_dir) if "://" in str(data_dir) else str(Path(data_dir).resolve())
    cluster = None
    if scheduler is None:
        # Worker processes talk over loopback TCP; worker threads over Dask's in-process transport.
        where = {"host": "127.0.0.1"} if processes else {}
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=processes,
                               dashboard_address=None, **where)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler)
        except OSError as exc:  # nobody answers there (dask gives up after its connect timeout)
            raise ServiceError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; check that it runs and "
                               "that the address is right") from None
    try:
        by_day: dict[int, list[Any]] = {}
        for symbol, s, e in parts:  # symbol by symbol: each day's list is in symbol order
            future = client.submit(replay_partition, location, symbol, list(feature_names), s, e, interval_ms,
                                   market.value, pure=False)
            by_day.setdefault(s - s % DAY_MS, []).append(future)
    except BaseException:
        _close(client, cluster)
        raise
    return _day_by_day(client, cluster, [by_day[day] for day in sorted(by_day)], report)


def _day_by_day(client: Any, cluster: Any, days: list[list[Any]], report: ReplayReport) -> Iterator[MinuteRow]:
    """Each day's parts gathered, counted in ``report`` and merged; then the cluster is closed.

    A part's rows lie in its day and are in time order, so days follow each other and, inside one,
    a merge by ``(time, symbol)`` gives the single-process order (one part per symbol and day, so rows
    sharing a millisecond in event mode keep their order)."""
    try:
        for index, futures in enumerate(days):
            results = client.gather(futures)
            days[index] = []  # the futures' results may be dropped by the workers now
            for _, part_report in results:
                report.events += part_report.events
                report.gaps += part_report.gaps
                report.stale_snapshots += part_report.stale_snapshots
                report.crossed += part_report.crossed
                # A segment read by two partitions (a day's replay starts one file early) is reported once.
                report.problems += [p for p in part_report.problems if p not in report.problems]
            yield from heapq.merge(*(rows for rows, _ in results), key=lambda row: (row.minute_ms, row.symbol))
    finally:
        _close(client, cluster)


def _close(client: Any, cluster: Any) -> None:
    client.close()
    if cluster is not None:
        cluster.close()
