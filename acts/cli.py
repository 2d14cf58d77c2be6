"""The ``acts`` command line: the one place that reads configuration and builds objects.

Options come from flags or, where noted, environment variables (``ACTS_DATA_DIR``,
``MONGODB_URI``); nothing else in ACTS reads the environment. ``main(argv) -> int`` so
tests call it directly. Errors print one line ``acts: error: ...`` and exit 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from acts.errors import ActsError, BadDateError, InputError
from acts.symbols import iso_minute, parse_symbols, parse_time_ms
from features.pipeline import MinuteRow

__all__ = ["app", "main", "app_main"]

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


def _out() -> Console:
    # Piped output gets all the width it needs: a table is data, not decoration.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 400)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@command("features")
def features_cmd() -> int:
    """List the built-in features."""
    from features.builtin import default_registry

    table = Table("feature", "definition", box=None)
    for name, doc in default_registry().docs().items():
        table.add_row(name, doc)
    _out().print(table)
    _out().print("Your own: --features package.module:function (a function of the book view).")
    return 0


@command("import")
def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="JSONL capture files.")],
    data_dir: DataDir = Path("data"),
    fmt: Annotated[str, typer.Option("--format", help="Input format.")] = "binance-jsonl",
    symbol: Annotated[str | None, typer.Option(help="Symbol for snapshot lines that do not name one.")] = None,
) -> int:
    """Turn raw Binance captures into segments; malformed lines go to a quarantine file."""
    from recorder.importer import import_jsonl

    if fmt != "binance-jsonl":
        raise InputError(f"--format {fmt!r} is not supported; use binance-jsonl")
    default = parse_symbols(symbol)[0] if symbol else None
    report = import_jsonl(files, data_dir, default)
    out = _out()
    total = sum(report.events.values())
    out.print(f"imported {total} events from {report.lines} lines into {len(report.segments)} segments")
    for sym, count in sorted(report.events.items()):
        out.print(f"  {sym}: {count} events")
    if report.clamped:
        out.print(f"  {report.clamped} receive times went backwards and were clamped")
    if report.malformed:
        _err().print(f"{report.malformed} malformed lines kept aside in {report.quarantine}:")
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
    out: Annotated[Path | None, typer.Option(help="Write FILE.parquet or FILE.csv instead of printing.")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first corrupt segment instead of skipping it.")] = False,
    workers: Annotated[int | None, typer.Option(help="Replay (symbol, day) partitions on N local Dask processes.")]
    = None,
    scheduler: Annotated[str | None, typer.Option(help="An existing Dask scheduler, e.g. tcp://10.0.0.5:8786.")]
    = None,
) -> int:
    """Rebuild books from segments and print one row per symbol per minute."""
    from features.builtin import default_registry
    from features.registry import names_from_csv
    from replayer.output import columns, table_records, write_output
    from replayer.replay import ReplayReport, replay
    from replayer.store import SegmentStore

    names = names_from_csv(features)
    resolved = default_registry().resolve(names)  # unknown names fail before any work
    start_ms = parse_time_ms(start, "--from")
    end_ms = parse_time_ms(end, "--to") if end else None
    if end_ms is not None and end_ms <= start_ms:
        raise BadDateError(f"--to {end} is not after --from {start}")
    store = SegmentStore.open(data_dir)
    chosen = store.check_symbols(parse_symbols(symbols))
    report = ReplayReport()
    if workers is not None or scheduler is not None:
        from replayer.distributed import replay_distributed

        if strict:
            raise InputError("--strict is not supported with --workers/--scheduler yet; run without them")
        rows: Iterable[MinuteRow] = replay_distributed(data_dir, chosen, names, start_ms, end_ms, workers,
                                                       scheduler, report)
    else:
        rows = replay(store, chosen, resolved, start_ms, end_ms, report, strict)
    if out is not None:
        count = write_output(rows, names, out)
        _err().print(f"wrote {count} rows to {out}")
    else:
        table = Table(*columns(names), box=None)
        count = 0
        for record in table_records(rows):
            table.add_row(*record)
            count += 1
        _out().print(table)
    _summary(report, count)
    return 1 if report.problems and count == 0 else 0


def _summary(report: object, rows: int) -> None:
    from replayer.replay import ReplayReport

    assert isinstance(report, ReplayReport)
    err = _err()
    err.print(f"{rows} rows from {report.events} events; {report.gaps} gaps, {report.stale_snapshots} stale snapshots")
    for problem in report.problems:
        err.print(f"skipped: {problem}")


@command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Option(help="JSONL file to write (local-time-prefixed lines).")],
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols.")] = "BTC,ETH",
    minutes: Annotated[float, typer.Option(help="Minutes of exchange time.")] = 10,
    seed: Annotated[int, typer.Option(help="Generator seed: same seed, same bytes.")] = 7,
    gap_rate: Annotated[float, typer.Option(help="Probability that a diff skips update ids.")] = 0.0,
) -> int:
    """Write a seeded synthetic capture (as a recorder would see it) to a JSONL file."""
    import json

    from exchange.synthetic import synthetic_events
    from recorder.events import DepthUpdate, Snapshot, to_wire

    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(out, "w") as fh:
        for event in synthetic_events(parse_symbols(symbols), minutes, seed, gap_rate=gap_rate):
            if isinstance(event, (DepthUpdate, Snapshot)):
                wire = to_wire(event)
                if isinstance(event, Snapshot):
                    wire["symbol"] = event.symbol
                fh.write(f"{event.recv_ns} {json.dumps(wire, separators=(',', ':'))}\n")
                count += 1
    _err().print(f"wrote {count} messages to {out}")
    return 0


@command("demo")
def demo_cmd(
    data_dir: DataDir = Path("data"),
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols.")] = "BTC,ETH,SHIB",
    minutes: Annotated[float, typer.Option(help="Minutes of market to simulate.")] = 10,
    seed: Annotated[int, typer.Option()] = 7,
    features: Annotated[str, typer.Option()] = DEFAULT_FEATURES,
) -> int:
    """Offline demo: simulate a recording into segments, then replay it into minute features."""
    from exchange.generator import DEFAULT_START_MS
    from exchange.synthetic import synthetic_events
    from recorder.segments import write_segments

    chosen = parse_symbols(symbols)
    per_symbol: dict[str, list] = {s: [] for s in chosen}
    for event in synthetic_events(chosen, minutes, seed):
        per_symbol[event.symbol].append(event)
    written = [p for sym, events in per_symbol.items() for p in write_segments(data_dir, sym, events)]
    _err().print(f"recorded {sum(map(len, per_symbol.values()))} events of {', '.join(chosen)} "
                 f"into {len(written)} segments under {data_dir}")
    return replay_cmd(start=iso_minute(DEFAULT_START_MS), data_dir=str(data_dir), end=None,
                      symbols=",".join(chosen), features=features, out=None, strict=False, workers=None,
                      scheduler=None) or 0


@command("verify")
def verify_cmd(
    data_dir: DataLocation = "data",
    start: Annotated[str | None, typer.Option("--from", help="UTC date or ISO time (inclusive).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="UTC date or ISO time (exclusive).")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated; default: all.")] = None,
) -> int:
    """Per symbol and hour: coverage, gaps, resyncs, crossed books, corrupt files. Exit 1 on corruption."""
    from acts.symbols import iso_minute
    from replayer.verify import verify

    report = verify(data_dir, parse_symbols(symbols), parse_time_ms(start, "--from") if start else None,
                    parse_time_ms(end, "--to") if end else None)
    table = Table("hour", "symbol", "coverage", "events", "snapshots", "gaps", "missing ids", "invalid s",
                  "resyncs", "disconnects", "crossed", box=None)
    for h in report.hours:
        table.add_row(iso_minute(h.hour_ms), h.symbol, f"{h.coverage:.2%}", str(h.events), str(h.snapshots),
                      str(h.gaps), str(h.missing_ids), f"{h.invalid_ms / 1000:.1f}", str(h.resyncs),
                      str(h.disconnects), str(h.crossed_episodes))
    _out().print(table)
    for problem in report.corrupt:
        _err().print(f"CORRUPT: {problem}")
    return 0 if report.ok() else 1


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this)."""
    command_ = typer.main.get_command(app)
    try:
        command_.main(args=argv, prog_name="acts", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ActsError as exc:
        _err().print(f"acts: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err().print("acts: interrupted")
        return 130
    return 0


def app_main() -> None:
    sys.exit(main())
