"""``acts migrate``: version 1 segments become version 2 with the same events, names and replay bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from acts.cli import main
from acts.core.events import Event
from acts.storage.segments import read_events, read_info, write_segments
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "data" / "golden"


def _segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "segments").rglob("*.parquet"))


def _replay(data_dir: Path, out: Path) -> bytes:
    assert main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features",
                 "mid,bias10,bias50,microprice", "--out", str(out), "--quiet"]) == 0
    return out.read_bytes()


def _v1_dir(data_dir: Path, events: list[Event]) -> Path:
    for symbol in sorted({e.symbol for e in events}):
        write_segments(data_dir, symbol, [e for e in events if e.symbol == symbol], format_version=1)
    return data_dir


def test_migrate_keeps_events_names_and_replay_bytes(tmp_path: Path, recording_events: list[Event],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = _v1_dir(tmp_path / "d", recording_events)
    before_paths = _segments(data)
    before_events = [list(read_events(p)) for p in before_paths]
    before_csv = _replay(data, tmp_path / "before.csv")
    assert {read_info(p).format_version for p in before_paths} == {1}

    assert main(["migrate", str(data), "--dry-run"]) == 0
    assert f"would migrate {len(before_paths)} format 1 segments" in capsys.readouterr().out
    assert {read_info(p).format_version for p in _segments(data)} == {1}  # a dry run changes nothing

    assert main(["migrate", "--data-dir", str(data)]) == 0
    assert f"migrated {len(before_paths)} format 1 segments" in capsys.readouterr().out
    after_paths = _segments(data)
    assert after_paths == before_paths  # content-named: the same names, replaced in place
    assert {read_info(p).format_version for p in after_paths} == {2}
    assert [list(read_events(p)) for p in after_paths] == before_events
    assert _replay(data, tmp_path / "after.csv") == before_csv
    assert not [p for p in data.rglob("*") if p.name.startswith(".tmp")]

    # Idempotent: a second run finds nothing to do and leaves the bytes alone.
    contents = {p: p.read_bytes() for p in after_paths}
    assert main(["migrate", str(data)]) == 0
    assert f"migrated 0 format 1 segments (0.0 MB -> 0.0 MB); {len(after_paths)} already current" in \
        capsys.readouterr().out
    assert {p: p.read_bytes() for p in _segments(data)} == contents


def test_migrated_v1_equals_v2_written_directly(tmp_path: Path, recording_events: list[Event]) -> None:
    v1 = _v1_dir(tmp_path / "a", recording_events)
    assert main(["migrate", str(v1)]) == 0
    direct = tmp_path / "b"
    for symbol in sorted({e.symbol for e in recording_events}):
        write_segments(direct, symbol, [e for e in recording_events if e.symbol == symbol])
    a, b = _segments(v1), _segments(direct)
    assert [p.relative_to(v1) for p in a] == [p.relative_to(direct) for p in b]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_the_golden_v1_fixtures_migrate(tmp_path: Path) -> None:
    data = tmp_path / "golden"
    shutil.copytree(GOLDEN, data)
    before = {p.relative_to(data): list(read_events(p)) for p in _segments(data)}
    assert before and {read_info(p).format_version for p in _segments(data)} == {1}
    assert main(["migrate", str(data)]) == 0
    assert {p.relative_to(data): list(read_events(p)) for p in _segments(data)} == before


def test_a_corrupt_file_is_reported_and_left_alone(tmp_path: Path, recording_events: list[Event],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = _v1_dir(tmp_path / "d", recording_events)
    bad = _segments(data)[0]
    bad.write_bytes(b"not parquet")
    assert main(["migrate", str(data)]) == 1
    out = capsys.readouterr()
    assert "CORRUPT" in out.err and bad.name in out.err
    assert bad.read_bytes() == b"not parquet"
    assert {read_info(p).format_version for p in _segments(data) if p != bad} == {2}


def test_no_data_folder_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("acts: error:") and err.count("\n") == 1


def test_migrate_refuses_object_storage_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--data-dir", "s3://bucket/acts"]) == 2
    err = capsys.readouterr().err
    assert "local folder" in err and "Traceback" not in err
