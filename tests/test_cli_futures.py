"""``--market`` of ``acts record`` and ``acts exchange``: USD-M futures through the CLI."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from acts.cli import main
from acts.core.markets import Market
from acts.exchange.feed import GeneratorFeed
from acts.exchange.futures import FuturesFeed
from acts.exchange.server import ExchangeThread


@pytest.mark.parametrize("args, says", [
    (["exchange", "--port", "0", "--market", "coinm"], "'coinm' is not one of 'spot', 'usdm'"),
    (["record", "BTC", "--market", "usdm", "--snapshot-limit", "7", "--duration", "1"],
     "--snapshot-limit 7: USD-M futures answer depth for limit 5, 10, 20, 50, 100, 500, 1000 only"),
    (["record", "BTC", "--market", "nope", "--duration", "1"], "'nope' is not one of 'spot', 'usdm'"),
])
def test_bad_market_arguments_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                           says: str) -> None:
    full = [*args, "--data-dir", str(tmp_path)] if args[0] == "record" else args
    assert main(full) == 2
    err = capsys.readouterr().err
    assert says in err and err.startswith("acts: error:") and err.count("\n") == 1
    assert not (tmp_path / "journal").exists()  # refused before anything was recorded


def test_record_a_futures_symbol_spot_does_not_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feed = FuturesFeed(GeneratorFeed(["BTCUSDT"], start_ms=time.time_ns() // 1_000_000))
    with ExchangeThread(feed, speed=20, market=Market.USDM) as ex:
        code = main(["record", "BTC", "--market", "usdm", "--data-dir", str(tmp_path), "--rest-url", ex.rest_url,
                     "--stream-url", ex.stream_url, "--duration", "2"])
        spot = main(["record", "BTC", "--data-dir", str(tmp_path / "spot"), "--rest-url",
                     ex.rest_url.removesuffix("/fapi") + "/api", "--stream-url", ex.stream_url, "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 0 and "0 reconnects" in err
    # Futures entries go to the futures store, as acts backfill --market usdm writes them (test_backfill_market).
    assert (tmp_path / "entries-usdm.sqlite").exists() and not (tmp_path / "entries.sqlite").exists()
    frames = int(err.split("recorded ", 1)[1].split(" frames")[0])
    assert frames > 10
    assert spot == 2  # a spot recorder finds no spot API on a futures exchange: one clear line
