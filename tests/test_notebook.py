"""examples/research.ipynb runs top to bottom, in a kernel on this venv's Python, and shows real results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import acts
from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "research.ipynb"


def _kernel(tmp_path: Path) -> KernelManager:
    """A kernel started from ``sys.executable``: CI's fresh ``.venv``, never whatever ``python3`` kernel
    the machine has registered (a kernel spec of our own, in a folder only this manager reads)."""
    spec = tmp_path / "kernels" / "acts-venv"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ACTS venv", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="acts-venv", kernel_spec_manager=specs)


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, nbformat.NotebookNode], Path]:
    """The notebook as a user runs it (from a scratch folder), plus one cell that names the kernel's Python."""
    tmp = tmp_path_factory.mktemp("notebook")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    probe = nbformat.v4.new_code_cell("import sys; print(sys.executable)")
    probe.metadata["tags"] = ["probe"]
    nb.cells.append(probe)
    NotebookClient(nb, km=_kernel(tmp), timeout=120, resources={"metadata": {"path": str(tmp)}}).execute()
    by_tag = {cell.metadata["tags"][0]: cell for cell in nb.cells if cell.metadata.get("tags")}
    return by_tag, tmp / "acts-research"


def test_the_kernel_is_this_venv(executed: tuple[dict[str, nbformat.NotebookNode], Path]) -> None:
    cells, _ = executed
    assert _text(cells["probe"]).strip() == sys.executable


def test_the_features_table_is_the_api_s(executed: tuple[dict[str, nbformat.NotebookNode], Path]) -> None:
    cells, work = executed
    assert "symbols: ['BTCUSDT', 'SHIBUSDT']" in _text(cells["open"])
    # The same request from this process (rows and validity do not depend on the features).
    again = acts.open(work / "data").features(["BTC", "SHIB"], "2024-05-01", None, ["mid"], every="1s")
    valid = sum(again["valid"].to_pylist())
    assert again.num_rows >= 2 * 590 and 0 < valid < again.num_rows  # ~10 minutes a symbol, with gaps
    lines = _text(cells["features"]).splitlines()
    assert lines == [f"rows: {again.num_rows}", f"valid: {valid}",
                     "columns: time, symbol, valid, last_book_update, mid, bias10, microprice, top_imbalance"]
    shown = cells["features"].outputs[-1]["data"]["text/plain"]  # the cell's value: its first 3 rows
    assert shown.count("'symbol'") == 3 and "'top_imbalance'" in shown


def test_the_study_table(executed: tuple[dict[str, nbformat.NotebookNode], Path]) -> None:
    cells, _ = executed
    lines = _text(cells["study"]).splitlines()
    assert lines[:2] == ["ic rows: 27", "ic columns: feature, horizon, symbol, ic, n"]  # 3 features x 3 horizons x
    table = [line.split() for line in lines[2:]]                                       # (2 symbols + pooled)
    assert len(table) == 27
    assert {(row[0], row[1], row[2]) for row in table} == {
        (f, h, s) for f in ("bias10", "microprice", "top_imbalance") for h in ("1", "5", "15")
        for s in ("BTCUSDT", "SHIBUSDT", "pooled")}
    ics = [float(row[3]) for row in table if len(row) == 5]
    assert len(ics) >= 20 and all(-1 <= ic <= 1 for ic in ics)
    assert all(int(row[-1]) > 100 for row in table)  # samples per row: valid seconds, not a handful


def test_the_pictures_are_written_and_shown(executed: tuple[dict[str, nbformat.NotebookNode], Path]) -> None:
    cells, work = executed
    assert _text(cells["plot"]).startswith("invalid spans shaded: ")
    assert int(_text(cells["plot"]).split(": ")[1]) >= 1  # the gaps show
    for name, tag in (("features.png", "plot"), ("study.png", "plot-study")):
        png = (work / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
        assert any("image/png" in out.get("data", {}) for out in cells[tag].outputs)
