"""``acts study`` and ``acts plot`` on generated data; the invalid spans the plot shades."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from acts.cli import main
from acts.research.plot import INVALID_GID, draw_features, invalid_spans
from tests.conftest import import_generated

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three minutes of BTC and SHIB, imported from a generated capture."""
    return import_generated(tmp_path_factory.mktemp("data"), "BTC,SHIB")


@pytest.fixture(scope="module")
def gappy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five minutes of BTC with lost update ids, so some 1 s intervals are invalid."""
    data_dir = tmp_path_factory.mktemp("gappy")
    capture = data_dir / "cap.jsonl"
    assert main(["generate", "--out", str(capture), "--symbols", "BTC", "--minutes", "5", "--gap-rate", "0.003"]) == 0
    assert main(["import", "--data-dir", str(data_dir), str(capture)]) == 0
    return data_dir


def _one_line_error(code: int, capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("acts: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def test_study_prints_the_table(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["study", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "bias10,microprice",
                 "--horizons", "1,5", "--every", "1s"])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line.split() for line in out.strip().splitlines()]
    assert lines[0] == ["feature", "horizon", "symbol", "IC", "n"]
    rows = lines[1:]
    # 2 features x 2 horizons x (2 symbols + pooled)
    assert len(rows) == 12
    assert {r[2] for r in rows} == {"BTCUSDT", "SHIBUSDT", "pooled"}
    by_key = {(r[0], r[1], r[2]): r for r in rows}
    for feature in ("bias10", "microprice"):
        for h in ("1", "5"):
            n = [int(by_key[(feature, h, s)][-1]) for s in ("BTCUSDT", "SHIBUSDT", "pooled")]
            assert n[0] > 100 and n[2] == n[0] + n[1]  # 3 minutes at 1 s: most intervals are samples
            assert -1.0 <= float(by_key[(feature, h, "pooled")][3]) <= 1.0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_study_out_writes_the_table_and_deciles(data_dir: Path, tmp_path: Path, suffix: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"study{suffix}"
    code = main(["study", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "bias10",
                 "--horizons", "1,3", "--every", "5s", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    read = pacsv.read_csv if suffix == ".csv" else pq.read_table
    table = read(out)
    assert table.column_names == ["feature", "horizon", "symbol", "ic", "n"]
    assert table.num_rows == 2 * 3
    deciles = read(tmp_path / f"study.deciles{suffix}")
    assert deciles.num_rows == 2 * 3 * 10
    # Every sample falls in one decile.
    ns = {(r["horizon"], r["symbol"]): r["n"] for r in table.to_pylist()}
    for (h, symbol), n in ns.items():
        assert sum(r["n"] for r in deciles.to_pylist() if r["horizon"] == h and r["symbol"] == symbol) == n


def test_study_png(data_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "ic.png"
    assert main(["study", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "bias10",
                 "--horizons", "1,2", "--every", "5s", "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 10_000


def test_plot_writes_a_png_with_shaded_gaps(gappy_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import acts

    out = tmp_path / "fig.png"
    code = main(["plot", "--data-dir", str(gappy_dir), "--from", "2024-05-01", "--symbols", "BTC",
                 "--features", "mid,bias10", "--every", "1s", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 20_000
    table = acts.open(gappy_dir).features("BTC", "2024-05-01", None, ["mid", "bias10"], every="1s")
    valid = np.asarray(table.column("valid").to_pylist())
    assert not valid.all() and valid.any()  # the capture has gaps
    spans = invalid_spans(table.column("time").cast(pa.int64()).to_numpy(), valid, 1000)
    assert f"2 panels, 1 symbol, {len(spans)} invalid span" in err
    # The same spans are shaded in the figure, on each panel.
    plot = draw_features(table, ["mid", "bias10"], 1000)
    assert plot.spans == {"BTCUSDT": spans}
    for ax in plot.figure.axes:
        shaded = [p for p in ax.patches if (p.get_gid() or "").startswith(INVALID_GID)]
        assert len(shaded) == len(spans)
        assert len(ax.lines) == 1


def test_invalid_spans() -> None:
    t = np.arange(10) * 1000
    valid = np.array([True, False, False, True, True, False, True, True, True, False])
    # Adjacent invalid rows merge; a row covers its interval; a trailing invalid row covers its own.
    assert invalid_spans(t, valid, 1000) == [(1000, 3000), (5000, 6000), (9000, 10000)]
    assert invalid_spans(t, np.ones(10, bool), 1000) == []
    assert invalid_spans(np.array([], np.int64), np.array([], bool), 1000) == []
    # A missing interval between two invalid rows keeps them apart.
    assert invalid_spans(np.array([0, 2000]), np.array([False, False]), 1000) == [(0, 1000), (2000, 3000)]
    # Event rows: up to the next row's time.
    assert invalid_spans(np.array([0, 5, 7, 20]), np.array([True, False, False, True]), None) == [(5, 20)]
    assert invalid_spans(np.array([0, 5]), np.array([True, False]), None) == [(5, 5)]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["study", "--horizons", "0"], ["horizon 0"]),
        (["study", "--horizons", "1,x"], ["--horizons '1,x'"]),
        (["study", "--features", "nope"], ["'nope'"]),
        (["study", "--every", "2 weeks"], ["--every '2 weeks'"]),
        (["study", "--out", "t.txt"], ["--out t.txt", ".csv or .parquet"]),
        (["study", "--to", "2024-04-01"], ["--to 2024-04-01 is not after"]),
        (["study", "--symbols", "ETH"], ["ETHUSDT"]),
        (["plot", "--out", "f.jpg"], ["--out f.jpg", ".png"]),
        (["plot", "--out", "f.png", "--features", "bogus"], ["'bogus'"]),
        (["plot", "--out", "f.png", "--from", "2030-01-01"], ["2030"]),
    ],
)
def test_bad_input(data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], needles: list[str]) -> None:
    base = [args[0], "--data-dir", str(data_dir), "--from", "2024-05-01", *args[1:]]
    _one_line_error(main(base), capsys, *needles)


def test_without_matplotlib(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    base = ["--data-dir", str(data_dir), "--from", "2024-05-01"]
    _one_line_error(main(["plot", *base, "--out", str(tmp_path / "f.png")]), capsys, "install acts[plot]")
    _one_line_error(main(["study", *base, "--png", str(tmp_path / "s.png")]), capsys, "install acts[plot]")
    assert not (tmp_path / "f.png").exists()


VECTOR_PLUGIN = """
def top(view):
    (b, bq), (a, aq) = view.bids(1)[0], view.asks(1)[0]
    return ((bq - aq) / (bq + aq), (a - b) / 1e8)

top.vector_size = 2
"""


def test_study_and_plot_take_a_vector_feature_element_by_element(data_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vecstudy.py").write_text(VECTOR_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    common = ["--data-dir", str(data_dir), "--from", "2024-05-01", "--every", "5s", "--symbols", "BTC"]
    code = main(["study", *common, "--features", "vecstudy:top", "--horizons", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    studied = {line.split()[0] for line in out.strip().splitlines()[1:]}
    assert studied == {"vecstudy:top_0", "vecstudy:top_1"}
    png = tmp_path / "v.png"
    assert main(["plot", *common, "--features", "vecstudy:top,mid", "--out", str(png)]) == 0
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert "3 panels" in capsys.readouterr().err
