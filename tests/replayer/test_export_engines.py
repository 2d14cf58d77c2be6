"""``acts export``'s fast fold (row groups, the compiled lane) against the reference fold, byte for byte.

The reference engine (``engine="python"``: string levels, the sorted-dict book, one writer call per event)
is the oracle: on seeded messy recordings -- gaps, resyncs, duplicate, stale and reordered diffs, a crossed
book, restarts, trades, bookTickers, a UTC midnight, USD-M futures -- both engines must write the same
files, byte for byte, and report the same counts.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from acts.core.errors import InputError
from acts.core.events import DepthUpdate, Event, EventKind, Marker, Snapshot, Trade
from acts.core.markets import Market
from acts.core.symbols import StreamKind
from acts.exchange.synthetic import synthetic_events
from acts.replayer import export
from acts.storage.segments import write_segments
from acts.storage.store import SegmentStore

#: Two minutes before a UTC midnight: the tardis files split there, with the book again at 00:00.
BEFORE_MIDNIGHT_MS = 1_714_607_880_000  # 2024-05-01T23:58:00Z
MIDNIGHT_MS = BEFORE_MIDNIGHT_MS + 120_000
ALL_STREAMS = (StreamKind.DEPTH, StreamKind.TRADE, StreamKind.BOOK_TICKER)


def _messy(events: list[Event], seed: int) -> list[Event]:
    """Duplicates, covered diffs, a reordered pair (a gap, then a stale diff), bids that cross the book,
    disconnects and a recorder restart: everything that stops the compiled lane or breaks the chain."""
    rng = random.Random(seed)
    out: list[Event] = []
    last: dict[str, int] = {}  # symbol -> index in out of its latest diff
    for event in events:
        roll = rng.random()
        if isinstance(event, DepthUpdate) and roll < 0.03:
            out += [event, event]  # duplicate
        elif isinstance(event, DepthUpdate) and roll < 0.035 and event.symbol in last:
            out.insert(last.pop(event.symbol), event)  # out of order
            continue
        elif isinstance(event, DepthUpdate) and roll < 0.04:
            out.append(event)
            out.append(dataclasses.replace(event, event_time_ms=event.event_time_ms - 90_000, bids=(), asks=()))
        elif isinstance(event, DepthUpdate) and roll < 0.042:
            # The next diff in the chain, with a bid above every ask: the book crosses and goes invalid.
            out.append(event)
            u = event.final_update_id
            out.append(dataclasses.replace(event, first_update_id=u + 1, final_update_id=u + 1,
                                           bids=(("999999.99", "1.5"),), asks=(),
                                           prev_final_update_id=None if event.prev_final_update_id is None else u))
        elif isinstance(event, DepthUpdate) and roll < 0.05:
            out.append(Marker(EventKind.DISCONNECT, event.symbol, event.recv_ns, "{}"))
            out.append(event)
        elif isinstance(event, DepthUpdate) and roll < 0.051:
            out.append(Marker(EventKind.RESTART, event.symbol, event.recv_ns, "{}"))
            out.append(event)
        else:
            out.append(event)
        if isinstance(event, DepthUpdate):
            last[event.symbol] = len(out) - 1
    return out


def _as_futures(events: list[Event]) -> list[Event]:
    """The same recording as USD-M diffs: each names the previous diff's ``u`` as its ``pu``."""
    return [dataclasses.replace(e, prev_final_update_id=e.first_update_id - 1) if isinstance(e, DepthUpdate) else e
            for e in events]


def _record(data_dir: Path, events: list[Event], market: Market = Market.SPOT, chunk: int = 1300) -> SegmentStore:
    by_symbol: dict[str, list[Event]] = {}
    for event in events:
        by_symbol.setdefault(event.symbol, []).append(event)
    for symbol, evs in by_symbol.items():
        for i in range(0, len(evs), chunk):  # several segments: the fold runs across their seams
            write_segments(data_dir, symbol, evs[i : i + chunk], market=market)
    return SegmentStore(data_dir, market=market)


def _export(store: SegmentStore, symbol: str, out: Path, fmt: export.ExportFormat, engine: str, start_ms: int,
            end_ms: int | None) -> tuple[dict[str, bytes], export.ExportReport]:
    out.mkdir(parents=True)
    writer: export.Writer
    if fmt is export.ExportFormat.HFTBACKTEST:
        writer = export.HftbacktestWriter(out / "x.npz")
    else:
        writer = export.TardisWriter(out, symbol)
    report = export.ExportReport()
    export.export_symbol(store, symbol, start_ms, end_ms, writer, report, engine=engine)
    files = writer.close(True)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files), "no leftovers"
    return {p.name: p.read_bytes() for p in files}, report


def _same_bytes(store: SegmentStore, symbol: str, tmp_path: Path, fmt: export.ExportFormat, start_ms: int = 0,
                end_ms: int | None = None) -> export.ExportReport:
    name = f"{symbol}-{fmt}-{start_ms}-{end_ms}"
    slow, slow_report = _export(store, symbol, tmp_path / name / "python", fmt, "python", start_ms, end_ms)
    fast, fast_report = _export(store, symbol, tmp_path / name / "fast", fmt, "fast", start_ms, end_ms)
    assert slow and fast.keys() == slow.keys()
    for file_name in slow:
        assert fast[file_name] == slow[file_name], file_name
    assert fast_report == slow_report
    return fast_report


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> SegmentStore:
    """Four minutes of two symbols across a UTC midnight, all three streams, gaps and the mess above."""
    events = list(synthetic_events(["BTCUSDT", "SHIBUSDT"], 4, seed=3, start_ms=BEFORE_MIDNIGHT_MS,
                                   snapshot_every_s=40, gap_rate=0.003, depth=50, streams=ALL_STREAMS))
    return _record(tmp_path_factory.mktemp("messy"), _messy(events, seed=3))


@pytest.mark.parametrize("fmt", list(export.ExportFormat))
@pytest.mark.parametrize("symbol", ["BTCUSDT", "SHIBUSDT"])
def test_the_fast_fold_writes_the_references_bytes(messy: SegmentStore, tmp_path: Path, symbol: str,
                                                   fmt: export.ExportFormat) -> None:
    report = _same_bytes(messy, symbol, tmp_path, fmt)
    # The recording is as messy as promised: resyncs, clears, trades.
    assert report.snapshots >= 3 and report.clears >= 2 and report.trades > 100 and report.rows > 1000


@pytest.mark.parametrize("fmt", list(export.ExportFormat))
@pytest.mark.parametrize(("start_ms", "end_ms"), [(BEFORE_MIDNIGHT_MS + 50_000, MIDNIGHT_MS + 70_000),
                                                  (MIDNIGHT_MS - 1, None), (0, MIDNIGHT_MS + 1)],
                         ids=["from and to inside", "from just before midnight", "to just after midnight"])
def test_the_range_cuts_the_same_rows(messy: SegmentStore, tmp_path: Path, fmt: export.ExportFormat,
                                      start_ms: int, end_ms: int | None) -> None:
    _same_bytes(messy, "BTCUSDT", tmp_path, fmt, start_ms, end_ms)


@pytest.mark.parametrize("fmt", list(export.ExportFormat))
def test_futures_by_the_pu_rule(tmp_path: Path, fmt: export.ExportFormat) -> None:
    events = list(synthetic_events(["ETHUSDT"], 3, seed=8, start_ms=BEFORE_MIDNIGHT_MS, snapshot_every_s=30,
                                   gap_rate=0.004, depth=40, streams=ALL_STREAMS))
    store = _record(tmp_path / "usdm", _messy(_as_futures(events), seed=8), Market.USDM)
    report = _same_bytes(store, "ETHUSDT", tmp_path, fmt)
    assert report.snapshots >= 2 and report.clears >= 1 and report.trades > 0


def test_quantities_past_float_precision_round_as_python_does(tmp_path: Path) -> None:
    """Above 2**53 units an int64 is no exact float64: the column path must still round once, as ``int / int``."""
    s, t0 = "PEPEUSDT", 1_714_600_000_000
    huge = ("0.00000123", "123456789.12345679")  # 12345678912345679 units: odd, past 2**53
    events: list[Event] = [Snapshot(s, 10, (("0.00000120", "5"),), (("0.00000130", "7"),), t0 * 10**6)]
    events += [DepthUpdate(s, t0 + k, 11 + k, 11 + k, (huge,), (), (t0 + k) * 10**6 + 1) for k in range(3)]
    events.append(Trade(s, t0 + 5, 77, huge[0], huge[1], t0 + 4, False, (t0 + 5) * 10**6))
    store = _record(tmp_path / "data", events)
    _same_bytes(store, s, tmp_path, export.ExportFormat.HFTBACKTEST)
    data = np.load(tmp_path / f"{s}-hftbacktest-0-None" / "fast" / "x.npz")["data"]
    assert data["qty"][-1] == 12345678912345679 / 10**8 != np.float64(12345678912345679) / 10**8


def test_levels_past_int64_fall_back_to_the_reference_from_the_start(tmp_path: Path) -> None:
    s = "PEPEUSDT"
    huge = "99999999999.00"  # 1e19 units at 8 decimals: no int64
    events: list[Event] = [Snapshot(s, 0, (("0.00001", "5"),), (("0.001", "1"),), 10**15)]
    events += [DepthUpdate(s, 60_000 * k, k, k, ((f"0.0000{k}", huge),), (("0.001", "1"),), 10**15 + k)
               for k in range(1, 5)]
    store = _record(tmp_path / "data", events)
    auto, auto_report = _export(store, s, tmp_path / "auto", export.ExportFormat.TARDIS_CSV, "auto", 0, None)
    slow, slow_report = _export(store, s, tmp_path / "python", export.ExportFormat.TARDIS_CSV, "python", 0, None)
    assert auto == slow and auto_report == slow_report and auto_report.rows == 10
    with pytest.raises(InputError, match="python engine"):
        _export(store, s, tmp_path / "fast", export.ExportFormat.TARDIS_CSV, "fast", 0, None)


@pytest.mark.parametrize("fmt", list(export.ExportFormat))
def test_long_lane_runs_start_at_from_and_the_day_opens_with_its_book(tmp_path: Path,
                                                                    fmt: export.ExportFormat) -> None:
    """Diffs and trades only (no bookTickers to stop the lane): runs are long, so the one that reaches
    ``--from`` must stop there for the opening book, and tardis' new day opens with the book at 00:00."""
    events = list(synthetic_events(["BTCUSDT"], 4, seed=6, start_ms=BEFORE_MIDNIGHT_MS, snapshot_every_s=3600,
                                   gap_rate=0.001, depth=50, streams=(StreamKind.DEPTH, StreamKind.TRADE)))
    store = _record(tmp_path / "data", events, chunk=5000)
    report = _same_bytes(store, "BTCUSDT", tmp_path, fmt, BEFORE_MIDNIGHT_MS + 1000)
    assert report.trades > 100
    if fmt is export.ExportFormat.TARDIS_CSV:
        assert report.snapshots >= 2  # the opening book and midnight's
