"""The Python API (``acts.open``) against the CLI, the naive reference and the stored events."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import acts
from acts.api import History, parse_every
from acts.book.book import SCALE
from acts.book.protocol import BookView
from acts.core.errors import BadDateError, FeatureError, InputError, UnknownFeatureError, UnknownSymbolError
from acts.core.events import DepthUpdate, Event, EventKind, Snapshot, marker
from acts.core.symbols import iso_minute, iso_ms
from acts.features.pipeline import EVERY_EVENT
from acts.replayer.output import format_value
from acts.storage.store import SegmentStore
from tests.conftest import NEAR_HOUR_MS, record
from tests.reference import ReferenceRows

DAY = iso_ms(NEAR_HOUR_MS)[:10]


@pytest.fixture(scope="module")
def history(recorded_dir: Path) -> History:
    return acts.open(recorded_dir)


@pytest.fixture(scope="module")
def eventful_dir(tmp_path_factory: pytest.TempPathFactory, recording_events: list[Event]) -> Path:
    """The 12-minute recording plus quiet periods (the chain goes on after 7.5 s and 95 s of silence)
    and a recorder restart for SHIB (its book is unknown until the next snapshot)."""
    shifted: list[Event] = []
    for event in recording_events:
        shift_ms = 0
        t = event.event_time_ms if isinstance(event, DepthUpdate) else event.recv_ns // 1_000_000
        if t >= NEAR_HOUR_MS + 180_000:
            shift_ms += 7_500
        if t >= NEAR_HOUR_MS + 420_000 and event.symbol == "BTCUSDT":
            shift_ms += 95_000
        if isinstance(event, DepthUpdate):
            event = dataclasses.replace(event, event_time_ms=event.event_time_ms + shift_ms)
        event = dataclasses.replace(event, recv_ns=event.recv_ns + shift_ms * 1_000_000)
        shifted.append(event)
    restart_ns = (NEAR_HOUR_MS + 300_000) * 10**6
    cut = next(i for i, e in enumerate(shifted) if e.symbol == "SHIBUSDT" and e.recv_ns >= restart_ns)
    shifted.insert(cut, marker(EventKind.RESTART, "SHIBUSDT", shifted[cut].recv_ns))
    data_dir = tmp_path_factory.mktemp("eventful")
    record(data_dir, shifted)
    return data_dir


def _stored(data_dir: Path, symbol: str) -> list[Event]:
    store = SegmentStore(data_dir)
    return [e for path in store.paths(symbol) for e in store.events(path, symbol)]


def _rows(table: pa.Table, symbol: str, feature: str = "mid") -> list[tuple[int, bool, int | None, float | None]]:
    t = table.filter(pa.compute.equal(table["symbol"], symbol))
    return list(zip(t["time"].cast(pa.int64()).to_pylist(), t["valid"].to_pylist(),
                    t["last_book_update"].cast(pa.int64()).to_pylist(), t[feature].to_pylist(), strict=True))


# --- the minute table is the CLI's ------------------------------------------------------------


def test_minute_table_equals_cli_output(history: History, recorded_dir: Path, tmp_path: Path) -> None:
    from acts.cli import main

    names = ["mid", "bias10", "microprice", "depth50"]
    out = tmp_path / "rows.csv"
    assert main(["replay", "--data-dir", str(recorded_dir), "--from", DAY, "--features", ",".join(names),
                 "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        cli = list(csv.DictReader(fh))
    table = history.features(None, DAY, None, names)  # every="1min" is the default
    assert table.schema.names == ["time", "symbol", "valid", "last_book_update", *names]
    assert table.num_rows == len(cli) > 20
    api = table.to_pylist()
    for mine, theirs in zip(api, cli, strict=True):
        assert iso_minute(int(mine["time"].timestamp() * 1000)) == theirs["time"]
        assert mine["symbol"] == theirs["symbol"]
        assert format_value(mine["valid"]) == theirs["valid"]
        last = mine["last_book_update"]
        assert (iso_ms(round(last.timestamp() * 1000)) if last else "") == theirs["last_book_update"]
        for name in names:
            assert format_value(mine[name]) == theirs[name], (name, mine, theirs)


# --- any interval against the naive reference -------------------------------------------------


@pytest.mark.parametrize("every, interval_ms", [("1s", 1000), ("250ms", 250)])
def test_sub_minute_table_equals_naive_reference(eventful_dir: Path, every: str, interval_ms: int) -> None:
    table = acts.open(eventful_dir).features(["BTC", "SHIB"], DAY, None, ["mid"], every=every)
    assert table.column("time").to_pylist() == sorted(table.column("time").to_pylist())
    for symbol in ("BTCUSDT", "SHIBUSDT"):
        reference = ReferenceRows(interval_ms)
        for event in _stored(eventful_dir, symbol):
            reference.feed(event)
        mine = _rows(table, symbol)
        assert mine == reference.rows
        valid = [r[1] for r in mine]
        assert valid.count(False) > 3 and valid.count(True) > 100  # gaps, the restart, and good stretches
    btc = _rows(table, "BTCUSDT")
    carried = [r for r in btc if r[1] and r[2] is not None and r[0] - r[2] > 60_000]
    assert carried, "the 95 s silence is carried as valid rows (the chain goes on after it)"


def test_event_mode_equals_naive_reference_one_row_per_diff(eventful_dir: Path) -> None:
    """Event mode is the interval rule with each diff its own interval: the reference, fed the same
    events with each diff's E replaced by its ordinal and 1-unit intervals, gives the same rows."""
    h = acts.open(eventful_dir)
    for symbol in ("BTCUSDT", "SHIBUSDT"):
        table = h.features(symbol, DAY, None, ["mid"], every="event")
        events = _stored(eventful_dir, symbol)
        diffs = [e for e in events if isinstance(e, DepthUpdate)]
        times = {i + 1: d.event_time_ms for i, d in enumerate(diffs)}
        reference = ReferenceRows(1)
        ordinal = 0
        for event in events:
            if isinstance(event, DepthUpdate):
                ordinal += 1
                event = dataclasses.replace(event, event_time_ms=ordinal)
            reference.feed(event)
        expected = [(times[t], valid, None if last is None else times[last], mid)
                    for t, valid, last, mid in reference.rows]
        assert len(expected) == len(diffs) - 1  # the last diff's row is still open
        assert _rows(table, symbol) == expected
        assert [r[1] for r in expected].count(False) > 3


# --- streaming --------------------------------------------------------------------------------


def test_iter_features_batches_concatenate_to_the_table(history: History) -> None:
    names = ["mid", "bias10"]
    table = history.features(["BTC", "SHIB"], DAY, None, names, every="1s")
    batches = list(history.iter_features(["BTC", "SHIB"], DAY, None, names, every="1s", batch_rows=100))
    assert all(isinstance(b, pa.RecordBatch) and 0 < b.num_rows <= 100 for b in batches)
    assert sum(b.num_rows == 100 for b in batches) == len(batches) - 1
    assert pa.Table.from_batches(batches).equals(table)


def test_iter_features_streams_without_replaying_everything_first(history: History) -> None:
    calls = []

    def counted(view: BookView) -> float | None:
        calls.append(1)
        return view.bid_depth

    batches = history.iter_features("BTC", DAY, None, [counted], every="100ms", batch_rows=50)
    first = next(batches)
    assert first.num_rows == 50
    seen = len(calls)
    rest = sum(b.num_rows for b in batches)
    assert seen < 200 < len(calls) and rest > 5000


# --- features: callables, plug-ins, failures ----------------------------------------------------


def test_callables_and_plugins_are_named_columns(history: History, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "feat.py").write_text(
        "def wimb5(view):\n"
        "    b = sum(q for _, q in view.bids(5)); a = sum(q for _, q in view.asks(5))\n"
        "    return (b - a) / (b + a)\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def my_mid(view: BookView) -> float | None:
        bid, ask = view.best_bid(), view.best_ask()
        return None if bid is None or ask is None else (bid + ask) / 2 / SCALE

    table = history.features("BTC", DAY, None, ["mid", my_mid, "mypkg.feat:wimb5", "bias5"], every="5s")
    assert table.schema.names[4:] == ["mid", "my_mid", "mypkg.feat:wimb5", "bias5"]
    assert all(t == pa.float64() for t in table.schema.types[4:])
    assert table["my_mid"].to_pylist() == table["mid"].to_pylist()
    assert table["mypkg.feat:wimb5"].to_pylist() == table["bias5"].to_pylist()


def test_a_failing_feature_raises_or_is_null(history: History) -> None:
    def broken(view: BookView) -> float:
        raise ZeroDivisionError("boom")

    with pytest.raises(FeatureError, match="'broken' failed for BTCUSDT at .*ZeroDivisionError: boom"):
        history.features("BTC", DAY, None, ["mid", broken])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = history.features("BTC", DAY, None, ["mid", broken], on_feature_error="null")
    assert table["broken"].null_count == table.num_rows and table["mid"].null_count < table.num_rows
    assert len([w for w in caught if "broken" in str(w.message)]) == 1  # once per feature and symbol


# --- books ---------------------------------------------------------------------------------------


def _reference_book_at(events: list[Event], at_ms: int, depth: int) -> tuple[bool, int, list, list]:
    reference = ReferenceRows()
    for event in events:
        t = event.event_time_ms if isinstance(event, DepthUpdate) else event.recv_ns // 1_000_000
        if t > at_ms:
            break
        reference.feed(event)
    valid = reference.mode != "none"

    def ints(side: str) -> list[list[int]]:
        return [[int(p * SCALE), int(q * SCALE)] for p, q in reference.book.top(side, depth)] if valid else []

    return valid, reference.position, ints("bids"), ints("asks")


def test_book_at_equals_a_plain_fold_of_the_events(eventful_dir: Path) -> None:
    h = acts.open(eventful_dir)
    events = _stored(eventful_dir, "SHIBUSDT")
    minute_rows = _rows(h.features("SHIB", DAY, None, ["mid"], every="1s"), "SHIBUSDT")
    invalid = [t for t, valid, _, _ in minute_rows if not valid][:3]
    moments = [NEAR_HOUR_MS + k * 37_003 for k in range(1, 13)] + [t + 500 for t in invalid]
    states = set()
    for at in moments:
        book = h.book("SHIB", iso_ms(at), depth=7)
        valid, position, bids, asks = _reference_book_at(events, at, 7)
        assert (book.valid, book.bids.tolist(), book.asks.tolist()) == (valid, bids, asks), iso_ms(at)
        assert book.last_update_id == (position if valid else None)
        assert book.bids.shape == (len(bids), 2) and book.bids.dtype == np.int64 and book.time_ms == at
        assert not book.bids.flags.writeable
        states.add(valid)
    assert states == {True, False}
    full = h.book("SHIB", iso_ms(moments[0]), depth=None)
    assert len(full.bids) > 7 and np.allclose(full.bids_float(), full.bids / SCALE)


def test_books_follow_the_features_rows(history: History) -> None:
    table = history.features("BTC", DAY, None, ["best_bid", "best_ask"], every="10s")
    books = list(history.books("BTC", DAY, None, every="10s", depth=3))
    assert len(books) == table.num_rows
    for book, row in zip(books, table.to_pylist(), strict=True):
        assert book.time == row["time"] + timedelta(seconds=10)  # the book at the end of the row's interval
        assert book.valid == row["valid"]
        if book.valid:
            assert (book.bids_float()[0, 0], book.asks_float()[0, 0]) == (row["best_bid"], row["best_ask"])
            assert book.bids.shape == book.asks.shape == (3, 2)
        else:
            assert book.bids.shape == (0, 2) and book.last_update_id is None
    events = list(history.books("BTC", iso_ms(NEAR_HOUR_MS + 60_000), iso_ms(NEAR_HOUR_MS + 62_000), every="event"))
    assert 15 <= len(events) <= 25 and all(b.time_ms == b.last_book_update_ms for b in events if b.valid)


# --- raw events ------------------------------------------------------------------------------------


def test_events_round_trip_the_exact_strings(history: History, recording_events: list[Event]) -> None:
    start, end = NEAR_HOUR_MS + 110_000, NEAR_HOUR_MS + 130_000
    table = history.events("SHIB", iso_ms(start), iso_ms(end))
    assert table.schema.field("price").type == pa.decimal128(38, 18)
    assert table.schema.field("recv_time").type == pa.timestamp("ns", tz="UTC")
    original = [e for e in recording_events
                if e.symbol == "SHIBUSDT" and start * 10**6 <= e.recv_ns < end * 10**6]
    assert any(isinstance(e, Snapshot) for e in original)
    rows = table.drop_columns(["recv_time", "event_time"]).to_pydict()
    recv = table["recv_time"].cast(pa.int64()).to_pylist()
    etime = table["event_time"].cast(pa.int64()).to_pylist()
    expected = []
    for n, event in enumerate(original):
        levels: list[tuple[str | None, str | None, str | None]] = []
        if isinstance(event, (DepthUpdate, Snapshot)):
            levels = [("bid", p, q) for p, q in event.bids] + [("ask", p, q) for p, q in event.asks]
        for side, price, qty in levels or [(None, None, None)]:
            ids = ((event.event_time_ms, event.first_update_id, event.final_update_id) if isinstance(event, DepthUpdate)
                   else (None, None, event.last_update_id) if isinstance(event, Snapshot) else (None, None, None))
            expected.append((n, event.recv_ns, event.kind.name.lower(), *ids, side, price, qty))
    got = list(zip(rows["event"], recv, rows["kind"], etime, rows["first_update_id"], rows["final_update_id"],
                   rows["side"], rows["price"], rows["qty"], strict=True))
    assert len(got) == len(expected) > 1000
    for mine, theirs in zip(got, expected, strict=True):
        assert mine[:7] == theirs[:7]
        for value, text in zip(mine[7:], theirs[7:], strict=True):
            assert (value is None and text is None) or (value == Decimal(text) and
                                                       value.normalize() == Decimal(text).normalize())


# --- input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ms", [("1s", 1000), ("100ms", 100), ("5s", 5000), ("1min", 60_000),
                                      ("1h", 3_600_000), ("1d", 86_400_000), (" 250 ms ", 250),
                                      ("event", EVERY_EVENT), (timedelta(seconds=2), 2000)])
def test_parse_every(text: str | timedelta, ms: int) -> None:
    assert parse_every(text) == ms


@pytest.mark.parametrize("text", ["0s", "1.5s", "-1s", "1 minute", "s", "", "1m", timedelta(microseconds=5)])
def test_parse_every_refuses(text: str | timedelta) -> None:
    with pytest.raises(InputError, match="every="):
        parse_every(text)


def test_bad_input_raises_a_clear_error(history: History) -> None:
    with pytest.raises(UnknownSymbolError, match="no data for symbol ETHUSDT; recorded symbols: BTCUSDT, SHIBUSDT"):
        history.features("ETH", DAY)
    with pytest.raises(InputError, match="every='2 fortnights' is not an interval"):
        history.features("BTC", DAY, every="2 fortnights")
    with pytest.raises(UnknownFeatureError, match="unknown feature 'bais10'. Did you mean 'bias10'"):
        history.iter_features("BTC", DAY, None, ["mid", "bais10"])  # checked before the first batch
    with pytest.raises(UnknownFeatureError, match="requested twice"):
        history.features("BTC", DAY, None, ["mid", "mid"])
    with pytest.raises(BadDateError, match="end '2024-04-01' is not after start"):
        history.features("BTC", DAY, "2024-04-01")
    with pytest.raises(BadDateError, match="is not a date"):
        history.book("BTC", "yesterday")
    with pytest.raises(InputError, match="on_feature_error='skip'"):
        history.features("BTC", DAY, on_feature_error="skip")
    with pytest.raises(InputError, match="give one symbol"):
        history.book("BTC,SHIB", DAY)
    with pytest.raises(UnknownSymbolError):
        history.events("DOGE", DAY)


def test_acts_open_is_lazy() -> None:
    code = ("import sys, acts.core.errors, acts; assert 'acts.api' not in sys.modules and 'pyarrow' not in "
            "sys.modules; acts.open; assert 'acts.api' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("every", ["event", "100ms"])
def test_engines_agree_at_any_interval(eventful_dir: Path, every: str) -> None:
    h = acts.open(eventful_dir)
    fast = h.features(None, DAY, None, ["mid", "bias10"], every=every, engine="fast")
    assert fast.equals(h.features(None, DAY, None, ["mid", "bias10"], every=every, engine="python"))
