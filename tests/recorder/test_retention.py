"""What happens to a journal once rolled: deleted when its segments read back, or kept N days (README, "Rolling").

Time is the injected clock's: the tests move it, nothing sleeps."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from acts.recorder import roll
from acts.recorder.roll import Roller, prune_rolled
from acts.storage.segments import write_segments
from tests.exchange.conftest import FakeClock
from tests.recorder.test_roll import _journal

DAY_S = 86_400.0


def _journal_at(data_dir: Path, opened_ns: int) -> Path:
    """A short journal whose name (its open time) is ``opened_ns``."""
    path = _journal(data_dir, 0.5)
    return path.rename(path.with_name(f"{opened_ns}.journal"))


def test_by_default_a_journal_is_deleted_once_its_segments_read_back(tmp_path: Path) -> None:
    journal = _journal(tmp_path, 1)
    paths = Roller(tmp_path).roll(journal)
    assert paths and not journal.exists()
    assert not (tmp_path / "journal" / "rolled").exists() and not (tmp_path / "journal" / "unverified").exists()


def test_keep_days_keeps_rolled_journals_until_they_are_that_old_by_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    roller = Roller(tmp_path, keep_days=2, clock=clock)
    first = _journal_at(tmp_path, clock.time_ns())
    roller.roll(first)
    kept = roller.rolled_dir / first.name
    assert kept.exists()
    clock.advance(2 * DAY_S - 1)
    roller.roll(_journal_at(tmp_path, clock.time_ns()))  # each roll prunes what has grown too old
    assert kept.exists(), "younger than 2 days by the clock: kept"
    clock.advance(1)
    second = _journal_at(tmp_path, clock.time_ns())
    roller.roll(second)
    assert not kept.exists() and (roller.rolled_dir / second.name).exists()
    assert len(list(roller.rolled_dir.iterdir())) == 2


def test_prune_rolled_goes_by_the_open_time_in_the_name(tmp_path: Path) -> None:
    day_ns = int(DAY_S * 1e9)
    for name in (f"{1 * day_ns}.journal", f"{5 * day_ns}.journal", f"{9 * day_ns}.journal", "notes.journal"):
        (tmp_path / name).write_bytes(b"")
    gone = prune_rolled(tmp_path, keep_days=4, now_ns=9 * day_ns)
    assert {p.name for p in gone} == {f"{1 * day_ns}.journal", f"{5 * day_ns}.journal"}  # 4 days or more
    assert {p.name for p in tmp_path.iterdir()} == {f"{9 * day_ns}.journal", "notes.journal"}


def test_segments_that_do_not_read_back_keep_the_journal_aside(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_read(*args: object, **kwargs: object) -> pa.Table:
        raise OSError("Input/output error")

    journal = _journal(tmp_path, 1)
    monkeypatch.setattr(roll.pq, "read_table", failing_read)  # the disk cannot read back what it took
    Roller(tmp_path).roll(journal)
    assert not journal.exists() and (tmp_path / "journal" / "unverified" / journal.name).exists()


def test_verification_reads_counts_from_the_data(tmp_path: Path) -> None:
    from acts.exchange.synthetic import synthetic_events

    events = list(synthetic_events(["BTCUSDT"], 1, seed=3))
    paths = write_segments(tmp_path, "BTCUSDT", events)
    assert roll._unverified(paths, {"BTCUSDT": len(events)}) is None
    assert "read back" in (roll._unverified(paths, {"BTCUSDT": len(events) + 1}) or "")
    assert "read back" in (roll._unverified(paths, {"BTCUSDT": len(events), "ETHUSDT": 3}) or "")
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])  # a torn file
    assert "not readable" in (roll._unverified(paths, {"BTCUSDT": len(events)}) or "")
