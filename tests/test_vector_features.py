"""Vector features: a declared length k, k floats a row -> a fixed-size list column in Arrow and
Parquet, ``name_0..name_{k-1}`` in CSV, a list in live entries; a wrong length or a failure is null
and reported (the trust rule)."""

from __future__ import annotations

import csv
import math
import textwrap
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import acts
from acts.api import History
from acts.book.book import SCALE
from acts.book.protocol import BookView
from acts.cli import main
from acts.core.errors import FeatureError, UnknownFeatureError
from acts.features.builtin import default_registry
from acts.features.entries import to_entry
from acts.features.pipeline import MinuteSampler
from acts.features.registry import Feature, vector
from acts.replayer.output import format_value, spread_vectors, text_columns
from tests.conftest import NEAR_HOUR_MS


@pytest.fixture(scope="module")
def history(recorded_dir: Path) -> History:
    return acts.open(recorded_dir)


@pytest.fixture
def day(recorded_dir: Path) -> str:
    from acts.core.symbols import iso_ms

    return iso_ms(NEAR_HOUR_MS)[:10]


@vector(3)
def quotes(view: BookView) -> list[float | None]:
    """(best bid, mid, best ask) as floats: the built-ins, element by element."""
    bid, ask = view.best_bid(), view.best_ask()
    mid = None if bid is None or ask is None else (bid + ask) / 2 / SCALE
    return [None if bid is None else bid / SCALE, mid, None if ask is None else ask / SCALE]


def test_a_vector_feature_is_a_fixed_size_list_column_equal_to_the_scalars(history: History, day: str) -> None:
    table = history.features(None, day, None, ["best_bid", "mid", "best_ask", quotes], every="1s")
    assert table.schema.field("quotes").type == pa.list_(pa.float64(), 3)
    assert table.schema.field("mid").type == pa.float64()  # scalars unchanged
    rows = table.to_pylist()
    assert any(not r["valid"] for r in rows) and sum(r["valid"] for r in rows) > 20
    for row in rows:
        if row["valid"]:
            assert row["quotes"] == [row["best_bid"], row["mid"], row["best_ask"]]
        else:
            assert row["quotes"] is None and row["mid"] is None


def test_spread_vectors_gives_the_csv_columns_as_plain_numbers(history: History, day: str) -> None:
    table = history.features(None, day, None, ["mid", quotes], every="1s")
    flat = spread_vectors(table)
    assert flat.schema.names == text_columns(table.schema) == [*table.schema.names[:5], "quotes_0", "quotes_1",
                                                                "quotes_2"]
    assert flat.schema.types[5:] == [pa.float64()] * 3 and flat.schema.field("time").nullable is False
    assert flat["quotes_1"].to_pylist() == table["mid"].to_pylist()  # null where the row is invalid
    (batch,) = spread_vectors(table.slice(0, 10)).to_batches()
    assert isinstance(spread_vectors(table.to_batches()[0]), pa.RecordBatch) and batch.num_columns == 8


def test_feature_objects_declare_sizes_and_refuse_bad_ones() -> None:
    assert Feature("q", quotes, size=3).size == 3 and Feature.of("q", quotes).size == 3
    assert Feature.of("mid", lambda view: 1.0).size is None
    for bad in (0, -1, True, 2.5, 10**6):
        with pytest.raises(UnknownFeatureError, match="a vector size must be a whole number from 1 to"):
            Feature("q", quotes, size=bad)  # type: ignore[arg-type]
    f = Feature("q", quotes, size=3)
    assert f.vector((1, 2.5, float("nan"))) == (1.0, 2.5, None)
    assert f.vector(x for x in (None, math.inf, -0.5)) == (None, None, -0.5)
    with pytest.raises(ValueError, match="returned 2 values; it declares 3"):
        f.vector([1.0, 2.0])
    with pytest.raises(TypeError, match="returned float 1.0, not a sequence of 3 numbers"):
        f.vector(1.0)
    with pytest.raises(TypeError, match="returned an element str 'x', not a number"):
        f.vector([1.0, "x", 2.0])


@vector(3)
def short(view: BookView) -> list[float]:
    return [1.0, 2.0]


def test_a_wrong_length_follows_the_trust_rule(history: History, day: str) -> None:
    with pytest.raises(FeatureError, match=r"feature 'short' failed for BTCUSDT at .*ValueError: returned 2 "
                                           r"values; it declares 3"):
        history.features(None, day, None, ["mid", short])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = history.features(None, day, None, ["mid", short], on_feature_error="null")
    assert table["short"].null_count == table.num_rows
    assert sum(r["mid"] is not None for r in table.to_pylist()) > 10
    said = [str(w.message) for w in caught if "'short' failed" in str(w.message)]
    assert len(said) == 2  # once per feature and symbol (BTC, SHIB)


PLUGIN = textwrap.dedent("""
    def trio(view):
        (b, bq), (a, aq) = view.bids(1)[0], view.asks(1)[0]
        return (b / 1e8, (bq - aq) / (bq + aq), a / 1e8)

    trio.vector_size = 3   # declared by hand: no ACTS import needed
""")


def test_cli_parquet_equals_the_api_and_csv_spreads_the_vector(history: History, recorded_dir: Path, day: str,
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vecpkg").mkdir()
    (tmp_path / "vecpkg" / "__init__.py").write_text("")
    (tmp_path / "vecpkg" / "feat.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["mid", "vecpkg.feat:trio", "bias1"]
    args = ["replay", "--data-dir", str(recorded_dir), "--from", day, "--features", ",".join(names), "--quiet"]
    assert main([*args, "--every", "10s", "--out", str(tmp_path / "o.parquet")]) == 0
    assert main([*args, "--every", "10s", "--out", str(tmp_path / "o.csv")]) == 0
    table = history.features(None, day, None, names, every="10s")
    assert pq.read_table(tmp_path / "o.parquet").equals(table)
    assert table.schema.field("vecpkg.feat:trio").type == pa.list_(pa.float64(), 3)

    with open(tmp_path / "o.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        header, cli = reader.fieldnames, list(reader)
    trio = [f"vecpkg.feat:trio_{i}" for i in range(3)]
    assert header == ["time", "symbol", "valid", "last_book_update", "mid", *trio, "bias1"]
    assert header == text_columns(table.schema)
    assert len(cli) == table.num_rows
    for mine, theirs in zip(table.to_pylist(), cli, strict=True):
        values = mine["vecpkg.feat:trio"] or [None] * 3
        assert [format_value(v) for v in values] == [theirs[c] for c in trio]
        assert format_value(mine["bias1"]) == theirs["bias1"] == theirs[trio[1]]
        assert (mine["vecpkg.feat:trio"] is None) == (not mine["valid"])


def test_live_entries_store_a_vector_as_a_list_under_its_name() -> None:
    from acts.core.events import DepthUpdate, Snapshot

    sampler = MinuteSampler("BTCUSDT", [Feature("mid", default_registry().resolve(["mid"])[0].fn),
                                        Feature.of("quotes", quotes), Feature.of("short", short)],
                            on_feature_error=lambda failure: None)
    sampler.apply(Snapshot("BTCUSDT", 10, (("100.0", "1"),), (("101.0", "2"),), recv_ns=1))
    sampler.apply(DepthUpdate("BTCUSDT", 1_000, 11, 11, (("100.5", "1"),), (), recv_ns=2))
    rows, _ = sampler.apply(DepthUpdate("BTCUSDT", 61_000, 12, 12, (), (("101.0", "0"), ("102.0", "1")), recv_ns=3))
    (row,) = list(rows)
    entry = to_entry(row, ["mid", "quotes", "short"])
    assert entry["quotes"] == [100.5, 100.75, 101.0] and isinstance(entry["quotes"], list)
    assert entry["short"] is None and entry["mid"] == entry["mid_price"] == 100.75


@pytest.mark.slow
def test_live_recording_stores_vectors_and_equals_the_replay(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from acts.sinks import SqliteSink
    from tests.live import run_live

    with caplog.at_level(logging.ERROR, logger="acts.recorder"):
        run = run_live(tmp_path, ["BTCUSDT"], 5, SqliteSink(tmp_path / "entries.sqlite"),
                       extra=[Feature.of("quotes", quotes), Feature.of("vec.mod:short", short)])
    assert run.failure is None and run.live
    valid = [e for e in run.live if e["valid"]]
    assert valid and all(e["quotes"] == [e["best_bid"], e["mid"], e["best_ask"]] for e in valid)
    assert all(e["vec.mod:short"] is None for e in run.live)
    logged = [r.getMessage() for r in caplog.records if "'vec.mod:short' failed" in r.getMessage()]
    assert len(logged) == 1 and "returned 2 values; it declares 3" in logged[0]
    assert run.live == run.replayed(["BTCUSDT"])


def test_the_terminal_table_spreads_a_vector_over_named_columns(recorded_dir: Path, day: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tv.py").write_text("def q(view):\n    return (1.5, None)\nq.vector_size = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["replay", "--data-dir", str(recorded_dir), "--from", day, "--to", day + "T00:58",
                 "--features", "tv:q", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "symbol", "valid", "last_book_update", "tv:q_0", "tv:q_1"]
    assert any(line.split()[-1] == "1.5" for line in lines[1:] if "true" in line)
