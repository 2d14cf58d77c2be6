"""Plug-ins: ``pkg.mod:func`` from the current folder (CLI and API), and installed distributions'
``acts.features`` entry points (a real ``.dist-info`` on ``sys.path``, not a mock)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import acts
from acts.cli import main
from acts.core.errors import UnknownFeatureError
from acts.features.builtin import default_registry
from acts.features.registry import ENTRY_POINT_GROUP
from tests.conftest import import_generated

FEAT = textwrap.dedent("""
    def top_imbalance(view):
        (b, bq), (a, aq) = view.bids(1)[0], view.asks(1)[0]
        return (bq - aq) / (bq + aq)

    def wimb5(view):
        b = sum(q for _, q in view.bids(5)); a = sum(q for _, q in view.asks(5))
        return (b - a) / (b + a)

    RATE = 3
""")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_generated(tmp_path_factory.mktemp("plug"), "BTC")


def _package(folder: Path, name: str = "mypkg") -> Path:
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "feat.py").write_text(FEAT)
    return folder


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current folder holding ``mypkg`` that is not on ``sys.path`` (as for the console script)."""
    folder = _package(tmp_path / "work", "mypkg_here")
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(folder), os.getcwd())])
    yield folder
    for name in [m for m in sys.modules if m == "mypkg_here" or m.startswith("mypkg_here.")]:
        del sys.modules[name]


# --- pkg.mod:func from the current folder ----------------------------------------------------------


def test_a_plugin_in_the_current_folder_resolves_and_leaves_sys_path_alone(here: Path) -> None:
    before = list(sys.path)
    (feature,) = default_registry().resolve(["mypkg_here.feat:top_imbalance"])
    assert feature.name == "mypkg_here.feat:top_imbalance" and feature.fn.__name__ == "top_imbalance"
    assert feature.fn.__module__ == "mypkg_here.feat" and feature.size is None
    assert sys.path == before


def test_api_features_take_a_plugin_from_the_current_folder(here: Path, data_dir: Path) -> None:
    table = acts.open(data_dir).features("BTC", "2024-05-01", None, ["bias5", "mypkg_here.feat:wimb5"])
    assert table.num_rows > 0 and table.schema.names[4:] == ["bias5", "mypkg_here.feat:wimb5"]
    assert table["mypkg_here.feat:wimb5"].to_pylist() == table["bias5"].to_pylist()
    assert any(v is not None for v in table["bias5"].to_pylist())


@pytest.mark.parametrize(("spec", "expected"), [
    ("nopkg.feat:f", "feature 'nopkg.feat:f': no module 'nopkg', neither installed nor in the current folder "),
    ("mypkg_here.nofeat:f", "feature 'mypkg_here.nofeat:f': no module 'mypkg_here.nofeat'"),
    ("mypkg_here.feat:wimb6", "feature 'mypkg_here.feat:wimb6': module mypkg_here.feat has no function 'wimb6'; "
                              "did you mean mypkg_here.feat:wimb5?"),
    ("mypkg_here.feat:RATE", "module mypkg_here.feat has no function (only a value) 'RATE'"),
])
def test_a_missing_module_or_function_is_one_clear_line(here: Path, spec: str, expected: str) -> None:
    with pytest.raises(UnknownFeatureError) as caught:
        default_registry().resolve([spec])
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_a_plugin_whose_own_import_fails_says_so(here: Path) -> None:
    (here / "mypkg_here" / "needs.py").write_text("import surely_not_installed_xyz\n")
    (here / "mypkg_here" / "broken.py").write_text("def f(view:\n")
    with pytest.raises(UnknownFeatureError, match=r"importing mypkg_here.needs failed: ModuleNotFoundError: "
                                                  r"No module named 'surely_not_installed_xyz'; install what"):
        default_registry().resolve(["mypkg_here.needs:f"])
    with pytest.raises(UnknownFeatureError, match=r"importing mypkg_here.broken failed: SyntaxError"):
        default_registry().resolve(["mypkg_here.broken:f"])


def _acts(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (its sys.path starts at bin/, not at ``cwd``)."""
    script = Path(sys.executable).parent / "acts"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_console_script_finds_the_readme_plugin_in_the_current_folder(tmp_path: Path, data_dir: Path) -> None:
    folder = _package(tmp_path / "research")
    out = tmp_path / "rows.csv"
    done = _acts(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--quiet",
                  "--features", "bias10,mypkg.feat:top_imbalance", "--out", str(out)], folder)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert rows and rows[0].keys() >= {"bias10", "mypkg.feat:top_imbalance"}
    assert any(r["mypkg.feat:top_imbalance"] for r in rows)

    missing = _acts(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--quiet",
                     "--features", "mypkg.feat:nope"], folder)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    (line,) = missing.stderr.strip().splitlines()
    assert "feature 'mypkg.feat:nope': module mypkg.feat has no function 'nope'" in line


# --- installed plug-ins: the acts.features entry-point group ------------------------------------------


def _distribution(site: Path, dist: str, package: str, entry_points: str) -> Path:
    """A tiny installed distribution: its package and a ``.dist-info`` with ``entry_points.txt``."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(textwrap.dedent("""
        from acts.features.registry import vector

        def wimb3(view):
            "Weighted imbalance of the top 3 levels."
            b = sum(q for _, q in view.bids(3)); a = sum(q for _, q in view.asks(3))
            return (b - a) / (b + a)

        @vector(2)
        def best_qty(view):
            return [view.bids(1)[0][1] / 1e8, view.asks(1)[0][1] / 1e8]

        def broken_import():
            raise AssertionError("never called")
    """))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"  # as installers name it (PEP 427)
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{textwrap.dedent(entry_points)}")
    return site


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = _distribution(tmp_path / "site", "tiny-feat", "tinyfeat", """
        wimb3 = tinyfeat:wimb3
        best_qty = tinyfeat:best_qty
        gone = tinyfeat.missing:f
    """)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("tinyfeat")]:
        del sys.modules[name]


@pytest.mark.usefixtures("installed")
def test_an_installed_distribution_registers_features_by_name(data_dir: Path) -> None:
    wimb3, best_qty = default_registry().resolve(["wimb3", "best_qty"])
    assert (wimb3.name, wimb3.fn.__module__, wimb3.size) == ("wimb3", "tinyfeat", None)
    assert (best_qty.name, best_qty.size) == ("best_qty", 2)
    table = acts.open(data_dir).features("BTC", "2024-05-01", None, ["bias3", "wimb3"])
    assert table["wimb3"].to_pylist() == table["bias3"].to_pylist()


@pytest.mark.usefixtures("installed")
def test_installed_plugins_are_listed_and_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features"]) == 0
    listed = capsys.readouterr().out
    assert "wimb3" in listed and "tinyfeat:wimb3" in listed and "tiny-feat" in listed
    with pytest.raises(UnknownFeatureError, match=r"unknown feature 'wimb4'. Did you mean 'wimb3'\?.*best_qty"):
        default_registry().resolve(["wimb4"])
    with pytest.raises(UnknownFeatureError, match=r"feature 'gone': loading plug-in tinyfeat.missing:f failed: "
                                                  r"ModuleNotFoundError.*fix or reinstall tiny-feat"):
        default_registry().resolve(["gone"])


def test_builtins_win_and_two_packages_claiming_a_name_is_an_error(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    one = _distribution(tmp_path / "one", "feat-one", "featone", "wimb3 = featone:wimb3\nmid = featone:wimb3\n")
    two = _distribution(tmp_path / "two", "feat-two", "feattwo", "wimb3 = feattwo:wimb3\n")
    monkeypatch.syspath_prepend(str(one))
    monkeypatch.syspath_prepend(str(two))
    (mid,) = default_registry().resolve(["mid"])
    assert mid.fn.__module__ == "acts.features.builtin"
    with pytest.raises(UnknownFeatureError, match=r"feature 'wimb3' is registered by more than one installed "
                                                  r"package: .*feat-one.*feat-two|feat-two.*feat-one"):
        default_registry().resolve(["wimb3"])
