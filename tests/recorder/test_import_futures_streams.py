"""``acts import --market usdm`` of a USD-M capture with ``@aggTrade`` and ``@bookTicker`` frames: the aggTrades
are USD-M's trades, stored and given back as received; a spot import counts aggTrade lines as another stream."""

from __future__ import annotations

import json
from pathlib import Path

from acts.core.events import BookTicker, Trade, to_wire
from acts.core.markets import Market
from acts.recorder.importer import import_jsonl
from acts.storage.store import SegmentStore

S = "BTCUSDT"
T0 = 1_714_568_400_000  # 2024-05-01 13:00:00 UTC, ms


def _capture(path: Path) -> list[dict]:
    lines, frames = [], []
    for k in range(20):
        e = T0 + 100 * k
        diff = {"e": "depthUpdate", "E": e, "T": e - 1, "s": S, "U": 10 * k + 11, "u": 10 * k + 15, "pu": 10 * k + 5,
                "b": [["64000.10", f"{1 + k}.000"]], "a": [["64000.20", "2.000"]]}
        agg = {"e": "aggTrade", "E": e, "s": S, "a": 700 + k, "p": "64000.10", "q": "0.125", "f": 3 * k,
               "l": 3 * k + k % 3, "T": e - 1, "m": k % 2 == 0}
        ticker = {"e": "bookTicker", "u": 10 * k + 15, "E": e, "T": e - 1, "s": S, "b": "64000.10",
                  "B": f"{1 + k}.000", "a": "64000.20", "A": "2.000"}
        frames.append(agg)
        # The first aggTrade comes before the first diff, as it may live: the streams are not in step.
        for i, frame in enumerate(((diff, {"stream": "btcusdt@aggTrade", "data": agg}, ticker) if k else
                                   ({"stream": "btcusdt@aggTrade", "data": agg}, diff, ticker))):
            lines.append(f"{(e + 3) * 1_000_000 + i} {json.dumps(frame)}\n")
    path.write_text("".join(lines))
    return frames


def test_a_futures_import_stores_agg_trades_as_trades(tmp_path: Path) -> None:
    sent = _capture(tmp_path / "capture.txt")
    report = import_jsonl([tmp_path / "capture.txt"], tmp_path / "data", market=Market.USDM)
    assert report.trades == {S: 20} and report.book_tickers == {S: 20} and not report.other_streams
    store = SegmentStore(tmp_path / "data", market=Market.USDM)
    events = [e for p in store.paths(S) for e in store.events(p, S)]
    assert [to_wire(e) for e in events if isinstance(e, Trade)] == sent
    tickers = [e for e in events if isinstance(e, BookTicker)]
    assert len(tickers) == 20 and all(t.event_time_ms is not None for t in tickers)


def test_a_spot_import_skips_agg_trades(tmp_path: Path) -> None:
    capture = tmp_path / "capture.txt"
    _capture(capture)
    # Spot lines only, but for the aggTrades: a spot capture with Binance spot's own @aggTrade stream.
    lines = [line for line in capture.read_text().splitlines(keepends=True) if "aggTrade" in line]
    capture.write_text("".join(lines))
    report = import_jsonl([capture], tmp_path / "data")
    assert report.other_streams == {"aggTrade": 20} and not report.trades
