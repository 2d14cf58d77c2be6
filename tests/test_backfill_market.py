"""``acts backfill --market``: each market's entries in its own store, the one ``acts record --market`` writes.

BTCUSDT is recorded as spot and as USD-M futures over the same minutes, so both backfills write entries of
the same (symbol, minute) keys: in one store, the second would replace the first."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from acts.cli import main
from acts.core.markets import Market
from acts.exchange.synthetic import synthetic_events
from acts.sinks import SpoolingSink, SqliteSink
from acts.wiring import build_sink
from tests.conftest import record
from tests.test_futures import T0, S, futures_capture


@pytest.fixture(scope="module")
def both_markets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("both")
    futures_capture(data / "capture.txt")
    assert main(["import", "--market", "usdm", "--data-dir", str(data), "-q", str(data / "capture.txt")]) == 0
    record(data, list(synthetic_events([S], 5, seed=3, start_ms=T0, snapshot_every_s=120)))
    return data


def _entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    sink = SqliteSink(path)
    try:
        return sink.read()
    finally:
        sink.close()


def _backfill(data: Path, *market: str) -> None:
    assert main(["backfill", "--from", "2024-05-01", "--data-dir", str(data), "-q", *market]) == 0


def test_spot_and_futures_backfills_never_overwrite_each_other(both_markets: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(both_markets, data)
    spot_db, usdm_db = data / "entries.sqlite", data / "entries-usdm.sqlite"

    _backfill(data, "--market", "usdm")
    futures = _entries(usdm_db)
    assert futures and not spot_db.exists()
    _backfill(data)
    spot = _entries(spot_db)
    assert _entries(usdm_db) == futures  # the spot backfill left the futures entries alone
    _backfill(data, "--market", "usdm")
    assert _entries(spot_db) == spot  # and the reverse
    assert _entries(usdm_db) == futures  # idempotent, as ever

    # The same keys, different books: one store would have kept only the last backfill's.
    keys = {(e["symbol"], e["time"]) for e in spot} & {(e["symbol"], e["time"]) for e in futures}
    assert len(keys) >= 3
    mids = {m: {(e["symbol"], e["time"]): e["mid"] for e in entries} for m, entries in
            (("spot", spot), ("usdm", futures))}
    assert all(mids["spot"][k] != mids["usdm"][k] for k in keys if mids["spot"][k] is not None)

    # Each store holds what a data dir of that market alone backfills: nothing of the other crept in.
    for market, db, args in ((Market.USDM, usdm_db, ["--market", "usdm"]), (Market.SPOT, spot_db, [])):
        alone = tmp_path / f"alone-{market}"
        shutil.copytree(data / "segments" / ("market=usdm" if market is Market.USDM else f"symbol={S}"),
                        alone / "segments" / ("market=usdm" if market is Market.USDM else f"symbol={S}"))
        _backfill(alone, *args)
        assert _entries(db) == _entries(alone / db.name)


def test_a_spot_backfill_of_futures_only_data_says_pass_market(both_markets: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "futures"
    shutil.copytree(both_markets / "segments" / "market=usdm", data / "segments" / "market=usdm")
    assert main(["backfill", "--from", "2024-05-01", "--data-dir", str(data), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("acts: error:") and err.count("\n") == 1 and "--market usdm" in err
    assert not (data / "entries.sqlite").exists()


def test_live_and_backfill_name_the_same_store_per_market(tmp_path: Path) -> None:
    """The one function both commands build their sink with: spot keeps its names, futures add the market."""
    assert build_sink(tmp_path, None).path == tmp_path / "entries.sqlite"  # type: ignore[union-attr]
    assert build_sink(tmp_path, None, Market.USDM).path == tmp_path / "entries-usdm.sqlite"  # type: ignore[union-attr]
    uri = "mongodb://127.0.0.1:9/?directConnection=true"  # never reached: pymongo connects lazily
    for market, collection, spool in ((Market.SPOT, "minute_entries", "entries-spool.sqlite"),
                                      (Market.USDM, "minute_entries_usdm", "entries-spool-usdm.sqlite")):
        sink = build_sink(tmp_path, uri, market)
        assert isinstance(sink, SpoolingSink)
        assert sink.primary._coll.name == collection  # type: ignore[attr-defined]
        assert sink.spool.path == tmp_path / "spool" / spool  # type: ignore[attr-defined]
        sink.close()
