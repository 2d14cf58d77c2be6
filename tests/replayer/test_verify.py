from __future__ import annotations

from pathlib import Path

from acts.book.sequencer import Gap, Sequencer
from acts.cli import main
from acts.core.events import EventKind, Marker
from acts.replayer.verify import verify
from tests.conftest import record


def test_verify_counts_what_the_sequencer_sees(recorded_dir: Path, recording_events: list) -> None:
    report = verify(recorded_dir, [])
    assert report.ok()
    by_symbol: dict[str, int] = {}
    for hour in report.hours:
        by_symbol[hour.symbol] = by_symbol.get(hour.symbol, 0) + hour.gaps
        assert 0.0 < hour.coverage <= 1.0
    # Independent count: fold each symbol's events through a fresh sequencer.
    for symbol in ("BTCUSDT", "SHIBUSDT"):
        seq = Sequencer()
        gaps = sum(isinstance(seq.apply(e), Gap) for e in recording_events if e.symbol == symbol)
        assert by_symbol[symbol] == gaps > 0
    resyncs = sum(h.resyncs for h in report.hours)
    assert resyncs == sum(isinstance(e, Marker) and e.kind is EventKind.RESYNC for e in recording_events)
    assert [h.symbol for h in report.hours] == ["BTCUSDT", "BTCUSDT", "SHIBUSDT", "SHIBUSDT"]  # 00:54..01:06


def test_verify_flags_corruption_with_exit_code(tmp_path: Path, recording_events: list,
                                                capsys: object) -> None:
    paths = record(tmp_path, recording_events, chunk=4000)
    paths[1].write_bytes(b"PAR1 broken")
    report = verify(tmp_path, ["BTCUSDT", "SHIBUSDT"])
    assert not report.ok() and paths[1].name in report.corrupt[0]
    assert main(["verify", "--data-dir", str(tmp_path)]) == 1
