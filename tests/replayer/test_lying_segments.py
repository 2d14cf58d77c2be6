"""Segments whose path says one thing and whose footer another are corrupt: replay skips them and
says so, verify exits 1 (issue 13, section 5)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acts.cli import main
from acts.core.errors import CorruptSegmentError
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.replayer.replay import ReplayReport, replay
from acts.storage.segments import read_info
from acts.storage.store import SegmentStore
from tests.conftest import record

FEATURES = default_registry().resolve(["mid"])


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """Three minutes of BTC (about 65,000) and ETH (about 3,000): one segment each."""
    record(tmp_path, list(synthetic_events(["BTCUSDT", "ETHUSDT"], 3)))
    return tmp_path


def _segment(data_dir: Path, symbol: str) -> Path:
    (path,) = (data_dir / "segments" / f"symbol={symbol}").rglob("*.parquet")
    return path


def _eth_mids(data_dir: Path, report: ReplayReport) -> list[float | None]:
    rows = replay(SegmentStore(data_dir), ["ETHUSDT"], FEATURES, 0, None, report)
    return [row.values[0] for row in rows]


def _with_footer(source: Path, target: Path, footer: bytes) -> None:
    """``target``: the events of ``source`` under a footer of our choosing."""
    table = pq.read_table(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({b"acts.segment": footer}), target)


def _footer(path: Path) -> dict[str, object]:
    raw = pq.read_metadata(path).metadata[b"acts.segment"]
    meta: dict[str, object] = json.loads(raw)
    return meta


@pytest.mark.parametrize("keep_name", [True, False], ids=["own-name", "renamed-as-eth"])
def test_btc_segment_in_the_eth_folder_is_skipped_not_replayed_as_eth(data_dir: Path, keep_name: bool) -> None:
    clean = _eth_mids(data_dir, ReplayReport())
    btc, eth = _segment(data_dir, "BTCUSDT"), _segment(data_dir, "ETHUSDT")
    liar = eth.parent / (btc.name if keep_name else btc.name.replace("BTCUSDT-", "ETHUSDT-"))
    shutil.copy(btc, liar)

    report = ReplayReport()
    assert _eth_mids(data_dir, report) == clean  # no BTC price in the ETH rows
    assert all(mid is None or mid < 10_000 for mid in clean) and any(clean)
    assert len(report.problems) == 1 and liar.name in report.problems[0]
    assert "symbol folder says ETHUSDT but its footer says BTCUSDT" in report.problems[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.parent.parent.parent / "symbol=ETHUSDT" / p.parent.name / p.name, "symbol folder says ETHUSDT"),
        (lambda p: p.parent.parent / "date=2024-05-02" / p.name, "date folder says 2024-05-02"),
        (lambda p: p.parent / p.name.replace("T00-", "T05-"), "file name's hour says 20240501T05"),
        (lambda p: p.parent / p.name.replace("BTCUSDT-", "ETHUSDT-"), "file name's symbol says ETHUSDT"),
    ],
    ids=["symbol-folder", "date-folder", "hour-in-name", "symbol-in-name"],
)
def test_a_path_that_disagrees_with_the_footer_is_corrupt(data_dir: Path, change: Callable[[Path], Path],
                                                          message: str) -> None:
    btc = _segment(data_dir, "BTCUSDT")
    moved = change(btc)
    moved.parent.mkdir(parents=True, exist_ok=True)
    btc.rename(moved)
    with pytest.raises(CorruptSegmentError, match=message):
        read_info(moved)


@pytest.mark.parametrize(
    ("footer", "message"),
    [
        (b"{not json", "footer is not JSON"),
        (b"\xff\xfe", "footer is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"format_version": "1"}', "no valid format version"),
        (b'{"format_version": 0}', "no valid format version"),
        (b'{"format_version": 99}', "newer than this ACTS"),
    ],
)
def test_a_footer_that_is_not_a_segment_footer_is_corrupt(data_dir: Path, footer: bytes, message: str) -> None:
    eth = _segment(data_dir, "ETHUSDT")
    _with_footer(eth, eth, footer)
    with pytest.raises(CorruptSegmentError, match=message):
        read_info(eth)


def test_a_footer_with_a_missing_or_mistyped_field_is_corrupt(data_dir: Path) -> None:
    eth = _segment(data_dir, "ETHUSDT")
    meta = _footer(eth)
    for key, bad in (("events", None), ("symbol", 5), ("snapshot_recv_ns", "x"), ("first_recv_ns", True)):
        _with_footer(eth, eth, json.dumps({**meta, key: bad}).encode())
        with pytest.raises(CorruptSegmentError, match=f"footer field '{key}'"):
            read_info(eth)
    _with_footer(eth, eth, json.dumps(meta).encode())
    assert read_info(eth).symbol == "ETHUSDT"  # the same file, footer intact: fine


def test_cli_replay_says_what_it_skipped_and_verify_exits_1(data_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    btc, eth = _segment(data_dir, "BTCUSDT"), _segment(data_dir, "ETHUSDT")
    shutil.copy(btc, eth.parent / btc.name)
    bad_json = eth.parent / (eth.name.rsplit("-", 1)[0] + "-000000000000.parquet")
    _with_footer(eth, bad_json, b"{oops")

    assert main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "mid"]) == 0
    captured = capsys.readouterr()
    assert "ETHUSDT" in captured.out and "Traceback" not in captured.err
    summary = [line for line in captured.err.splitlines() if " rows from " in line]
    assert len(summary) == 1 and "skipped 2 corrupt segments, listed below" in summary[0]
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2
    assert any(btc.name in line and "footer says BTCUSDT" in line for line in skipped)
    assert any(bad_json.name in line and "footer is not JSON" in line for line in skipped)

    assert main(["verify", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("CORRUPT: ") == 2 and "footer says BTCUSDT" in err and "Traceback" not in err


def test_a_clean_replay_says_nothing_was_skipped(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "mid"]) == 0
    err = capsys.readouterr().err
    assert "skipped" not in err
    assert main(["verify", "--data-dir", str(data_dir)]) == 0
