"""Scale-out replay on Dask: one task per part of the request, a part being one symbol over a time range.

Strategy: replay from any point needs only the nearest snapshot before it (the recorder writes
one at least hourly), so a part is an ordinary ``replay_symbol`` over ``[part_start, part_end)``
that reads from its own snapshot onwards -- the book is carried across a part boundary by the
recording itself, not by shipping state between tasks. Any sampling interval works: an interval
that straddles a boundary starts before it, so it belongs to the earlier part, whose replay reads
on past its end until the diff that closes it.

Parts are sized to the work (``sized_partitions``): whole symbols when there are at least as many
symbols as workers (a boundary costs a re-read from the snapshot before it), (symbol, UTC day)
parts when there are fewer, or when whole symbols would send too many rows at once, and hour
ranges inside a day only when even the days are fewer than the workers. Rows are merged by
``(time, symbol)`` exactly as the single-process path does, so outputs are identical.

Tasks receive feature *names* and resolve them on the worker (user features must be importable
there); ``--engine``, ``--strict`` and ``--on-feature-error`` act there as in one process.
"""

from __future__ import annotations

import heapq
import importlib
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acts.core.errors import InputError, ServiceError
from acts.core.markets import Market
from acts.core.timeunits import DAY_MS, HOUR_MS, MINUTE_MS
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, FeatureFailure, MinuteRow, OnFeatureError, raise_feature_error
from acts.replayer.replay import Engine, ReplayReport, replay_symbol
from acts.storage.store import SegmentStore

__all__ = ["Part", "partitions", "sized_partitions", "replay_partition", "replay_distributed", "check_options",
           "MAX_HELD_ROWS"]

#: ``(symbol, part_start_ms, part_end_ms)``; ``None`` as the end: to the end of the data.
Part = tuple[str, int, int | None]

#: Rows the client may hold at once from whole-symbol parts (all of them start together, so the merge
#: holds them all): a request with more (at its interval, over every symbol) is cut into days, so that
#: the client holds a day of rows per symbol, not the whole request.
MAX_HELD_ROWS = 1_000_000


def partitions(store: SegmentStore, symbols: Sequence[str], start_ms: int, end_ms: int | None) -> list[Part]:
    """``(symbol, part_start, part_end)`` per symbol and UTC day of data in ``[start_ms, end_ms)``."""
    parts: list[Part] = []
    for symbol in sorted(symbols):
        stop = _stop(store, symbol, end_ms)
        if stop is None:
            continue
        day = start_ms - start_ms % DAY_MS
        while day < stop:
            part_start = max(start_ms, day)
            part_end = min(stop, day + DAY_MS)
            open_end = end_ms is None and part_end == stop
            if part_start < part_end:
                parts.append((symbol, part_start, None if open_end else part_end))
            day += DAY_MS
    return parts


def sized_partitions(store: SegmentStore, symbols: Sequence[str], start_ms: int, end_ms: int | None,
                     workers: int, interval_ms: int = MINUTE_MS) -> list[Part]:
    """The parts to run on ``workers`` workers, sorted by ``(start, symbol)``.

    Whole symbols when there are at least ``workers`` of them and their rows together are at most
    ``MAX_HELD_ROWS`` (every-event rows are not known in advance: days); else ``partitions``' (symbol,
    day) parts, each cut into hour ranges when the days are still fewer than ``workers``."""
    spans = [(symbol, stop) for symbol in sorted(symbols) if (stop := _stop(store, symbol, end_ms)) is not None]
    held = sum(stop - start_ms for _, stop in spans) // interval_ms if interval_ms != EVERY_EVENT else None
    small = held is not None and held <= MAX_HELD_ROWS
    if len(spans) >= workers and small:
        parts = [(symbol, start_ms, end_ms) for symbol, _ in spans]
    else:
        parts = partitions(store, symbols, start_ms, end_ms)
        if 0 < len(parts) < workers:
            pieces = -(-workers // len(parts))  # ceil: every worker gets a part
            parts = [cut for part in parts for cut in _hour_ranges(part, pieces, _stop(store, part[0], end_ms))]
    return sorted(parts, key=lambda part: (part[1], part[0]))


def _stop(store: SegmentStore, symbol: str, end_ms: int | None) -> int | None:
    """``end_ms``, or (open end) the end of the last UTC day with data; None if the symbol has none."""
    days = store.days(symbol)
    if not days:
        return None
    if end_ms is not None:
        return end_ms
    return int(datetime.fromisoformat(days[-1]).replace(tzinfo=UTC).timestamp() * 1000) + DAY_MS


def _hour_ranges(part: Part, pieces: int, stop: int | None) -> list[Part]:
    """``part`` cut into up to ``pieces`` ranges at whole UTC hours (an open end stays open)."""
    symbol, start, end = part
    last = end if end is not None else stop
    assert last is not None  # a part exists only for a symbol with data
    cuts = sorted({(start + (last - start) * i // pieces) // HOUR_MS * HOUR_MS for i in range(1, pieces)})
    cuts = [cut for cut in cuts if start < cut < last]
    return [(symbol, a, b) for a, b in zip([start, *cuts], [*cuts, end], strict=True)]


def replay_partition(data_dir: str, symbol: str, feature_names: Sequence[str], start_ms: int,
                     end_ms: int | None, interval_ms: int = MINUTE_MS, engine: str = Engine.AUTO,
                     strict: bool = False, null_on_feature_error: bool = False, market: str = Market.SPOT.value,
                     ) -> tuple[list[MinuteRow], ReplayReport, list[FeatureFailure]]:
    """One task: runs on a worker, so it builds its own store and features. ``interval_ms``,
    ``engine`` and ``strict`` as ``replay_symbol`` takes them (``EVERY_EVENT``: a row after every
    diff); ``market`` by value (it crosses the wire). A failing feature stops the task unless
    ``null_on_feature_error``: then its value is null and the first failure of each feature is
    returned, for the caller's policy to hear."""
    from acts.core.errors import NoDataError

    features = default_registry().resolve(feature_names)
    report = ReplayReport()
    failures: dict[str, FeatureFailure] = {}
    policy: OnFeatureError = raise_feature_error
    if null_on_feature_error:
        def policy(failure: FeatureFailure) -> None:
            failures.setdefault(failure.feature, failure)
    try:
        rows = list(replay_symbol(SegmentStore.open(data_dir, Market(market)), symbol, features, start_ms, end_ms,
                                  report, strict, engine, interval_ms, policy))
    except NoDataError:
        rows = []  # a part without data inside the range: nothing to emit
    return rows, report, list(failures.values())


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
        raise InputError(f"--workers {workers}: use 1 or more local workers")
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
                       processes: bool = False, strict: bool = False, engine: Engine | str = Engine.AUTO,
                       on_feature_error: OnFeatureError = raise_feature_error,
                       market: Market = Market.SPOT) -> Iterator[MinuteRow]:
    """Replay on a local cluster of ``workers`` threads of this process (processes if ``processes``) or
    an existing scheduler (``tcp://host:port``), with ``replay``'s arguments and rows (of ``market``).

    Threads by default, as measured on the bench's Dask row: a worker process pays seconds of CPU
    to start (imports, numba's cached kernels loaded) against about a second of replay for 11 M
    level updates, while the compiled lane and the decode release the GIL. Processes are for long
    requests, many cores, or Python features that hold the GIL.

    ``on_feature_error``: ``raise_feature_error`` stops the replay (the worker's ``FeatureError``);
    any other policy makes the value null, and hears the first failure of each feature and symbol
    of each part. The cluster starts (and bad options fail) before this returns; rows are then
    streamed in time order, a part's rows gathered when the merge reaches its start."""
    check_options(workers, scheduler)
    chosen = Engine.parse(engine)
    from distributed import Client, LocalCluster

    report = report if report is not None else ReplayReport()
    store = SegmentStore.open(data_dir, market)
    location = str(data_dir) if "://" in str(data_dir) else str(Path(data_dir).resolve())
    cluster = None
    if scheduler is None:
        # Worker processes talk over loopback TCP; worker threads over Dask's in-process transport.
        where = {"host": "127.0.0.1"} if processes else {}
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=processes,
                               dashboard_address=None, silence_logs=logging.ERROR, **where)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler)
        except OSError as exc:  # nobody answers there (dask gives up after its connect timeout)
            raise ServiceError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; check that it runs and "
                               "that the address is right") from None
    null = on_feature_error is not raise_feature_error
    try:
        count = workers or max(len(client.scheduler_info().get("workers", {})), 1)
        parts = sized_partitions(store, symbols, start_ms, end_ms, count, interval_ms)
        # The earliest parts first: the merge waits for them before any other.
        futures = [client.submit(replay_partition, location, symbol, list(feature_names), s, e, interval_ms,
                                 str(chosen), strict, null, market.value, pure=False, priority=len(parts) - index)
                   for index, (symbol, s, e) in enumerate(parts)]
    except BaseException:
        _close(client, cluster)
        raise
    return _merged(client, cluster, parts, futures, report, on_feature_error)


def _merged(client: Any, cluster: Any, parts: list[Part], futures: list[Any], report: ReplayReport,
            on_feature_error: OnFeatureError) -> Iterator[MinuteRow]:
    """The parts' rows merged by ``(time, symbol)``, each part gathered (and counted in ``report``)
    when the merge reaches its start; then the cluster is closed.

    A part's rows are in time order and start at its start, and the parts of one symbol do not
    overlap, so rows sharing a time and symbol (event mode) come from one part, in their order:
    the merge gives the single-process order. Parts are sorted by start."""
    heap: list[tuple[int, str, int, MinuteRow, Iterator[MinuteRow]]] = []
    index = 0
    try:
        while True:
            while index < len(parts) and (not heap or parts[index][1] <= heap[0][0]):
                rows, part_report, failures = futures[index].result()
                futures[index] = None  # the worker may drop the result now
                _count(report, part_report)
                for failure in failures:
                    on_feature_error(failure)
                stream = iter(rows)
                if (first := next(stream, None)) is not None:
                    heapq.heappush(heap, (first.minute_ms, first.symbol, index, first, stream))
                index += 1
            if not heap:
                return
            _, _, k, row, stream = heap[0]
            yield row
            if (following := next(stream, None)) is not None:
                heapq.heapreplace(heap, (following.minute_ms, following.symbol, k, following, stream))
            else:
                heapq.heappop(heap)
    finally:
        _close(client, cluster)


def _count(report: ReplayReport, part: ReplayReport) -> None:
    report.events += part.events
    report.gaps += part.gaps
    report.stale_snapshots += part.stale_snapshots
    report.crossed += part.crossed
    # A segment read by two parts (a part's replay starts one file early) is reported once.
    report.problems += [p for p in part.problems if p not in report.problems]


def _close(client: Any, cluster: Any) -> None:
    client.close()
    if cluster is not None:
        cluster.close()
