"""The fault matrix: every fault users of other collectors report, against the real recorder.

For each: the recorder keeps running, live entries still equal the replay, no feature is
published from an invalid book, the book recovers, and lost update ids show up as gaps.

Every fault of the stream and of REST runs on both markets (``market``): spot, and USD-M futures, where
the exchange serves ``/fapi`` and ``pu`` chains and the recorder, replay and verify judge by the futures
rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acts.core.markets import Market
from acts.replayer.verify import VerifyReport, verify
from acts.sinks import SqliteSink
from tests.live import LiveRun, run_live
from tests.reference import ReferenceRows

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FAST = {"stale_after_s": 1.0, "reconnect_delay_s": 0.2, "rest_timeout_s": 1.0, "backoff_max_s": 1.0}


@pytest.fixture(params=[Market.SPOT, Market.USDM], ids=str)
def market(request: pytest.FixtureRequest) -> Market:
    return Market(request.param)


def _run(tmp_path: Path, market: Market = Market.SPOT, **kwargs: Any) -> LiveRun:
    options = {**FAST, **kwargs}
    return run_live(tmp_path, SYMBOLS, options.pop("seconds", 6), SqliteSink(tmp_path / "entries.sqlite"),
                    market=market, **options)


def _verify(run: LiveRun, symbols: list[str] = SYMBOLS) -> VerifyReport:
    return verify(run.data_dir, symbols, market=run.market)


def _gaps(run: LiveRun) -> int:
    return sum(h.gaps for h in _verify(run).hours)


def _check_against_the_reference(run: LiveRun) -> None:
    """Every replayed row's validity (and mid) is what a naive reference of the rule says, from the raw events."""
    from acts.features.builtin import default_registry

    store = run.store()
    mid = default_registry().resolve(["mid"])
    for symbol in SYMBOLS:
        reference = ReferenceRows(futures=run.market is Market.USDM)
        for path in store.paths(symbol):
            for event in store.events(path, symbol):
                reference.feed(event)
        rows = run.replay_rows([symbol], mid)
        assert [(r.minute_ms, r.valid, r.last_book_update_ms, r.values[0]) for r in rows] == reference.rows


def _check_invariants(run: LiveRun) -> None:
    assert run.live == run.replayed(SYMBOLS)
    _check_against_the_reference(run)
    for entry in run.live:
        if not entry["valid"]:
            assert all(entry[k] is None for k in ("mid_price", "best_bid", "bias10")), entry
    last = {e["symbol"]: e for e in run.live}
    assert set(last) == set(SYMBOLS) and all(e["valid"] for e in last.values()), "the book recovered"
    assert _verify(run).ok()


pytestmark = pytest.mark.slow


def test_disconnect_mid_stream(tmp_path: Path, market: Market) -> None:
    run = _run(tmp_path, market, faults=("drop",))
    _check_invariants(run)
    assert run.report.reconnects >= 1 and _gaps(run) >= 1


def test_stall_without_close_fires_the_stale_timeout(tmp_path: Path, market: Market) -> None:
    # The longest fault here (2.5 s of silence, then a reconnect and a snapshot): 8 s leave a few
    # minutes (1.5 s each at 40x) to close on the recovered book, even on a slow machine.
    run = _run(tmp_path, market, faults=("stall:2.5",), seconds=8)
    _check_invariants(run)
    assert run.report.reconnects >= 1 and _gaps(run) >= 1
    for symbol in SYMBOLS:  # the silent minutes are invalid, live and replayed alike (not valid with a frozen mid)
        valid = [e["valid"] for e in run.live if e["symbol"] == symbol]
        first_valid = valid.index(True)
        assert not all(valid[first_valid:]), f"{symbol}: the outage left no invalid minute"


def test_skipped_update_ids_become_gap_markers(tmp_path: Path, market: Market) -> None:
    run = _run(tmp_path, market, faults=("skip:BTCUSDT:3",))
    _check_invariants(run)
    hours = _verify(run, ["BTCUSDT"]).hours
    assert sum(h.gaps for h in hours) >= 1 and sum(h.resyncs for h in hours) >= 2  # start-up + after the gap
    if market is Market.SPOT:  # futures ids jump by design: a count of missing ids means nothing there
        assert sum(h.missing_ids for h in hours) > 0


def test_duplicates_change_nothing(tmp_path: Path, market: Market) -> None:
    run = _run(tmp_path, market, faults=("duplicate:3",))
    _check_invariants(run)
    assert _gaps(run) == 0 and run.report.reconnects == 0


def test_reordered_events_break_the_chain_honestly(tmp_path: Path, market: Market) -> None:
    run = _run(tmp_path, market, faults=("reorder",))
    _check_invariants(run)
    assert _gaps(run) >= 1


@pytest.mark.parametrize("fault", ["malformed", "unknown"])
def test_bad_messages_are_kept_aside(tmp_path: Path, market: Market, fault: str) -> None:
    run = _run(tmp_path, market, faults=(fault,))
    _check_invariants(run)
    assert run.report.malformed >= 1
    assert list((tmp_path / "quarantine").glob("journal-*.jsonl"))


@pytest.mark.parametrize("failure", ["rest:500:2", "rest:429:1", "rest:418:1", "rest:timeout:1"])
def test_snapshot_failures_are_retried(tmp_path: Path, market: Market, failure: str) -> None:
    run = _run(tmp_path, market, before=(failure,))
    _check_invariants(run)
    assert run.report.snapshots >= len(SYMBOLS)


def test_exchange_restart_with_jumping_ids(tmp_path: Path, market: Market) -> None:
    run = _run(tmp_path, market, faults=("restart:-5000",))
    _check_invariants(run)
    assert _gaps(run) >= 1


def test_connection_is_replaced_before_the_exchange_cuts_it(tmp_path: Path, market: Market) -> None:
    run = _run(tmp_path, market, exchange_kwargs={"max_connection_s": 3.0}, max_connection_age_s=1.0)
    _check_invariants(run)
    assert run.report.handovers >= 1
    assert run.report.reconnects == 0 and _gaps(run) == 0  # overlapping handover: nothing lost


def test_queue_overflow_reconnects_instead_of_spinning(tmp_path: Path, market: Market,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    # A stall (shorter than the stale timeout) whose diffs then arrive in one burst: far more frames
    # at once than the queue holds. The recorder takes every waiting frame at each turn (issue 14), so
    # the queue may never overflow; if python-binance does see it overflow, the recorder reconnects.
    run = _run(tmp_path, market, queue_size=2, seconds=5, faults=("stall:500ms:burst",))
    if any("QueueOverflow" in r.getMessage() for r in caplog.records):
        assert run.report.reconnects >= 1
    else:
        assert run.report.reconnects == 0 and _gaps(run) == 0  # the burst taken whole: nothing lost
    assert run.live == run.replayed(SYMBOLS)
    _check_against_the_reference(run)


def test_disk_full_stops_with_a_clear_error_and_damages_nothing(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from acts.core.errors import StorageError
    from acts.recorder.roll import Roller
    from acts.storage.journal import JournalWriter, list_journals

    real_sync = JournalWriter._sync
    calls = {"n": 0}

    def filling_disk(self: JournalWriter) -> None:
        calls["n"] += 1
        if calls["n"] > 4:  # the header and a few batches fit; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_sync(self)

    monkeypatch.setattr(JournalWriter, "_sync", filling_disk)
    run = _run(tmp_path, allow_failure=True, seconds=8)
    assert isinstance(run.failure, StorageError) and "No space left on device" in str(run.failure)
    (left,) = list_journals(tmp_path / "journal")  # kept as it was for recovery
    monkeypatch.setattr(JournalWriter, "_sync", real_sync)  # space freed
    recovered = Roller(tmp_path).recover()
    assert recovered and verify(tmp_path, SYMBOLS).ok()
    assert not left.exists()


def test_unwritable_data_dir_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acts.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["record", "BTC", "--data-dir", str(blocker / "data"), "--rest-url", "http://127.0.0.1:9/api",
                 "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("acts: error:") and "Traceback" not in err


def test_server_shutdown_notice_hands_over_at_once(tmp_path: Path, market: Market) -> None:
    # The notice and the close come together: the recorder hands over at the notice, or reconnects
    # at the close when the notice is lost with it. Frames between the close and the new
    # subscription may be lost, and are then recorded as gaps.
    # The recorder's own handover is at 23.5 h.
    run = _run(tmp_path, market, exchange_kwargs={"max_connection_s": 2.0})
    _check_invariants(run)
    assert run.report.handovers + run.report.reconnects >= 2 and run.report.malformed == 0  # cut every 2 s


def test_server_shutdown_notice_ahead_of_the_close_loses_nothing(tmp_path: Path, market: Market) -> None:
    run = _run(tmp_path, market, exchange_kwargs={"max_connection_s": 2.5, "shutdown_notice_s": 1.0})
    _check_invariants(run)
    assert run.report.handovers >= 1
    assert run.report.reconnects == 0 and _gaps(run) == 0
