"""The ``acts`` command line: the one place that reads configuration and builds objects.

Options come from flags or, where noted, environment variables (``ACTS_DATA_DIR``,
``MONGODB_URI``); nothing else in ACTS reads the environment. ``main(argv) -> int`` so
tests call it directly. Errors print one line ``acts: error: ...`` and exit 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from acts.core.errors import ActsError, BadDateError, InputError, NoDataError
from acts.core.markets import Market
from acts.core.symbols import parse_streams, parse_symbols, parse_time_ms
from acts.core.timeunits import MINUTE_MS
from acts.features.pipeline import NullAndReportOnce

if TYPE_CHECKING:
    from acts.wiring import Progress

__all__ = ["app", "main", "app_main"]


class FeatureErrorPolicy(str, Enum):
    """What replay does when a feature (user code) raises or returns something that is not a number."""

    STOP = "stop"  #: one line naming feature, symbol and time; exit 2
    NULL = "null"  #: the value is null; the first failure per feature and symbol is shown

app = typer.Typer(
    name="acts",
    help="Record every raw Binance depth event; replay it into books and minute features.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def command(name: str) -> Callable[[Callable[..., int | None]], Callable[..., int | None]]:
    """Register a command whose ``int`` return value becomes the exit code."""

    def register(fn: Callable[..., int | None]) -> Callable[..., int | None]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> int | None:
            code = fn(*args, **kwargs)
            if code:
                raise typer.Exit(code)
            return code

        app.command(name)(run)
        return fn

    return register


DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="ACTS_DATA_DIR", help="Where segments live (env ACTS_DATA_DIR).")
]
DataLocation = Annotated[
    str,
    typer.Option("--data-dir", envvar="ACTS_DATA_DIR",
                 help="A folder, or a URI such as s3://bucket/prefix (env ACTS_DATA_DIR)."),
]
DEFAULT_FEATURES = "mid,best_bid,best_ask,bias10,bias50"
EveryOption = Annotated[str, typer.Option(
    "--every", help="Sampling interval: 100ms, 1s, 5s, 1min (the default: minute rows), 1h, ... or event (a row "
    "after every diff).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or progress lines on stderr.")]
#: ``--market spot|usdm``: whose data, folders and sequencing rules (docs/FUTURES.md).
MarketOption = Annotated[Market, typer.Option(
    "--market", help="spot (Binance spot) or usdm (Binance USD-M futures: the pu chain; docs/FUTURES.md).")]
#: Half of Binance USD-M's 2400 request weight per minute (spot's recorder budget is half of 6000 too).
_HALF_FUTURES_WEIGHT = 1200


def _number(low: float | None = None, high: float | None = None, *, above: bool = False,
            hint: str = "") -> Callable[[float | None], float | None]:
    """An option callback: the value must be finite and in ``[low, high]`` (``(low, high]`` when ``above``).

    Click's own ``min``/``max`` let ``nan`` through (every comparison with it is false), so floats are
    checked here; the error is click's, which ``main`` prints on one line with exit code 2.
    """
    if low is None:
        wanted = f"a number of at most {high:g}"
    elif high is None:
        wanted = f"a number {'above' if above else 'of at least'} {low:g}"
    else:
        wanted = f"a number {'above' if above else 'from'} {low:g} {'and at most' if above else 'to'} {high:g}"

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        fits = math.isfinite(value) and (low is None or (value > low if above else value >= low)) and (
            high is None or value <= high)
        if not fits:
            raise typer.BadParameter(f"{value:g} is out of range; use {wanted}{hint}")
        return value

    return check


def _out() -> Console:
    # Piped output gets all the width it needs: a table is data, not decoration.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 400)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@command("features")
def features_cmd() -> int:
    """List the built-in features."""
    from acts.features.builtin import default_registry

    table = Table("feature", "definition", box=None)
    for name, doc in default_registry().docs().items():
        table.add_row(name, doc)
    _out().print(table)
    _out().print("Your own: --features package.module:function (a function of the book view).")
    _out().print("Every feature is computed on a valid book only: a row is valid when the book was valid at the end "
                 "of its minute and the next diff continued the update-id chain; otherwise its features are empty.")
    return 0


@command("import")
def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="JSONL capture files.")],
    data_dir: DataDir = Path("data"),
    fmt: Annotated[str, typer.Option("--format", help="Input format.")] = "binance-jsonl",
    symbol: Annotated[str | None, typer.Option(
        help="Symbol for snapshot lines that do not name one: taken verbatim (ADARUB, ETHBTC); BTC means BTCUSDT.")]
    = None,
    market: MarketOption = Market.SPOT,
    quiet: Quiet = False,
) -> int:
    """Turn raw Binance captures (plain, .gz, .zst, .bz2, .xz) into segments; malformed lines go to a quarantine
    file, lines of other streams (trade, kline, ...) are counted and skipped."""
    from acts.recorder.importer import import_jsonl

    if fmt != "binance-jsonl":
        raise InputError(f"--format {fmt!r} is not supported; use binance-jsonl")
    default = None
    if symbol is not None:
        named = parse_symbols(symbol)
        if len(named) != 1:
            raise InputError(f"--symbol {symbol!r} must name exactly one symbol, like BTCUSDT or ADARUB")
        default = named[0]
    with _progress("import", "bytes", None, quiet) as progress:
        report = import_jsonl(files, data_dir, default, on_bytes=progress.update, market=market)
    out = _out()
    total = sum(report.events.values())
    out.print(f"imported {total} events from {report.lines} lines into {len(report.segments)} segments")
    for sym, count in sorted(report.events.items()):
        out.print(f"  {sym}: {count} events")
    if report.clamped:
        out.print(f"  {report.clamped} receive times went backwards and were clamped")
    if report.other_streams:
        other = ", ".join(f"{name} {count}" for name, count in sorted(report.other_streams.items()))
        out.print(f"  {sum(report.other_streams.values())} lines of other streams skipped ({other})")
    for note in report.notes():
        out.print(note)
    for duplicate in report.duplicate_files:
        out.print(f"  {duplicate}: the same file was given before; read once")
    if report.malformed:
        kept = f" kept aside in {report.quarantine}" if report.quarantine else ""
        _err().print(f"{report.malformed} malformed lines{kept}:")
        for line in report.malformed_lines:
            _err().print(f"  {line}")
    return 1 if report.malformed and not total else 0


@command("replay")
def replay_cmd(
    start: Annotated[str, typer.Option("--from", help="UTC date or ISO time (inclusive).")],
    data_dir: DataLocation = "data",
    end: Annotated[str | None, typer.Option("--to", help="UTC date or ISO time (exclusive); default: end of data.")]
    = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated; BTC means BTCUSDT. Default: all.")] = None,
    features: Annotated[str, typer.Option(help="Comma-separated feature names (see 'acts features').")]
    = DEFAULT_FEATURES,
    every: EveryOption = "1min",
    out: Annotated[Path | None, typer.Option(help="Write FILE.parquet or FILE.csv instead of printing.")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first corrupt segment instead of skipping it.")] = False,
    workers: Annotated[int | None, typer.Option(callback=_number(1, hint=" (local workers)"),
                       help="Replay on N local Dask workers, threads of this process unless --processes "
                       "(needs the dask extra).")] = None,
    processes: Annotated[bool, typer.Option(
        "--processes", help="With --workers: one process per worker (for long requests, many cores or Python "
                            "features), instead of threads (quicker to start).")] = False,
    scheduler: Annotated[str | None, typer.Option(help="An existing Dask scheduler, e.g. tcp://10.0.0.5:8786.")]
    = None,
    engine: Annotated[str, typer.Option(help="auto | fast (compiled array book) | python (reference).")] = "auto",
    on_feature_error: Annotated[FeatureErrorPolicy, typer.Option(
        help="stop: a feature that raises or returns a non-number stops the replay with one line naming it; "
             "null: its value is null and replay goes on (the first failure per feature and symbol is shown).")]
    = FeatureErrorPolicy.STOP,
    market: MarketOption = Market.SPOT,
    quiet: Quiet = False,
) -> int:
    """Rebuild books from segments and print one row per symbol per interval (--every, default 1min).

    Columns: time (start of the interval), symbol, valid, last_book_update, then the features. A row
    is valid only when the update-id chain proves it: the book was valid at the end of the interval
    and the next diff continued the chain. Intervals of an outage are invalid, with empty features.
    """
    from acts.api import History, parse_every
    from acts.features.builtin import default_registry
    from acts.features.registry import names_from_csv
    from acts.replayer.output import batch_records, features_schema, row_batches, text_columns, write_batches
    from acts.replayer.replay import ReplayReport

    names = names_from_csv(features)
    default_registry().resolve(names)  # unknown names fail before any work
    interval_ms = parse_every(every, "--every")
    start_ms = parse_time_ms(start, "--from")
    end_ms = parse_time_ms(end, "--to") if end else None
    if end_ms is not None and end_ms <= start_ms:
        raise BadDateError(f"--to {end} is not after --from {start}")
    history = History(data_dir, market)
    chosen = history.store.check_symbols(parse_symbols(symbols))
    report = ReplayReport()
    schema = features_schema(names)
    if processes and workers is None:
        raise InputError("--processes applies to --workers (a local cluster); add --workers N, or drop it")
    if workers is not None or scheduler is not None:
        import warnings

        from acts.features.pipeline import OnFeatureError, raise_feature_error
        from acts.replayer.distributed import replay_distributed

        # The single process's policies (History's): stop, or null with a warning per feature and symbol.
        on_failure: OnFeatureError = raise_feature_error
        if on_feature_error is FeatureErrorPolicy.NULL:
            on_failure = NullAndReportOnce(lambda message: warnings.warn(message, RuntimeWarning, stacklevel=2))
        batches = row_batches(replay_distributed(data_dir, chosen, names, start_ms, end_ms, workers, scheduler,
                                                 report, interval_ms, processes, strict, engine, on_failure,
                                                 market=market), schema)
    else:
        # The API's own stream: the CLI's rows are the table History.features returns, batch for batch.
        policy = "null" if on_feature_error is FeatureErrorPolicy.NULL else "raise"
        batches = history.iter_features(chosen, start, end, names, every, on_feature_error=policy, strict=strict,
                                        engine=engine, batch_rows=_PROGRESS_BATCH_ROWS, report=report)
    stop_ms = end_ms if end_ms is not None else _data_end_ms(history.store, chosen)
    total = None if stop_ms is None else max(stop_ms - start_ms, 0) / MINUTE_MS
    progress = _progress("replay", "min", total, quiet)
    with _warnings_to_stderr(), progress:
        batches = _replay_progress(batches, progress, start_ms, interval_ms)
        if out is not None:
            count = write_batches(batches, schema, out, interval_ms)
        else:
            table = Table(*text_columns(schema), box=None)  # a vector feature spreads over name_0..name_{k-1}
            count = 0
            for batch in batches:
                for record in batch_records(batch, interval_ms):
                    table.add_row(*record)
                count += batch.num_rows
    if out is not None:
        _err().print(f"wrote {count} rows to {out}")
    else:
        _out().print(table)
    _summary(report, count)
    return 1 if report.problems and count == 0 else 0


#: The CLI reads the replay in small batches so that progress moves often (output is the same).
_PROGRESS_BATCH_ROWS = 4096


def _progress(what: str, unit: str, total: float | None, quiet: bool) -> Progress:
    """Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise, none if quiet."""
    from acts.core.clock import SystemClock
    from acts.wiring import Progress

    return Progress.choose(what, unit, total, quiet, SystemClock())


def _replay_progress(batches: Iterable[Any], progress: Progress, start_ms: int, interval_ms: int) -> Iterator[Any]:
    """The batches, unchanged; progress is the exchange time they reached (rows come in time order)."""
    for batch in batches:
        if batch.num_rows:
            progress.update(max(batch.column(0)[-1].value + interval_ms - start_ms, 0) / MINUTE_MS)
        yield batch


def _data_end_ms(store: Any, symbols: list[str]) -> int | None:
    """The last receive time of the symbols' data (from segment metadata), for progress; None if unknown."""
    ends = []
    for symbol in symbols:
        paths = store.paths(symbol)
        try:
            ends.append(store.info(paths[-1]).last_recv_ns // 1_000_000 if paths else None)
        except ActsError:
            return None
    return max((e for e in ends if e is not None), default=None)


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """The API's warnings (a feature nulled, per feature and symbol) as ``warning: ...`` lines."""
    import warnings

    def show(message: Warning | str, *args: Any, **kwargs: Any) -> None:
        _err().print(f"warning: {message}", markup=False, highlight=False)

    with warnings.catch_warnings():
        warnings.simplefilter("always", RuntimeWarning)
        warnings.showwarning = show
        yield


def _null_and_warn() -> NullAndReportOnce:
    return NullAndReportOnce(lambda message: _err().print(f"warning: {message}", markup=False, highlight=False))


def _summary(report: object, rows: int) -> None:
    from acts.replayer.replay import ReplayReport

    assert isinstance(report, ReplayReport)
    err = _err()
    skipped = len(report.problems)
    note = f"; skipped {skipped} corrupt segment{'s' if skipped > 1 else ''}, listed below" if skipped else ""
    err.print(f"{rows} rows from {report.events} events; {report.gaps} gaps, {report.stale_snapshots} stale "
              f"snapshots{note}", markup=False)
    for problem in report.problems:
        err.print(f"skipped: {problem}", markup=False)


@command("export")
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="hftbacktest (one .npz event array) | tardis-csv "
                                     "(incremental_book_L2 .csv.gz per symbol and day).")],
    out: Annotated[Path, typer.Option(help="hftbacktest: FILE.npz; tardis-csv: a folder.")],
    start: Annotated[str, typer.Option("--from", help="UTC date or ISO time (inclusive, receive time).")],
    data_dir: DataLocation = "data",
    end: Annotated[str | None, typer.Option("--to", help="UTC date or ISO time (exclusive); default: end of data.")]
    = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated; BTC means BTCUSDT. Default: all "
                                                "(hftbacktest: exactly one).")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first corrupt segment instead of skipping it.")] = False,
    market: MarketOption = Market.SPOT,
    engine: Annotated[str, typer.Option(help="auto | fast (compiled array book) | python (reference); all write "
                                        "the same bytes.")] = "auto",
    quiet: Quiet = False,
) -> int:
    """Write recorded depth for another tool: hftbacktest's event array or tardis.dev's CSV (docs/EXPORT.md).

    Only what the update-id chain proves is written: the book from each snapshot, the diffs that continue
    the chain, and a clear where the book goes invalid (gap, stale snapshot, crossed book, restart).
    """
    from acts.replayer.export import (
        ExportFormat,
        ExportReport,
        HftbacktestWriter,
        TardisWriter,
        Writer,
        check_output,
        export_symbol,
    )
    from acts.replayer.replay import Engine
    from acts.storage.store import SegmentStore

    try:
        chosen_format = ExportFormat(fmt)
    except ValueError:
        raise InputError(f"--format {fmt!r}: use one of {', '.join(ExportFormat)}") from None
    start_ms = parse_time_ms(start, "--from")
    end_ms = parse_time_ms(end, "--to") if end else None
    if end_ms is not None and end_ms <= start_ms:
        raise BadDateError(f"--to {end} is not after --from {start}")
    store = SegmentStore.open(data_dir, market)
    chosen = store.check_symbols(parse_symbols(symbols))
    check_output(chosen_format, out, chosen)
    for symbol in chosen:  # every symbol has data in the range, before any file is written
        store.plan(symbol, start_ms, end_ms, lambda exc: None)
    engine_choice = Engine.parse(engine)  # before any file is written
    report = ExportReport()
    stop_ms = end_ms if end_ms is not None else _data_end_ms(store, chosen)
    per_symbol = None if stop_ms is None else max(stop_ms - start_ms, 0) / MINUTE_MS
    total = None if per_symbol is None else per_symbol * len(chosen)
    with _progress("export", "min", total, quiet) as progress:
        for index, symbol in enumerate(chosen):
            writer: Writer
            if chosen_format is ExportFormat.HFTBACKTEST:
                writer = HftbacktestWriter(out)
            else:
                out.mkdir(parents=True, exist_ok=True)
                writer = TardisWriter(out, symbol)
            done = 0.0 if per_symbol is None else index * per_symbol

            def update(recv_ns: int, done: float = done) -> None:
                progress.update(done + max(recv_ns // 1_000_000 - start_ms, 0) / MINUTE_MS)

            ok = False
            try:
                export_symbol(store, symbol, start_ms, end_ms, writer, report, strict, update, engine_choice)
                ok = True
            finally:
                report.files += writer.close(ok)
    err = _err()
    for path in report.files:
        err.print(f"wrote {path}", markup=False)
    note = f"; {report.clamped} rows moved forward to keep times in order" if report.clamped else ""
    note += f"; skipped {len(report.problems)} corrupt segments, listed below" if report.problems else ""
    trades = f", {report.trades} trades" if report.trades else ""
    err.print(f"{report.rows} level rows{trades} from {report.events} events; {report.snapshots} books loaded, "
              f"{report.clears} cleared (book invalid){note}", markup=False)
    for problem in report.problems:
        err.print(f"skipped: {problem}", markup=False)
    return 0


@command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option(help="JSONL file to write (local-time-prefixed lines).")],
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols.")] = "BTC,ETH",
    minutes: Annotated[float, typer.Option(callback=_number(0, above=True), help="Minutes of exchange time.")] = 10,
    seed: Annotated[int, typer.Option(help="Generator seed: same seed, same bytes.")] = 7,
    gap_rate: Annotated[float, typer.Option(callback=_number(0, 1, hint=" (a probability)"),
                                            help="Probability that a diff skips update ids (0 to 1).")] = 0.0,
    quiet: Quiet = False,
) -> int:
    """Write a seeded synthetic capture (as a recorder would see it) to a JSONL file."""
    import json

    from acts.core.events import DepthUpdate, Snapshot, to_wire
    from acts.exchange.synthetic import synthetic_events

    chosen = parse_symbols(symbols)  # before the file is created
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    first_ns: int | None = None
    with open(out, "w") as fh, _progress("generate", "min", minutes, quiet) as progress:
        for event in synthetic_events(chosen, minutes, seed, gap_rate=gap_rate):
            first_ns = event.recv_ns if first_ns is None else first_ns
            progress.update(min((event.recv_ns - first_ns) / 60e9, minutes))
            if isinstance(event, (DepthUpdate, Snapshot)):
                wire = to_wire(event)
                if isinstance(event, Snapshot):
                    wire["symbol"] = event.symbol
                fh.write(f"{event.recv_ns} {json.dumps(wire, separators=(',', ':'))}\n")
                count += 1
    _err().print(f"wrote {count} messages to {out}")
    return 0


def _live_feature_names(levels: str, features: str | None) -> list[str]:
    from acts.features.entries import default_feature_names
    from acts.features.registry import names_from_csv

    try:
        level_list = [int(x) for x in names_from_csv(levels)]
    except ValueError:
        raise InputError(f"--levels {levels!r}: use whole numbers like 5,10,20,50") from None
    names = default_feature_names(level_list)
    return names + [n for n in names_from_csv(features or "") if n not in names]


@command("record")
def record_cmd(
    symbols: Annotated[list[str], typer.Argument(help="Symbols to record: BTC means BTCUSDT.")],
    data_dir: DataDir = Path("data"),
    rest_url: Annotated[str | None, typer.Option(envvar="ACTS_REST_URL", help="REST base, e.g. the local "
                        "exchange's http://127.0.0.1:PORT/api (default: Binance).")] = None,
    stream_url: Annotated[str | None, typer.Option(envvar="ACTS_STREAM_URL", help="Websocket base, e.g. "
                          "ws://127.0.0.1:PORT/ (default: Binance).")] = None,
    mongo: Annotated[str | None, typer.Option(envvar="MONGODB_URI", help="MongoDB URI for minute entries "
                     "(env MONGODB_URI; collection minute_entries, minute_entries_usdm for --market usdm); "
                     "default: the embedded store DATA/entries.sqlite (DATA/entries-usdm.sqlite).")] = None,
    levels: Annotated[str, typer.Option(help="Levels for bias/bid_amount/ask_amount.")] = "5,10,20,50",
    features: Annotated[str | None, typer.Option(help="Extra features by name, as in replay.")] = None,
    duration: Annotated[float | None, typer.Option(callback=_number(0, above=True), help="Stop after this many "
                        "seconds (default: run until SIGINT/SIGTERM).")] = None,
    snapshot_limit: Annotated[int, typer.Option(help="Levels per REST snapshot.")] = 1000,
    snapshot_every: Annotated[float, typer.Option(callback=_number(1), help="Seconds between checkpoint "
                              "snapshots of every symbol.")] = 3600.0,
    roll_every: Annotated[float, typer.Option(callback=_number(1), help="Seconds between journal rotations "
                          "(each rolled into segments).")] = 3600.0,
    max_retries: Annotated[int | None, typer.Option(help="Give up after N failed reconnects (default: never).")]
    = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log INFO to stderr too.")] = False,
    log_max_mb: Annotated[float, typer.Option(min=0.01, help="Rotate each log file under DATA/logs past this "
                          "size (MB).")] = 50.0,
    log_keep: Annotated[int, typer.Option(min=1, help="Rotated files kept per log file.")] = 5,
    journal_keep_days: Annotated[float | None, typer.Option(min=0.0, help="Keep rolled journals in "
                                 "DATA/journal/rolled for N days (default: delete each once its segments are "
                                 "verified).")] = None,
    streams: Annotated[str, typer.Option(help="Streams per symbol, comma-separated: depth (required), trade "
                       "(<symbol>@aggTrade with --market usdm, which has no @trade; docs/FUTURES.md), "
                       "bookTicker (the live audit of the book against Binance's best bid/ask; see "
                       "docs/SCALE.md for its cost).")] = "depth,trade",
    market: MarketOption = Market.SPOT,
) -> int:
    """Record depth (and trade, bookTicker) events 24/7 into segments; write one entry per symbol per minute."""
    import asyncio

    from acts.core.clock import SystemClock
    from acts.core.secrets import Scrubber
    from acts.core.weights import FUTURES_DEPTH_LIMITS
    from acts.features.builtin import default_registry
    from acts.recorder.live import Recorder, RecorderConfig
    from acts.recorder.roll import Roller
    from acts.wiring import build_sink, setup_logging

    chosen = parse_symbols(symbols, "SYMBOLS")
    kinds = parse_streams(streams)
    if market is Market.USDM and snapshot_limit not in FUTURES_DEPTH_LIMITS:
        raise InputError(f"--snapshot-limit {snapshot_limit}: USD-M futures answer depth for limit "
                         f"{', '.join(map(str, FUTURES_DEPTH_LIMITS))} only")
    names = _live_feature_names(levels, features)
    resolved = default_registry().resolve(names)
    setup_logging(data_dir, chosen, verbose, int(log_max_mb * 2**20), log_keep, Scrubber.for_uri(mongo))
    sink = build_sink(data_dir, mongo, market)
    config = RecorderConfig(tuple(chosen), data_dir, tuple(names), rest_url=rest_url, stream_url=stream_url,
                            snapshot_limit=snapshot_limit, max_retries=max_retries, duration_s=duration,
                            snapshot_every_s=snapshot_every, roll_every_s=roll_every, streams=kinds, market=market,
                            **({"weight_per_minute": _HALF_FUTURES_WEIGHT} if market is Market.USDM else {}))
    clock = SystemClock()
    roller = Roller(data_dir, keep_days=journal_keep_days, clock=clock, market=market)
    recorder = Recorder(config, resolved, sink, clock, roller)
    try:
        report = asyncio.run(recorder.run())
    finally:
        sink.close()
    lag = f"; ingest lag p50 {report.lag_ms(0.5):.2f} ms, p99 {report.lag_ms(0.99):.2f} ms" if report.lags_ns else ""
    _err().print(f"recorded {report.frames} frames ({report.malformed} malformed), {report.snapshots} snapshots, "
                 f"{report.reconnects} reconnects; {report.entries} minute entries; "
                 f"{len(report.segments)} segments written{lag}")
    if recorder.failure is not None:
        raise recorder.failure if isinstance(recorder.failure, ActsError) else ActsError(str(recorder.failure))
    return 0


@command("exchange")
def exchange_cmd(
    symbols: Annotated[str | None, typer.Option(help="Symbols to serve (default: BTC,ETH,SOL,SHIB generated, or "
                       "every symbol of --history).")] = None,
    host: Annotated[str, typer.Option(help="Bind address (loopback unless you mean it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(callback=_number(0, 65535, hint=" (0: any free port)"),
                                      help="Port (0: any free one).")] = 9443,
    speed: Annotated[float, typer.Option(callback=_number(0, above=True, hint=" (1 = real time)"),
                                         help="Market speed: 1 = real time, 20 = 20x faster.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
    gap_rate: Annotated[float, typer.Option(callback=_number(0, 1, hint=" (a probability)"),
                                            help="Probability that a diff skips update ids (0 to 1).")] = 0.0,
    fault: Annotated[list[str] | None, typer.Option(help="Scheduled fault, e.g. drop@30 or rest@5:500:2 "
                     "(see acts/exchange/faults.py); repeatable.")] = None,
    history: Annotated[str | None, typer.Option(help="Serve recorded history from this data dir instead of "
                       "the generator (all its symbols unless --symbols is given).")] = None,
    market: MarketOption = Market.SPOT,
) -> int:
    """Serve a Binance-compatible market-data exchange (REST + websocket): generated or recorded history."""
    from acts.exchange.server import run_exchange

    if symbols is not None:
        chosen = parse_symbols(symbols)
    else:  # every symbol of the history, or the generator's defaults
        chosen = [] if history else parse_symbols("BTC,ETH,SOL,SHIB")
    run_exchange(chosen, seed, host, port, speed, fault or [], gap_rate, history, market)
    return 0


@command("backfill")
def backfill_cmd(
    start: Annotated[str, typer.Option("--from", help="UTC date or ISO time (inclusive).")],
    data_dir: DataDir = Path("data"),
    end: Annotated[str | None, typer.Option("--to", help="Exclusive; default: end of data.")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated; default: all.")] = None,
    mongo: Annotated[str | None, typer.Option(envvar="MONGODB_URI", help="MongoDB URI (env MONGODB_URI).")] = None,
    levels: Annotated[str, typer.Option(help="Levels, as in record.")] = "5,10,20,50",
    features: Annotated[str | None, typer.Option(help="Extra features, as in record.")] = None,
    quiet: Quiet = False,
    market: MarketOption = Market.SPOT,
) -> int:
    """Recompute minute entries from segments into the entry store (idempotent: upserts by key); each
    market's entries go to its own store, the one ``acts record --market`` writes."""
    from acts.features.builtin import default_registry
    from acts.features.entries import to_entry
    from acts.replayer.replay import ReplayReport, replay
    from acts.storage.store import SegmentStore
    from acts.wiring import build_sink

    names = _live_feature_names(levels, features)
    resolved = default_registry().resolve(names)
    start_ms = parse_time_ms(start, "--from")
    end_ms = parse_time_ms(end, "--to") if end else None
    store = SegmentStore(data_dir, market=market)
    chosen = store.check_symbols(parse_symbols(symbols))
    report = ReplayReport()
    sink = build_sink(data_dir, mongo, market)
    written = 0
    batch: list[dict[str, Any]] = []
    stop_ms = end_ms if end_ms is not None else _data_end_ms(store, chosen)
    total = None if stop_ms is None else max(stop_ms - start_ms, 0) / MINUTE_MS
    try:
        with _progress("backfill", "min", total, quiet) as progress:
            # As live recording does: a failing feature is null, and said once per feature and symbol.
            for row in replay(store, chosen, resolved, start_ms, end_ms, report,
                              on_feature_error=_null_and_warn()):
                batch.append(to_entry(row, names))
                if len(batch) >= 500:
                    written += sink.write(batch)
                    batch = []
                    progress.update(max(row.minute_ms - start_ms, 0) / MINUTE_MS)
            written += sink.write(batch)
    finally:
        sink.close()
    _summary(report, written)
    return 0


@command("demo")
def demo_cmd(
    data_dir: DataDir = Path("data"),
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols.")] = "BTC,ETH,SHIB",
    seconds: Annotated[float, typer.Option(callback=_number(0, above=True), help="How long to record.")] = 20,
    speed: Annotated[float, typer.Option(callback=_number(0, above=True), help="Market speed of the local "
                                         "exchange.")] = 30,
    features: Annotated[str, typer.Option(help="Features shown from the replay.")] = "mid,bias10,bias50",
) -> int:
    """Offline demo: local exchange -> acts record -> live entries (embedded store) -> replay, compared."""
    import asyncio
    import time as _time

    from acts.core.clock import SystemClock
    from acts.exchange.feed import GeneratorFeed
    from acts.exchange.server import LocalExchange
    from acts.features.builtin import default_registry
    from acts.features.entries import default_feature_names, to_entry
    from acts.recorder.live import Recorder, RecorderConfig
    from acts.recorder.roll import Roller
    from acts.replayer.replay import replay
    from acts.storage.layout import DataLayout
    from acts.storage.store import SegmentStore
    from acts.wiring import build_sink, setup_logging

    chosen = parse_symbols(symbols)
    names = default_feature_names()
    resolved = default_registry().resolve(names)
    run_dir = data_dir / f"demo-{_time.strftime('%Y%m%dT%H%M%S')}"
    setup_logging(run_dir, chosen)
    sink = build_sink(run_dir, None)
    out = _err()

    async def record() -> Any:
        start_ms = _time.time_ns() // 1_000_000
        async with LocalExchange(GeneratorFeed(chosen, start_ms=start_ms), speed=speed) as ex:
            out.print(f"local exchange on {ex.rest_url} and {ex.stream_url} ({speed:g}x market speed)")
            config = RecorderConfig(tuple(chosen), run_dir, tuple(names), rest_url=ex.rest_url,
                                    stream_url=ex.stream_url, duration_s=seconds)
            out.print(f"recording {', '.join(chosen)} for {seconds:g}s into {run_dir} ...")
            return await Recorder(config, resolved, sink, SystemClock(), Roller(run_dir)).run()

    report = asyncio.run(record())
    live = sink.read()
    sink.close()
    out.print(f"recorded {report.frames} frames, {report.snapshots} snapshots, {len(report.segments)} segments; "
              f"{len(live)} live minute entries in {DataLayout(run_dir).entries_db}")
    store = SegmentStore(run_dir)
    first = min(e["minute"] for e in live) if live else "2000-01-01"
    replayed = [to_entry(r, names) for r in replay(store, chosen, resolved, parse_time_ms(first))]
    same = sorted(live, key=lambda e: (e["minute"], e["symbol"])) == replayed
    out.print(f"replay of the recorded segments reproduces the live entries exactly: {'YES' if same else 'NO'}")
    rc = replay_cmd(start=first, data_dir=str(run_dir), end=None, symbols=",".join(chosen), features=features,
                    out=None, strict=False, workers=None, scheduler=None, engine="auto") or 0
    out.print(f"try: acts replay --data-dir {run_dir} --from {first[:10]} --features bias10,depth50,microprice")
    return rc if same else 1


@command("verify")
def verify_cmd(
    data_dir: DataLocation = "data",
    start: Annotated[str | None, typer.Option("--from", help="UTC date or ISO time (inclusive).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="UTC date or ISO time (exclusive).")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated; default: all.")] = None,
    market: MarketOption = Market.SPOT,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON: one object per symbol and "
                                                          "hour, every column of the table as a key.")] = False,
    quiet: Quiet = False,
) -> int:
    """Per symbol and hour: coverage, gaps, resyncs, crossed books, the audit against bookTicker, corrupt files.
    Exit 1 on corruption."""
    from acts.replayer.verify import COLUMNS, report_json, verify
    from acts.storage.store import SegmentStore

    start_ms = parse_time_ms(start, "--from") if start else None
    end_ms = parse_time_ms(end, "--to") if end else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise BadDateError(f"--to {end} is not after --from {start}")
    chosen = parse_symbols(symbols)
    with _progress("verify", "segments", None, quiet) as progress:  # an error below: no "done" line
        report = verify(data_dir, chosen, start_ms, end_ms, on_segment=progress.update, market=market)
        if not report.hours and not report.corrupt:
            store = SegmentStore.open(data_dir, market)
            days = sorted({day for symbol in store.check_symbols(chosen) for day in store.days(symbol)})
            span = "none" if not days else days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
            raise NoDataError(f"nothing recorded from {start or 'the start'} to {end or 'the end'} for "
                              f"{', '.join(chosen) or 'any symbol'}; recorded dates: {span}")
    if json_out:
        sys.stdout.write(json.dumps(report_json(report), indent=1) + "\n")
    else:
        table = Table(*(c.header for c in COLUMNS), box=None)
        for h in report.hours:
            table.add_row(*(c.text(h) for c in COLUMNS))
        _out().print(table)
    for problem in report.corrupt:
        _err().print(f"CORRUPT: {problem}")
    return 0 if report.ok() else 1


@command("migrate")
def migrate_cmd(
    data_dir: DataLocation = "data",
    folder: Annotated[Path | None, typer.Argument(help="Same as --data-dir (a local folder).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be converted.")] = False,
) -> int:
    """Rewrite segment format 1 files as format 2 (docs/FORMAT.md): lossless, atomic per file, idempotent."""
    from acts.storage.migrate import migrate

    if folder is None and "://" in data_dir:
        raise InputError(f"acts migrate rewrites files in place and works on a local folder, not {data_dir}: "
                         "copy the data locally, migrate, and copy it back")
    report = migrate(folder if folder is not None else Path(data_dir), dry_run=dry_run)
    for problem in report.corrupt:
        _err().print(f"CORRUPT: {problem}", markup=False)
    mb = 1024 * 1024
    if dry_run:
        _out().print(f"would migrate {len(report.migrated)} format 1 segments ({report.bytes_before / mb:.1f} MB); "
                     f"{report.current} already current")
    else:
        _out().print(f"migrated {len(report.migrated)} format 1 segments ({report.bytes_before / mb:.1f} MB -> "
                     f"{report.bytes_after / mb:.1f} MB); {report.current} already current")
    return 1 if report.corrupt else 0


# --- research: acts study, acts plot (acts.research; docs/RESEARCH.md) --------------------------------


def _research_table(data_dir: str, start: str, end: str | None, symbols: str | None, names: list[str],
                    every: str) -> tuple[Any, int | None, list[str]]:
    """The features table of a study or plot request (``acts.open(...).features``), its interval in
    ms (None for ``event``) and the feature columns to use: a vector feature ``v`` of k numbers is
    spread into ``v_0..v_{k-1}`` (as in CSV), so each element is studied or drawn on its own.
    Options are checked first, under their flag names."""
    import pyarrow as pa

    import acts
    from acts.api import parse_every
    from acts.features.pipeline import EVERY_EVENT
    from acts.replayer.output import spread_vectors

    start_ms = parse_time_ms(start, "--from")
    if end is not None and parse_time_ms(end, "--to") <= start_ms:
        raise BadDateError(f"--to {end} is not after --from {start}")
    try:
        interval = parse_every(every)
    except InputError:
        raise InputError(f"--every {every!r} is not an interval; use e.g. 100ms, 1s, 5s, 1min, 1h or event") from None
    if symbols is not None:
        parse_symbols(symbols, "--symbols")
    table = acts.open(data_dir).features(symbols, start, end, names, every=every)
    if table.num_rows == 0:
        raise NoDataError(f"no rows from {start} to {end or 'the end of the data'} at --every {every}; "
                          "widen the range ('acts verify' lists what is recorded)")
    sizes = {f.name: f.type.list_size for f in table.schema if pa.types.is_fixed_size_list(f.type)}
    columns = [c for name in names for c in ([f"{name}_{i}" for i in range(sizes[name])] if name in sizes else [name])]
    return spread_vectors(table), None if interval == EVERY_EVENT else interval, columns


def _research_out(path: Path | None, flag: str, suffixes: tuple[str, ...]) -> None:
    if path is not None and path.suffix.lower() not in suffixes:
        raise InputError(f"{flag} {path}: the file name must end in {' or '.join(suffixes)}")


@command("study")
def study_cmd(
    start: Annotated[str, typer.Option("--from", help="UTC date or ISO time (inclusive).")],
    data_dir: DataLocation = "data",
    end: Annotated[str | None, typer.Option("--to", help="UTC date or ISO time (exclusive); default: end of data.")]
    = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated; BTC means BTCUSDT. Default: all.")] = None,
    features: Annotated[str, typer.Option(help="Comma-separated features to study (see 'acts features').")]
    = "bias10,microprice",
    horizons: Annotated[str, typer.Option(help="Forward-return horizons, in intervals of --every.")] = "1,5,15",
    every: Annotated[str, typer.Option(help="Sampling interval: 100ms, 1s, 5s, 1min, 1h, ... or event.")] = "1min",
    out: Annotated[Path | None, typer.Option(help="Also write the table to FILE.csv or FILE.parquet (decile "
                   "means next to it, FILE.deciles.csv/.parquet).")] = None,
    png: Annotated[Path | None, typer.Option(help="Draw IC by horizon and decile means to FILE.png (needs "
                   "acts[plot]).")] = None,
) -> int:
    """Does a feature predict the mid? Spearman IC of each feature with the forward mid return over each
    horizon, per symbol and pooled, with the number of valid samples. Invalid rows never enter."""
    from acts.features.registry import names_from_csv
    from acts.research.study import check_horizons, study

    names = names_from_csv(features)
    if not names:
        raise InputError(f"--features {features!r} names no feature; use e.g. bias10,microprice")
    try:
        steps = [int(h) for h in names_from_csv(horizons)]
    except ValueError:
        raise InputError(f"--horizons {horizons!r}: use whole numbers of intervals like 1,5,15") from None
    _research_out(out, "--out", (".csv", ".parquet"))
    _research_out(png, "--png", (".png",))
    if png is not None:
        from acts.research.plot import require_matplotlib

        require_matplotlib("acts study --png")
    check_horizons(steps)  # before the replay, not after it
    fetched = names if "mid" in names else [*names, "mid"]
    table, every_ms, columns = _research_table(data_dir, start, end, symbols, fetched, every)
    result = study(table, [c for c in columns if c != "mid" or "mid" in names], steps, every_ms=every_ms)
    shown = Table("feature", "horizon", "symbol", "IC", "n", box=None)
    for row in result.ic.to_pylist():
        shown.add_row(row["feature"], str(row["horizon"]), row["symbol"],
                      "" if row["ic"] is None else f"{row['ic']:+.4f}", str(row["n"]))
    _out().print(shown)
    if out is not None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        side = out.with_name(f"{out.stem}.deciles{out.suffix}")
        for table_, path in ((result.ic, out), (result.deciles, side)):
            if path.suffix.lower() == ".csv":
                pacsv.write_csv(table_, path)
            else:
                pq.write_table(table_, path)
        _err().print(f"wrote {result.ic.num_rows} rows to {out} and {result.deciles.num_rows} decile rows to {side}",
                     markup=False)
    if png is not None:
        from acts.research.plot import draw_ic, save_png

        span = f"{start} to {end or 'end'}, every {every}"
        save_png(draw_ic(result.ic, result.deciles, title=f"IC with the forward mid return ({span})"), png)
        _err().print(f"wrote {png}", markup=False)
    return 0


@command("plot")
def plot_cmd(
    start: Annotated[str, typer.Option("--from", help="UTC date or ISO time (inclusive).")],
    out: Annotated[Path, typer.Option(help="The picture to write: FILE.png.")],
    data_dir: DataLocation = "data",
    end: Annotated[str | None, typer.Option("--to", help="UTC date or ISO time (exclusive); default: end of data.")]
    = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated; BTC means BTCUSDT. Default: all.")] = None,
    features: Annotated[str, typer.Option(help="Comma-separated features, one panel each.")] = "mid",
    every: Annotated[str, typer.Option(help="Sampling interval: 100ms, 1s, 5s, 1min, 1h, ... or event.")] = "1min",
) -> int:
    """Plot features over time: one panel per feature, one line per symbol, invalid intervals shaded
    (needs acts[plot])."""
    from acts.features.registry import names_from_csv
    from acts.research.plot import draw_features, require_matplotlib, save_png

    names = names_from_csv(features)
    if not names:
        raise InputError(f"--features {features!r} names no feature; use e.g. mid,bias10")
    _research_out(out, "--out", (".png",))
    require_matplotlib("acts plot")
    table, every_ms, columns = _research_table(data_dir, start, end, symbols, names, every)
    plot = draw_features(table, columns, every_ms, title=f"{start} to {end or 'end'}, every {every}")
    save_png(plot.figure, out)
    count = plot.span_count
    _err().print(f"wrote {out}: {len(columns)} panel{'s' * (len(columns) > 1)}, {len(plot.spans)} symbol"
                 f"{'s' * (len(plot.spans) > 1)}, {count} invalid span{'s' * (count != 1)} shaded", markup=False)
    return 0

def _scrubber(argv: list[str]) -> Callable[[str], str]:
    """Masks the secrets of the Mongo URI (``--mongo`` or ``MONGODB_URI``) in an error message."""
    import os

    from acts.core.secrets import Scrubber, secrets_of

    uris = [os.environ.get("MONGODB_URI", "")] + [arg.removeprefix("--mongo=") for arg in argv
                                                   if arg.startswith("--mongo=")]
    uris += [value for flag, value in zip(argv, argv[1:], strict=False) if flag == "--mongo"]
    return Scrubber([secret for uri in uris if uri for secret in secrets_of(uri)])


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this)."""
    command_ = typer.main.get_command(app)
    hide = _scrubber(sys.argv[1:] if argv is None else argv)
    try:
        # Not standalone: the parser's own errors come here, to be printed as one line like ours.
        code = command_.main(args=argv, prog_name="acts", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ActsError as exc:
        return _fail(hide(str(exc)))
    except OSError as exc:  # a path that cannot be read or written, a full disk
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{hide(str(exc.strerror or exc))}{where}; check the path, its permissions and free space")
    except KeyboardInterrupt:
        _err().print("acts: interrupted")
        return 130
    except typer.TyperException as exc:  # the parser's own: a bad option value, an unknown command
        return _parser_error(exc)
    return code if isinstance(code, int) else 0


def _fail(message: str, code: int = 2) -> int:
    """Print ``acts: error: message`` as one line (never markup, never wrapped) and return ``code``."""
    _err().print(f"acts: error: {' '.join(message.split())}", markup=False)
    return code


def _parser_error(exc: typer.TyperException) -> int:
    """A bad option value, an unknown command, a missing option: one line, naming the command's --help.

    (Typer >= 0.26 vendors click; its errors share the root ``typer.TyperException``.)
    """
    if type(exc).__name__ == "NoArgsIsHelpError":  # ``acts`` alone: the help, as before
        _err().print(exc.format_message(), markup=False)
        return 2
    ctx = getattr(exc, "ctx", None)
    hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    return _fail(f"{exc.format_message().rstrip('.')}{hint}", exc.exit_code)


def app_main() -> None:
    sys.exit(main())
