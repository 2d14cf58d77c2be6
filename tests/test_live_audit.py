"""The audit live: a recorder with ``bookTicker`` checks its book against the exchange's best bid/ask; a wrong
ticker from the local exchange (``bad_ticker``) makes it resync, and verify and replay see what live saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acts.core.events import EventKind, Marker, ResyncReason
from acts.core.symbols import StreamKind
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT
from acts.replayer.replay import ReplayReport, replay
from acts.replayer.verify import verify
from acts.sinks import SqliteSink
from acts.storage.store import SegmentStore
from tests.live import run_live


@pytest.mark.slow
def test_a_wrong_bookticker_live_resyncs_and_verify_counts_it(tmp_path: Path) -> None:
    symbol = "BTCUSDT"
    run = run_live(tmp_path, [symbol], 6, SqliteSink(tmp_path / "entries.sqlite"),
                   streams=(StreamKind.DEPTH, StreamKind.BOOK_TICKER), faults=(f"bad_ticker:{symbol}",))
    store = SegmentStore(tmp_path)
    events = [e for p in store.paths(symbol) for e in store.events(p, symbol)]
    reasons = [json.loads(e.detail).get("reason") for e in events if isinstance(e, Marker)
               and e.kind is EventKind.RESYNC]
    assert reasons.count(ResyncReason.BBO_MISMATCH) == 1, reasons  # the recorder saw it and asked for a snapshot
    hours = verify(tmp_path, [symbol]).hours
    assert sum(h.bbo_mismatched for h in hours) == 1
    assert sum(h.bbo_checked for h in hours) > 20  # the exchange's tickers line up with its diffs
    assert run.live == run.replayed([symbol])  # live minute rows equal replayed ones across the resync
    # A row after every diff: once valid, the book is invalid only from the mismatch to the snapshot, the same
    # in both engines.
    features = default_registry().resolve(["mid"])
    reports = {engine: ReplayReport() for engine in ("python", "fast")}
    rows = {engine: list(replay(store, [symbol], features, 0, None, reports[engine], engine=engine,
                                interval_ms=EVERY_EVENT)) for engine in ("python", "fast")}
    assert rows["fast"] == rows["python"]
    assert [(r.bbo_mismatched, r.bbo_checked > 20) for r in reports.values()] == [(1, True)] * 2
    valid = [r.valid for r in rows["python"]]
    first = valid.index(True)
    episodes = sum(a and not b for a, b in zip(valid[first:], valid[first + 1 :], strict=False))
    # At most one invalid stretch, ended by the snapshot the recorder fetched. It holds no row when that
    # snapshot came back before the next diff (a row is sampled just before a diff): timing, not a rule.
    assert episodes <= 1 and valid[-1]
