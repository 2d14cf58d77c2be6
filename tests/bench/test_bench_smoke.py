"""The benchmark's plumbing on tiny data: every row printed and saved (no timing assertions: speed
lives in bench/). Slow-marked: it generates data in a child process and loads the compiled lane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import main

ROWS = ["replay_minute", "replay_second", "replay_event", "replay_reference", "depthcache_minute",
        "depthcache_event", "plain_decode", "segment_decode", "replay_profile", "layout_decode", "storage",
        "replay_rss", "recorder_50", "recorder_200", "recorder_200_hog", "dask"]


@pytest.mark.slow
def test_bench_prints_and_saves_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    argv = ["--levels", "20000", "--depth", "200", "--skip", "recorder,dask", "--work-dir", str(tmp_path / "work"),
            "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert sorted(rows) == sorted(ROWS)
    for key in ROWS:
        assert rows[key]["line"] in table  # the saved line is the printed one
    for key in ("recorder_50", "recorder_200_hog", "dask"):
        assert rows[key]["note"] == "skipped"
    # Targets carry the run's verdict; the replay row checks against both DepthCache and the plain limit.
    names = {c["name"] for c in rows["replay_minute"]["checks"]}
    assert names == {"x DepthCache", "share of plain int64 decode"}
    assert all(isinstance(c["met"], bool) for key in ROWS for c in rows[key]["checks"])
    # The data went to the work folder keyed by the format version, not into the repo.
    work = list((tmp_path / "work").iterdir())
    assert [p.name for p in work if p.is_dir()] == [p.name for p in work if p.name.startswith("fmt")]
    assert rows["storage"]["checks"][0]["value"] < rows["storage"]["values"]["raw JSON"]
    # The profile: measured parts (CPU seconds), and the floor is the replay's CPU over the bench's two cores.
    profile = rows["replay_profile"]["values"]
    assert all(profile[k] > 0 for k in ("CPU s", "decode: pyarrow read", "fold alone (decoded beforehand)"))
    assert profile["floor: CPU / 2 cores, s"] == pytest.approx(profile["CPU s"] / 2)
    assert rows["layout_decode"]["values"]["segments (levels as lists)"] > 0


def test_a_second_run_reuses_the_cached_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import workdir

    calls: list[list[str]] = []
    monkeypatch.setattr(workdir.subprocess, "run", lambda args, **_: calls.append(args) or _fake_generate(args))
    params = {"levels": 10, "depth": 5, "seed": 1}
    first = workdir.ensure_dataset(tmp_path, "main", params)
    assert workdir.ensure_dataset(tmp_path, "main", params) == first and len(calls) == 1
    assert workdir.ensure_dataset(tmp_path, "main", {**params, "seed": 2}) != first and len(calls) == 2
    assert f"fmt{workdir.FORMAT_VERSION}-" in first.name


def _fake_generate(args: list[str]) -> None:
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True)
    (out / "ready.json").write_text("{}")
