"""A feature is user code: its failure never stops capture, and stops a replay only with one clear line."""

from __future__ import annotations

import csv
import logging
import textwrap
from pathlib import Path

import pytest

from acts.cli import main
from acts.features.registry import Feature
from acts.sinks import SqliteSink
from tests.conftest import imported_capture
from tests.live import run_live

PLUGIN = textwrap.dedent("""
    def boom(view):
        raise ZeroDivisionError("the plug-in divided by zero")

    def text(view):
        return "not a number"
""")


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "plugins" / "fbad"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "feat.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_capture(tmp_path_factory.mktemp("ff"), "BTC,SHIB")


@pytest.mark.usefixtures("plugin")
def test_replay_stops_with_one_line_naming_feature_symbol_and_time(data_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "rows.csv"
    code = main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "mid,fbad.feat:boom",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("acts: error: feature 'fbad.feat:boom' failed for BTCUSDT at 2024-05-01T00:00:00.000Z")
    assert "ZeroDivisionError: the plug-in divided by zero" in line and "--on-feature-error null" in line
    assert list(out.parent.iterdir()) == []  # no half-written output, no .tmp file


@pytest.mark.usefixtures("plugin")
def test_replay_can_null_the_feature_and_go_on(data_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    assert main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features",
                 "mid,fbad.feat:text", "--out", str(out), "--on-feature-error", "null"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert rows and all(r["fbad.feat:text"] == "" for r in rows)
    assert any(r["mid"] for r in rows)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all("returned str" in w for w in warnings)  # once per symbol


@pytest.mark.slow
def test_a_raising_feature_never_stops_capture(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def boom(view: object) -> float:
        raise RuntimeError("plug-in bug")

    with caplog.at_level(logging.ERROR, logger="acts.recorder"):
        run = run_live(tmp_path, ["BTCUSDT"], 5, SqliteSink(tmp_path / "entries.sqlite"),
                       extra=[Feature("boom", boom)])  # type: ignore[arg-type]
    assert run.report.reconnects == 0 and run.failure is None
    assert run.live and all(entry["boom"] is None for entry in run.live)
    assert any(entry["valid"] for entry in run.live)
    logged = [r.getMessage() for r in caplog.records if "plug-in bug" in r.getMessage()]
    assert len(logged) == 1 and "feature 'boom' failed for BTCUSDT" in logged[0]
    assert run.live == run.replayed(["BTCUSDT"])
