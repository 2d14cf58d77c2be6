from __future__ import annotations

import csv
from pathlib import Path

import pytest

from acts.cli import main
from tests.conftest import import_generated


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded capture imported into segments: the offline path, no network."""
    return import_generated(tmp_path_factory.mktemp("demo"), "BTC,SHIB")


def test_demo_prints_features(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--data-dir", str(demo_dir), "--from", "2024-05-01", "--features", "mid,bias10"]) == 0
    out = capsys.readouterr().out
    assert "BTCUSDT" in out and "SHIBUSDT" in out and "bias10" in out


def test_replay_to_csv_and_parquet_agree(demo_dir: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    args = ["replay", "--data-dir", str(demo_dir), "--from", "2024-05-01T00:01", "--symbols", "btc",
            "--features", "bias10,mid,depth50"]
    assert main([*args, "--out", str(tmp_path / "o.csv")]) == 0
    assert main([*args, "--out", str(tmp_path / "o.parquet")]) == 0
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    table = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert [r["time"] for r in rows] == ["2024-05-01T00:01:00Z", "2024-05-01T00:02:00Z"]
    assert list(rows[0]) == ["time", "symbol", "valid", "last_book_update", "bias10", "mid", "depth50"]
    assert [float(r["bias10"]) for r in rows] == [t["bias10"] for t in table]
    # Parquet keeps the types: times are timestamp[ms, UTC], as in the API's table.
    schema = pq.read_schema(tmp_path / "o.parquet")
    assert str(schema.field("time").type) == str(schema.field("last_book_update").type) == "timestamp[ms, tz=UTC]"
    assert [t["time"].isoformat() for t in table] == ["2024-05-01T00:01:00+00:00", "2024-05-01T00:02:00+00:00"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-13-01"], "is not a date"),
        (["--from", "2024-05-01", "--to", "2024-04-01"], "is not after"),
        (["--from", "2024-05-01", "--features", "bais10"], "Did you mean 'bias10'"),
        (["--from", "2024-05-01", "--symbols", "DOGE"], "no data for symbol DOGEUSDT"),
        (["--from", "2025-01-01"], "recorded dates: 2024-05-01"),
        (["--from", "2024-05-01", "--out", "x.txt"], "use a .parquet or .csv"),
    ],
)
def test_bad_input_is_one_clear_line(demo_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                     message: str) -> None:
    assert main(["replay", "--data-dir", str(demo_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("acts: error:")


def test_empty_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--data-dir", str(tmp_path), "--from", "2024-05-01"]) == 2
    assert "record or import data first" in capsys.readouterr().err


def test_imported_capture_replays_like_the_recording_it_came_from(demo_dir: Path, tmp_path: Path) -> None:
    from acts.exchange.synthetic import synthetic_events
    from tests.conftest import record

    record(tmp_path / "d", list(synthetic_events(["BTCUSDT", "SHIBUSDT"], 3)))
    args = ["replay", "--from", "2024-05-01", "--features", "mid,bias50,microprice"]
    assert main([*args, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "a.csv")]) == 0
    assert main([*args, "--data-dir", str(demo_dir), "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.slow
def test_live_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job: local exchange -> record -> live entries -> replay, compared."""
    assert main(["demo", "--data-dir", str(tmp_path), "--seconds", "6", "--symbols", "BTC,SHIB"]) == 0
    captured = capsys.readouterr()
    assert "reproduces the live entries exactly: YES" in captured.err
    assert "SHIBUSDT" in captured.out


def test_unknown_command_and_missing_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert main(["replay"]) == 2
    assert "--from" in capsys.readouterr().err


def test_record_unknown_symbol_suggests_the_closest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acts.exchange.feed import GeneratorFeed
    from acts.exchange.server import ExchangeThread

    with ExchangeThread(GeneratorFeed(["BTCUSDT", "ETHUSDT"]), speed=5) as ex:
        code = main(["record", "ETHH", "--data-dir", str(tmp_path), "--rest-url", ex.rest_url,
                     "--stream-url", ex.stream_url, "--duration", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "ETHHUSDT is not listed by the exchange; did you mean ETHUSDT?" in err
    assert "Traceback" not in err


def test_exchange_fault_spec_errors_are_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exchange", "--port", "0", "--fault", "explode@3"]) == 2
    assert "unknown kind 'explode'" in capsys.readouterr().err


# --- --every: the API's rows, as text ---------------------------------------------------------


@pytest.mark.parametrize("every", ["100ms", "1s", "5s", "1min", "1h", "event"])
def test_replay_every_equals_the_api(demo_dir: Path, tmp_path: Path, every: str) -> None:
    import pyarrow.parquet as pq

    import acts
    from acts.api import parse_every
    from acts.replayer.output import time_text

    args = ["replay", "--data-dir", str(demo_dir), "--from", "2024-05-01T00:01", "--to", "2024-05-01T00:02:30",
            "--features", "mid,bias10", "--every", every, "--quiet"]
    assert main([*args, "--out", str(tmp_path / "o.parquet")]) == 0
    assert main([*args, "--out", str(tmp_path / "o.csv")]) == 0
    api = acts.open(demo_dir).features(None, "2024-05-01T00:01", "2024-05-01T00:02:30", ["mid", "bias10"],
                                       every=every)
    assert pq.read_table(tmp_path / "o.parquet").equals(api)
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    iso = time_text(parse_every(every))
    assert [r["time"] for r in rows] == [iso(t) for t in api["time"].cast("int64").to_pylist()]
    if every in ("1min", "1h"):
        assert all(r["time"].endswith(":00Z") for r in rows)
    else:  # milliseconds under a minute, and in event mode
        assert all(len(r["time"]) == len("2024-05-01T00:00:01.500Z") for r in rows)
    if every == "100ms":
        assert rows[2]["time"] == "2024-05-01T00:01:00.100Z" and len(rows) == 2 * 900  # BTC and SHIB


@pytest.mark.parametrize("every", ["0s", "banana", "1 fortnight", "-1s"])
def test_bad_every_is_one_line(demo_dir: Path, capsys: pytest.CaptureFixture[str], every: str) -> None:
    assert main(["replay", "--data-dir", str(demo_dir), "--from", "2024-05-01", "--every", every]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"acts: error: --every '{every}' is not an interval")


# --- progress: stderr only, plain lines when stderr is not a terminal, none with --quiet -------------


@pytest.mark.parametrize("command", [
    ["replay", "--from", "2024-05-01", "--features", "mid"],
    ["verify"],
    ["backfill", "--from", "2024-05-01"],
])
def test_progress_lines_on_stderr_and_quiet(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            command: list[str]) -> None:
    data = demo_dir
    if command[0] == "backfill":  # it writes entries into the data folder: work on a copy
        import shutil

        data = tmp_path / "copy"
        shutil.copytree(demo_dir, data)
    args = [*command, "--data-dir", str(data)]
    assert main(args) == 0
    loud = capsys.readouterr()
    assert f"{command[0]}: done, " in loud.err
    assert main([*args, "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == loud.out  # progress never touches stdout
    assert ": done, " not in quiet.err
    assert [line for line in loud.err.splitlines() if ": done, " not in line] == quiet.err.splitlines()


def test_import_and_generate_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = tmp_path / "c.jsonl"
    assert main(["generate", "--out", str(capture), "--minutes", "1", "--symbols", "BTC"]) == 0
    assert "generate: done, 1 min" in capsys.readouterr().err
    assert main(["import", str(capture), "--data-dir", str(tmp_path / "d")]) == 0
    err = capsys.readouterr().err
    assert f"import: done, {capture.stat().st_size / 1024:.1f} KiB" in err
    assert main(["import", str(capture), "--data-dir", str(tmp_path / "e"), "--quiet"]) == 0
    assert main(["generate", "--out", str(capture), "--minutes", "1", "--symbols", "BTC", "-q"]) == 0
    assert "done" not in capsys.readouterr().err
