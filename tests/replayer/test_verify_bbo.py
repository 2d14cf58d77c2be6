"""``acts verify``'s audit columns (``bbo_checked``, ``bbo_mismatched``) and ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acts.cli import main
from acts.core.events import BookTicker, DepthUpdate, Snapshot
from acts.core.timeunits import HOUR_MS
from acts.replayer.verify import COLUMNS, VerifyReport, _SymbolVerifier

S = "BTCUSDT"
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS  # an hour's start


def diff(final: int, at_ms: int, bid: str = "1.00") -> DepthUpdate:
    return DepthUpdate(S, at_ms, final, final, ((bid, "1"),), (("9.00", "1"),), at_ms * 1_000_000)


def tick(u: int, at_ms: int, bid: str = "1.00") -> BookTicker:
    return BookTicker(S, u, bid, "1", "9.00", "1", at_ms * 1_000_000)


def test_checks_and_mismatches_are_counted_in_their_hour() -> None:
    events = [
        Snapshot(S, 9, (("0.50", "1"),), (("10.00", "1"),), T0 * 1_000_000),
        diff(10, T0 + 1000),
        tick(10, T0 + 1001),  # after its diff: checked now
        tick(11, T0 + 1500),  # before its diff: pending
        diff(11, T0 + 2000),  # ... checked here
        tick(12, T0 + 2500, bid="1.50"),  # wrong: mismatch when 12 arrives
        diff(12, T0 + HOUR_MS + 1000),  # next hour: the mismatch is counted there, and the time before is invalid
        Snapshot(S, 12, (("1.00", "1"),), (("9.00", "1"),), (T0 + HOUR_MS + 2000) * 1_000_000),
        tick(12, T0 + HOUR_MS + 3000),  # checked against the new snapshot
    ]
    verifier = _SymbolVerifier(S, VerifyReport(), None, None)
    verifier.feed(events)
    first, second = verifier.hours[T0], verifier.hours[T0 + HOUR_MS]
    assert (first.bbo_checked, first.bbo_mismatched, first.snapshots, first.events) == (2, 0, 1, 6)
    assert (second.bbo_checked, second.bbo_mismatched, second.snapshots) == (1, 1, 1)
    assert second.invalid_ms == HOUR_MS - 1000 and first.invalid_ms == 0  # the diff that found it proves nothing


def _cells(line: str) -> list[str]:
    return line.split()


def test_json_is_the_table(recorded_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--data-dir", str(recorded_dir), "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["corrupt"] == [] and len(report["hours"]) == 4
    assert all(list(hour) == [c.key for c in COLUMNS] for hour in report["hours"])
    assert {"bbo_checked", "bbo_mismatched", "coverage", "missing_ids"} <= set(report["hours"][0])

    assert main(["verify", "--data-dir", str(recorded_dir), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == " ".join(c.header for c in COLUMNS).split()
    for line, hour in zip(lines[1:], report["hours"], strict=True):
        shown = [f"{v:.2%}" if k == "coverage" else f"{v:.1f}" if k == "invalid_s" else str(v)
                 for k, v in hour.items()]
        assert _cells(line) == shown
