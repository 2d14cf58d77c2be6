"""A USD-M futures capture, end to end: import --market usdm, replay (both engines), verify, the API.

The capture is generated here: a stale snapshot, a pu chain whose U jump, a lost diff (gap) and a
snapshot that resyncs the book. Validity must follow the futures rules: rows valid where the pu
chain holds, invalid across the gap; under spot rules the same diffs would all be gaps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import acts
from acts.cli import main
from acts.core.errors import InputError
from acts.core.markets import Market
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT
from acts.replayer.replay import ReplayReport, replay
from acts.replayer.verify import verify
from acts.storage.store import SegmentStore

S = "BTCUSDT"
T0 = 1_714_568_400_000  # 2024-05-01 13:00:00 UTC, ms
GAP_AT = 150  # the diff lost at 13:02:30
RESYNC_AT = 210  # a fresh snapshot at 13:03:30


def _line(recv_ms: int, frame: dict) -> str:
    return f"{recv_ms * 1_000_000} {json.dumps(frame)}\n"


def _diff(k: int, first: int, final: int, pu: int) -> dict:
    """Diff number ``k`` (one a second); its levels move so that the features change."""
    e = T0 + 1000 * k + 300
    bid = f"{64000 + k % 7}.{k % 10}0"
    ask = f"{64010 + k % 5}.00"
    return {"e": "depthUpdate", "E": e, "T": e - 2, "s": S, "U": first, "u": final, "pu": pu,
            "b": [[bid, f"{1 + k % 3}.500"], [f"{63990 + k % 4}.00", "0" if k % 6 == 0 else "2.000"]],
            "a": [[ask, f"{2 + k % 4}.250"]]}


def _snapshot(last: int) -> dict:
    return {"lastUpdateId": last, "E": T0, "T": T0, "symbol": S,
            "bids": [["64000.00", "5.000"], ["63990.00", "1.000"]], "asks": [["64010.00", "4.000"]]}


def futures_capture(path: Path) -> tuple[int, int]:
    """Write the capture; return (u before the lost diff, pu of the diff after it)."""
    lines, u, kept_u, next_pu = [], 1000, 0, 0
    finals: list[int] = []
    for k in range(300):
        first = u + 1 + k % 3  # futures U jump past the previous u
        final = first + 4
        frame = _diff(k, first, final, u)
        recv = frame["E"] + 5
        if k == 0:
            lines.append(_line(recv - 1, _snapshot(900)))  # too old: the first diff starts after it
        if k == 1:
            lines.append(_line(recv - 1, _snapshot(finals[0] - 2)))  # the buffered first diff bridges it
        if k == RESYNC_AT:
            lines.append(_line(recv - 1, _snapshot(first + 1)))  # this diff bridges U <= L <= u
        if k == GAP_AT:
            kept_u = u  # lost in transit: the next diff's pu names it
        else:
            lines.append(_line(recv, frame))
        if k == GAP_AT + 1:
            next_pu = frame["pu"]
        finals.append(final)
        u = final
    path.write_text("".join(lines))
    return kept_u, next_pu


@pytest.fixture(scope="module")
def usdm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("usdm")
    futures_capture(data / "capture.txt")
    assert main(["import", "--market", "usdm", "--data-dir", str(data), "-q", str(data / "capture.txt")]) == 0
    return data


def test_import_without_market_refuses_a_futures_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    futures_capture(tmp_path / "capture.txt")
    assert main(["import", "--data-dir", str(tmp_path / "data"), "-q", str(tmp_path / "capture.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("acts: error:") and err.count("\n") == 1
    assert "these are USD-M futures diffs (pu field): pass --market usdm" in err
    assert not list((tmp_path / "data").rglob("*.parquet"))


def test_futures_segments_are_filed_under_their_market(usdm_dir: Path) -> None:
    assert list((usdm_dir / "segments" / "market=usdm" / f"symbol={S}").rglob("*.parquet"))
    assert not (usdm_dir / "segments" / f"symbol={S}").exists()


def _rows(data: Path, engine: str, names: list[str], interval_ms: int = 60_000) -> list:
    store = SegmentStore(data, market=Market.USDM)
    features = default_registry().resolve(names)
    return list(replay(store, [S], features, T0, None, ReplayReport(), engine=engine, interval_ms=interval_ms))


@pytest.mark.parametrize("names", [["mid", "best_bid", "bias10"], ["mid", "microprice", "depth10"]],
                         ids=["compiled lane closes rows", "lane follows, python samples"])
def test_valid_where_the_pu_chain_holds_invalid_across_the_gap(usdm_dir: Path, names: list[str]) -> None:
    fast, slow = _rows(usdm_dir, "fast", names), _rows(usdm_dir, "python", names)
    assert fast == slow
    valid = {(row.minute_ms - T0) // 60_000: row.valid for row in slow}
    # 13:00 and 13:01 on the pu chain; 13:02 broken by the lost diff; 13:03 resynced by the snapshot.
    assert valid == {0: True, 1: True, 2: False, 3: True}
    assert all(v is not None for row in slow if row.valid for v in row.values)


def test_the_compiled_lane_follows_the_pu_chain(usdm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast engine hands only the unusual events to Python: most diffs stay in the compiled lane."""
    from acts.replayer import lane_input

    handed: list[int] = []
    real = lane_input.FuturesGroup.event

    def counted(self: lane_input.FuturesGroup, i: int) -> object:
        handed.append(i)
        return real(self, i)

    monkeypatch.setattr(lane_input.FuturesGroup, "event", counted)
    rows = _rows(usdm_dir, "fast", ["mid", "bias10"])
    # Python sees the start, the diffs of the invalid stretch (buffered until the resync) and minute closes;
    # none of the ~140 diffs that continue the pu chain before the gap.
    assert rows and handed[:3] == [0, 1, 2] and not any(10 <= i <= 140 for i in handed)


def test_every_event_rows_match_between_engines(usdm_dir: Path) -> None:
    fast = _rows(usdm_dir, "fast", ["mid", "bias10"], EVERY_EVENT)
    slow = _rows(usdm_dir, "python", ["mid", "bias10"], EVERY_EVENT)
    assert fast == slow and len(fast) > 250
    invalid = [row for row in slow if not row.valid]
    # Invalid: the row the diff after the lost one closes (opened by the last diff kept), then every row
    # until the one in which the resync snapshot arrived (valid: the next diff bridges it).
    late = [(row.minute_ms - T0 - 300) // 1000 for row in invalid if row.minute_ms > T0 + 10_000]
    assert late == [GAP_AT - 1, *range(GAP_AT + 1, RESYNC_AT - 1)] and len(invalid) - len(late) <= 1


def test_verify_reports_by_the_futures_rules(usdm_dir: Path, tmp_path: Path) -> None:
    kept_u, next_pu = futures_capture(tmp_path / "again.txt")
    (hour,) = verify(usdm_dir, [S], market=Market.USDM).hours
    assert (hour.gaps, hour.stale_snapshots, hour.snapshots) == (1, 1, 3)
    assert hour.missing_ids == next_pu - kept_u > 0
    assert 0.7 < hour.coverage < 0.95  # the minute from the gap to the resync is invalid, the rest proven


def test_cli_replay_and_verify_take_the_market(usdm_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    assert main(["replay", "--market", "usdm", "--data-dir", str(usdm_dir), "--from", "2024-05-01", "--out",
                 str(out), "-q"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and [line.split(",")[2] for line in lines[1:]] == ["true", "true", "false", "true"]
    assert main(["verify", "--market", "usdm", "--data-dir", str(usdm_dir), "-q"]) == 0
    assert S in capsys.readouterr().out
    # Without --market the futures data is not read as spot: one line naming the market.
    assert main(["replay", "--data-dir", str(usdm_dir), "--from", "2024-05-01"]) == 2
    err = capsys.readouterr().err
    assert "USD-M futures data of BTCUSDT exists: pass --market usdm" in err and err.count("\n") == 1
    assert main(["verify", "--market", "coin", "--data-dir", str(usdm_dir)]) == 2


def test_the_api_opens_a_market(usdm_dir: Path) -> None:
    history = acts.open(usdm_dir, market="usdm")
    assert history.symbols() == [S] and acts.open(usdm_dir).symbols() == []
    table = history.features(S, "2024-05-01T13:00", "2024-05-01T13:04", ["mid"])
    assert table.column("valid").to_pylist() == [True, True, False, True]
    with pytest.raises(InputError, match="unknown market 'coinm'; choose one of: spot, usdm"):
        acts.open(usdm_dir, market="coinm")


def test_export_judges_by_the_futures_rules(usdm_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--market", "usdm", "--format", "tardis-csv", "--data-dir", str(usdm_dir), "--from",
                 "2024-05-01", "--out", str(tmp_path / "csv"), "-q"]) == 0
    # The stale snapshot, the bridged one and the resync load a book; the stale one and the gap clear it.
    assert "3 books loaded, 2 cleared (book invalid)" in capsys.readouterr().err
