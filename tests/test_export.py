"""``acts export``: hftbacktest event arrays loaded in hftbacktest itself, and tardis.dev CSV by hand."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from acts.api import History
from acts.cli import main
from acts.core.events import BookTicker, DepthUpdate, Event, EventKind, Snapshot, Trade, marker
from acts.core.symbols import iso_ms
from acts.exchange.synthetic import synthetic_events
from acts.replayer import export
from tests.conftest import NEAR_HOUR_MS, record

hftbacktest = pytest.importorskip("hftbacktest")

SYMBOL = "BTCUSDT"
TICK = 0.01  # the generator's BTCUSDT tick


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """Six minutes of BTC with gaps (so resyncs) and a checkpoint snapshot every minute."""
    events = list(synthetic_events([SYMBOL], 6, seed=5, start_ms=NEAR_HOUR_MS, snapshot_every_s=60,
                                   gap_rate=0.004, depth=60))
    data_dir = tmp_path_factory.mktemp("capture")
    record(data_dir, events)
    return data_dir, events


def _export(data_dir: Path, out: Path, fmt: str, *extra: str) -> int:
    return main(["export", "--format", fmt, "--data-dir", str(data_dir), "--out", str(out), "--quiet", *extra])


def _prefix(times: list[int], at_ms: int) -> int:
    """How many events a fold up to ``at_ms`` takes: up to the first whose time is past it."""
    return next((i for i, t in enumerate(times) if t > at_ms), len(times))


def _event_ms(event: Event) -> int:
    return event.event_time_ms if isinstance(event, DepthUpdate) else event.recv_ns // 1_000_000


# --- hftbacktest ------------------------------------------------------------------------------


def test_the_event_record_is_hftbacktests() -> None:
    from hftbacktest import types

    assert export.EVENT_DTYPE == types.event_dtype
    for name in ("EXCH_EVENT", "LOCAL_EVENT", "BUY_EVENT", "SELL_EVENT", "DEPTH_EVENT", "TRADE_EVENT",
                 "DEPTH_CLEAR_EVENT", "DEPTH_SNAPSHOT_EVENT"):
        assert getattr(export, name) == getattr(types, name), name


def test_hftbacktest_steps_through_the_export_with_actss_best_bid_and_ask(
        capture: tuple[Path, list[Event]], tmp_path: Path) -> None:
    from hftbacktest.data.validation import validate_event_order

    data_dir, events = capture
    out = tmp_path / "btc.npz"
    start, end = "2024-05-01T00:54:30Z", "2024-05-01T01:00:00Z"
    assert _export(data_dir, out, "hftbacktest", "--symbols", "BTC", "--from", start, "--to", end) == 0
    data = np.load(out)["data"]
    validate_event_order(data)  # hftbacktest's own check: exchange and local times never go back
    kinds = data["ev"] & 0xFF
    assert (kinds == export.DEPTH_CLEAR_EVENT).sum() >= 3, "the capture should hold gaps and resyncs"

    seen_valid, seen_invalid = _replay_in_hftbacktest(str(out), data_dir, events, empty_when_invalid=True)
    assert seen_valid > 150 and seen_invalid > 3


def test_hftbacktests_own_tardis_reader_rebuilds_actss_book_from_the_csv(
        capture: tuple[Path, list[Event]], tmp_path: Path) -> None:
    """Other tools read the CSV: hftbacktest's tardis converter turns it into a book equal to ACTS's."""
    from hftbacktest.data.utils import tardis

    data_dir, events = capture
    assert _export(data_dir, tmp_path, "tardis-csv", "--from", "2024-05-01T00:54:30Z", "--to", "2024-05-01T01:00") == 0
    (csv_file,) = tmp_path.iterdir()
    data = tardis.convert([str(csv_file)], buffer_size=1_000_000)
    # tardis has no clear, so between a gap and the next snapshot the converted book is stale: only the
    # times ACTS's book is valid are compared.
    seen_valid, _ = _replay_in_hftbacktest(data, data_dir, events, empty_when_invalid=False)
    assert seen_valid > 150


def _replay_in_hftbacktest(data: str | np.ndarray, data_dir: Path, events: list[Event],
                           empty_when_invalid: bool) -> tuple[int, int]:
    """Step hftbacktest through ``data`` and compare its book with ``History.book`` at sampled times;
    the number of samples where ACTS's book was valid, and invalid."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    # Sample times: just after an event's receive time, where hftbacktest's local book (rows received
    # so far) and ACTS's book at that millisecond (diffs by E, the rest by receive time) fold the same events.
    start_ns, end_ns = (NEAR_HOUR_MS + 30_000) * 10**6, (NEAR_HOUR_MS + 360_000) * 10**6
    by_e = [_event_ms(e) for e in events]  # how History.book orders events
    by_recv = [e.recv_ns // 1_000_000 for e in events]  # how hftbacktest's local side does
    samples = []
    for k in range(0, len(events), 5):
        at_ms = by_recv[k]
        if start_ns <= events[k].recv_ns < end_ns and _prefix(by_e, at_ms) == _prefix(by_recv, at_ms):
            samples.append(at_ms)
    assert len(samples) > 200

    asset = (BacktestAsset().data(data if isinstance(data, np.ndarray) else [data]).linear_asset(1.0)
             .tick_size(TICK).lot_size(0.00001).constant_order_latency(0, 0).no_partial_fill_exchange()
             .risk_adverse_queue_model().trading_value_fee_model(0.0, 0.0))
    hbt = HashMapMarketDepthBacktest([asset])
    hbt.elapse(0)
    history = History(data_dir)
    seen_valid = seen_invalid = 0
    for at_ms in samples:
        hbt.elapse(at_ms * 1_000_000 + 999_999 - hbt.current_timestamp)
        depth = hbt.depth(0)
        book = history.book(SYMBOL, iso_ms(at_ms), depth=1)
        if book.valid:
            seen_valid += 1
            assert (depth.best_bid_tick, depth.best_ask_tick) == (
                int(book.bids[0][0]) // 10**6, int(book.asks[0][0]) // 10**6), at_ms
            assert depth.bid_qty_at_tick(depth.best_bid_tick) == int(book.bids[0][1]) / 10**8
        else:
            seen_invalid += 1
            if empty_when_invalid:
                assert np.isnan(depth.best_bid) and np.isnan(depth.best_ask), at_ms  # cleared: no book
    hbt.close()
    return seen_valid, seen_invalid


def test_the_archive_streams_its_rows_and_numpy_reads_it(capture: tuple[Path, list[Event]], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, _ = capture
    monkeypatch.setattr(export, "CHUNK_ROWS", 1_000)  # many spilled chunks
    out = tmp_path / "btc.npz"
    assert _export(data_dir, out, "hftbacktest", "--from", "2024-05-01", "--symbols", "BTC") == 0
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["data.npy"]
    data = np.load(out)["data"]
    assert data.dtype.descr == export.EVENT_DTYPE.descr and len(data) > 20 * export.CHUNK_ROWS
    assert ((data["ev"] & (export.EXCH_EVENT | export.LOCAL_EVENT)) == export.EXCH_EVENT | export.LOCAL_EVENT).all()
    again = tmp_path / "again.npz"
    assert _export(data_dir, again, "hftbacktest", "--from", "2024-05-01", "--symbols", "BTC") == 0
    assert np.array_equal(np.load(again)["data"], data)  # deterministic
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.npz", "btc.npz"]  # no spill files left


# --- tardis CSV -------------------------------------------------------------------------------

_MIDNIGHT_MS = 1_714_608_000_000  # 2024-05-02T00:00:00Z


def _diff(first: int, final: int, e_ms: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
          recv_ms: int) -> DepthUpdate:
    return DepthUpdate("BTCUSDT", e_ms, first, final, tuple(bids), tuple(asks), recv_ms * 10**6)


def test_tardis_csv_is_what_the_chain_proves_by_hand(tmp_path: Path) -> None:
    t = _MIDNIGHT_MS - 1_000
    events: list[Event] = [
        _diff(9, 11, t - 10, [("100.10000000", "1.00000000")], [], t),  # buffered, then bridges the snapshot
        Snapshot("BTCUSDT", 10, (("100.00000000", "2.00000000"),), (("101.00000000", "3.50000000"),), (t + 5) * 10**6),
        _diff(12, 12, t + 90, [], [("101.00000000", "0.00000000"), ("101.50000000", "4.00000000")], t + 100),
        _diff(12, 12, t + 90, [], [("101.00000000", "0.00000000")], t + 110),  # duplicate: nothing
        _diff(15, 16, t + 190, [("99.00000000", "1.00000000")], [], t + 200),  # gap: book invalid
        Snapshot("BTCUSDT", 20, (("98.00000000", "1.00000000"),), (("102.00000000", "1.00000000"),), (t + 300) * 10**6),
        _diff(21, 21, t + 1_190, [("98.00000000", "0.50000000")], [], t + 1_200),  # next day
    ]
    data_dir = tmp_path / "data"
    record(data_dir, events)
    out = tmp_path / "csv"
    assert _export(data_dir, out, "tardis-csv", "--from", "2024-05-01") == 0
    day1 = out / "binance_incremental_book_L2_2024-05-01_BTCUSDT.csv.gz"
    day2 = out / "binance_incremental_book_L2_2024-05-02_BTCUSDT.csv.gz"
    assert sorted(out.iterdir()) == [day1, day2]
    us = lambda ms: str(ms * 1000)  # noqa: E731
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
    assert gzip.decompress(day1.read_bytes()).decode().splitlines() == [
        head,
        # The snapshot with the buffered diff applied; its exchange time is the latest E seen.
        f"binance,BTCUSDT,{us(t - 10)},{us(t + 5)},true,bid,100.1,1",
        f"binance,BTCUSDT,{us(t - 10)},{us(t + 5)},true,bid,100,2",
        f"binance,BTCUSDT,{us(t - 10)},{us(t + 5)},true,ask,101,3.5",
        f"binance,BTCUSDT,{us(t + 90)},{us(t + 100)},false,ask,101,0",
        f"binance,BTCUSDT,{us(t + 90)},{us(t + 100)},false,ask,101.5,4",
        # Gap at t+200: nothing until the snapshot, which is written before the next update.
        f"binance,BTCUSDT,{us(t + 190)},{us(t + 300)},true,bid,98,1",
        f"binance,BTCUSDT,{us(t + 190)},{us(t + 300)},true,ask,102,1",
    ]
    # A new day opens with the whole book (at midnight), then its updates.
    assert gzip.decompress(day2.read_bytes()).decode().splitlines() == [
        head,
        f"binance,BTCUSDT,{us(t + 190)},{us(_MIDNIGHT_MS)},true,bid,98,1",
        f"binance,BTCUSDT,{us(t + 190)},{us(_MIDNIGHT_MS)},true,ask,102,1",
        f"binance,BTCUSDT,{us(t + 1_190)},{us(t + 1_200)},false,bid,98,0.5",
    ]


def test_tardis_csv_starts_with_the_book_at_from_and_drops_a_snapshot_the_book_loses(tmp_path: Path) -> None:
    t = _MIDNIGHT_MS - 60_000
    events: list[Event] = [
        Snapshot("BTCUSDT", 10, (("100.00000000", "2.00000000"),), (("101.00000000", "3.00000000"),), t * 10**6),
        _diff(11, 11, t + 10, [("100.00000000", "1.00000000")], [], t + 20),
        _diff(12, 12, t + 30_010, [("99.00000000", "1.00000000")], [], t + 30_020),
        marker(EventKind.RESTART, "BTCUSDT", (t + 30_030) * 10**6),  # forgets the book
        Snapshot("BTCUSDT", 30, (("90.00000000", "1.00000000"),), (("91.00000000", "1.00000000"),),
                 (t + 30_040) * 10**6),
        _diff(41, 41, t + 30_050, [("90.00000000", "2.00000000")], [], t + 30_060),  # stale snapshot: invalid
    ]
    data_dir = tmp_path / "data"
    record(data_dir, events)
    out = tmp_path / "csv"
    start_ms = t + 30_000
    assert _export(data_dir, out, "tardis-csv", "--from", iso_ms(start_ms)) == 0
    lines = gzip.decompress(next(out.iterdir()).read_bytes()).decode().splitlines()
    assert lines[1:] == [
        f"binance,BTCUSDT,{(t + 10) * 1000},{start_ms * 1000},true,bid,100,1",
        f"binance,BTCUSDT,{(t + 10) * 1000},{start_ms * 1000},true,ask,101,3",
        f"binance,BTCUSDT,{(t + 30_010) * 1000},{(t + 30_020) * 1000},false,bid,99,1",
        # The restart's snapshot never reached an update (the next diff is past it): not written.
    ]


def test_tardis_csv_cannot_be_imported_back() -> None:
    """``acts import`` reads exchange frames (JSON lines), not tardis' CSV: no round trip (docs/EXPORT.md)."""
    from acts.recorder import importer

    assert "incremental_book_L2" not in Path(importer.__file__).read_text()


# --- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "says"), [
    (["--format", "csv", "--out", "x"], "--format 'csv': use one of hftbacktest, tardis-csv"),
    (["--format", "hftbacktest", "--out", "x.npy"], "hftbacktest reads .npz files"),
    (["--format", "hftbacktest", "--out", "nowhere/x.npz"], "does not exist; create it first"),
    (["--format", "hftbacktest", "--out", "x.npz", "--to", "2024-05-01"], "is not after --from"),
    (["--format", "hftbacktest", "--out", "x.npz", "--symbols", "ETH"], "no data for symbol ETHUSDT"),
    (["--format", "hftbacktest", "--out", "x.npz", "--from", "2023-01-01", "--to", "2023-01-02"], "no BTCUSDT data"),
    (["--format", "tardis-csv", "--out", "csv", "--engine", "numba"], "'numba': use one of auto"),
])
def test_bad_arguments_are_one_line_and_exit_2(capture: tuple[Path, list[Event]], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                               args: list[str], says: str) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir, _ = capture
    if "--from" not in args:
        args = [*args, "--from", "2024-05-01"]
    assert main(["export", "--data-dir", str(data_dir), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("acts: error: ") and says in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_hftbacktest_takes_one_symbol(recorded_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _export(recorded_dir, tmp_path / "x.npz", "hftbacktest", "--from", "2024-05-01") == 2
    assert "one symbol per file; got 2 (BTCUSDT, SHIBUSDT)" in capsys.readouterr().err


def test_tardis_csv_writes_a_file_per_symbol_with_exact_tiny_prices(recorded_dir: Path, tmp_path: Path) -> None:
    from decimal import Decimal

    assert _export(recorded_dir, tmp_path, "tardis-csv", "--from", "2024-05-01") == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["binance_incremental_book_L2_2024-05-01_BTCUSDT.csv.gz",
                     "binance_incremental_book_L2_2024-05-01_SHIBUSDT.csv.gz"]
    rows = gzip.decompress((tmp_path / names[1]).read_bytes()).decode().splitlines()[1:]
    prices = {Decimal(row.split(",")[6]) for row in rows}
    # SHIB trades around 0.000025: every price is a whole number of its 1e-8 tick, written exactly.
    assert all(Decimal("0.00001") < p < Decimal("0.0001") and p == p.quantize(Decimal("1e-8")) for p in prices)
    assert all("e" not in row.split(",")[6].lower() for row in rows)  # plain decimals, never exponents


def test_exchange_times_never_go_back_and_moved_rows_are_counted(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    t = _MIDNIGHT_MS - 60_000
    events: list[Event] = [
        # No diff before the snapshot: its exchange time can only be its receive time...
        Snapshot("BTCUSDT", 10, (("100.00000000", "2.00000000"),), (("101.00000000", "3.00000000"),), t * 10**6),
        # ...and this diff's E is before it, so it is written at the snapshot's time, and counted.
        _diff(11, 11, t - 5, [("100.00000000", "1.00000000")], [], t + 10),
        _diff(12, 12, t + 95, [("100.00000000", "4.00000000")], [], t + 110),
    ]
    data_dir = tmp_path / "data"
    record(data_dir, events)
    out = tmp_path / "csv"
    assert _export(data_dir, out, "tardis-csv", "--from", "2024-05-01") == 0
    lines = gzip.decompress(next(out.iterdir()).read_bytes()).decode().splitlines()
    assert [line.split(",")[2] for line in lines[1:]] == [str(t * 1000)] * 3 + [str((t + 95) * 1000)]
    assert "1 rows moved forward to keep times in order" in capsys.readouterr().err


# --- trades -----------------------------------------------------------------------------------


def _trade(trade_id: int, price: str, qty: str, t_ms: int, maker: bool, recv_ms: int) -> Trade:
    return Trade("BTCUSDT", t_ms + 1, trade_id, price, qty, t_ms, maker, recv_ms * 10**6)


def _with_trades(t: int) -> list[Event]:
    return [
        _trade(1, "100.50000000", "0.10000000", t - 3, False, t - 2),  # before the book: written all the same
        Snapshot("BTCUSDT", 10, (("100.00000000", "2.00000000"),), (("101.00000000", "3.00000000"),), t * 10**6),
        _diff(11, 11, t + 10, [("100.00000000", "1.00000000")], [], t + 20),
        _trade(2, "101.00000000", "0.25000000", t + 25, False, t + 30),  # buyer took: buy
        BookTicker("BTCUSDT", 11, "100.00000000", "1.00000000", "101.00000000", "3.00000000", (t + 31) * 10**6),
        _trade(3, "100.00000000", "1.50000000", t + 35, True, t + 40),  # seller took: sell
        _diff(12, 12, t + 50, [], [("101.00000000", "2.75000000")], t + 60),
    ]


def test_hftbacktest_export_has_the_trades_and_hftbacktest_sees_them(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
    from hftbacktest.data.validation import validate_event_order

    t = NEAR_HOUR_MS
    events = _with_trades(t)
    data_dir = tmp_path / "data"
    record(data_dir, events)
    out = tmp_path / "btc.npz"
    assert _export(data_dir, out, "hftbacktest", "--symbols", "BTC", "--from", "2024-05-01") == 0
    assert "4 level rows, 3 trades from 7 events" in capsys.readouterr().err
    data = np.load(out)["data"]
    validate_event_order(data)
    trades = data[(data["ev"] & 0xFF) == export.TRADE_EVENT]
    both = export.EXCH_EVENT | export.LOCAL_EVENT | export.TRADE_EVENT
    assert trades["ev"].tolist() == [both | export.BUY_EVENT, both | export.BUY_EVENT, both | export.SELL_EVENT]
    assert trades["px"].tolist() == [100.5, 101.0, 100.0] and trades["qty"].tolist() == [0.1, 0.25, 1.5]
    assert trades["exch_ts"].tolist() == [(t - 3) * 10**6, (t + 25) * 10**6, (t + 35) * 10**6]  # T
    assert trades["local_ts"].tolist() == [(t - 2) * 10**6, (t + 30) * 10**6, (t + 40) * 10**6]  # receive time

    asset = (BacktestAsset().data(data).linear_asset(1.0).tick_size(TICK).lot_size(0.00001)
             .constant_order_latency(0, 0).no_partial_fill_exchange().risk_adverse_queue_model()
             .trading_value_fee_model(0.0, 0.0).last_trades_capacity(16))
    hbt = HashMapMarketDepthBacktest([asset])
    hbt.elapse(0)  # starts the clock at the first row
    hbt.elapse((t + 45) * 10**6 - hbt.current_timestamp)
    seen = hbt.last_trades(0)
    assert [(bool(ev & export.BUY_EVENT), px, qty) for ev, px, qty in zip(seen["ev"], seen["px"], seen["qty"],
                                                                           strict=True)] == [
        (True, 100.5, 0.1), (True, 101.0, 0.25), (False, 100.0, 1.5)]
    assert hbt.depth(0).best_bid == 100.0  # and the book around them is ACTS's
    hbt.close()


def test_tardis_csv_writes_a_trades_file_beside_the_book(tmp_path: Path) -> None:
    t = _MIDNIGHT_MS - 1_000
    data_dir = tmp_path / "data"
    record(data_dir, _with_trades(t))
    out = tmp_path / "csv"
    assert _export(data_dir, out, "tardis-csv", "--from", "2024-05-01") == 0
    trades = out / "binance_trades_2024-05-01_BTCUSDT.csv.gz"
    assert sorted(out.iterdir()) == [out / "binance_incremental_book_L2_2024-05-01_BTCUSDT.csv.gz", trades]
    us = lambda ms: str(ms * 1000)  # noqa: E731
    assert gzip.decompress(trades.read_bytes()).decode().splitlines() == [
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
        f"binance,BTCUSDT,{us(t - 3)},{us(t - 2)},1,buy,100.5,0.1",
        f"binance,BTCUSDT,{us(t + 25)},{us(t + 30)},2,buy,101,0.25",
        f"binance,BTCUSDT,{us(t + 35)},{us(t + 40)},3,sell,100,1.5",
    ]
    book = gzip.decompress(next(out.glob("*incremental_book_L2*")).read_bytes()).decode().splitlines()
    assert len(book) == 1 + 2 + 1 + 1  # header, the snapshot (with the first diff), two diffs: trades add none


@pytest.mark.parametrize("fmt", ["hftbacktest", "tardis-csv"])
def test_every_engine_writes_the_same_bytes(capture: tuple[Path, list[Event]], tmp_path: Path, fmt: str) -> None:
    data_dir, _ = capture
    written: dict[str, list[tuple[str, bytes]]] = {}
    for engine in ("fast", "python", "auto"):
        out = tmp_path / (f"{engine}.npz" if fmt == "hftbacktest" else engine)
        assert _export(data_dir, out, fmt, "--from", "2024-05-01", "--engine", engine) == 0
        files = sorted(out.iterdir()) if out.is_dir() else [out]
        written[engine] = [(path.name if out.is_dir() else "", _content(path)) for path in files]
    assert written["fast"] and written["fast"] == written["python"] == written["auto"]


def _content(path: Path) -> bytes:
    """What a file holds, without its container's write time (zip entries and gzip headers carry one)."""
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return b"".join(name.encode() + archive[name].tobytes() + str(archive[name].dtype).encode()
                            for name in archive.files)
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
