"""Symbols as users type them: a full symbol is verbatim, only a bare base asset means ``<base>USDT``."""

from __future__ import annotations

from pathlib import Path

import pytest

from acts.core.errors import InputError
from acts.core.symbols import QUOTES, normalize_symbol, parse_symbols, split_symbol
from acts.exchange.generator import spec_for
from acts.exchange.wire import symbol_info


@pytest.mark.parametrize(("typed", "symbol"), [
    ("btc", "BTCUSDT"), ("ETH", "ETHUSDT"), ("BNB", "BNBUSDT"), ("FDUSD", "FDUSDUSDT"), ("usd", "USDUSDT"),
    ("BTCUSDT", "BTCUSDT"), ("ethbtc", "ETHBTC"), ("ADARUB", "ADARUB"), ("LTCBRL", "LTCBRL"),
    ("OMGUSD", "OMGUSD"), ("BUSDUSD", "BUSDUSD"), ("ZENUSD", "ZENUSD"), ("BTCFDUSD", "BTCFDUSD"),
    ("SHIBDOGE", "SHIBDOGE"), ("BTCTRY", "BTCTRY"), (" solusdc ", "SOLUSDC"),
])
def test_full_symbols_are_verbatim_bare_assets_get_usdt(typed: str, symbol: str) -> None:
    assert normalize_symbol(typed) == symbol


def test_split_prefers_the_longest_quote() -> None:
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD")
    assert split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert split_symbol("ZENUSD") == ("ZEN", "USD")
    assert split_symbol("BTC") == ("BTC", "")
    assert list(QUOTES) == sorted(QUOTES, key=lambda q: (-len(q), q)) and len(set(QUOTES)) == len(QUOTES)


def test_the_local_exchange_uses_the_same_list() -> None:
    info = symbol_info(spec_for("ADARUB"))
    assert (info["baseAsset"], info["quoteAsset"]) == ("ADA", "RUB")
    assert symbol_info(spec_for("LTCBRL"))["baseAsset"] == "LTC"


def test_parse_symbols_keeps_non_usdt_pairs() -> None:
    assert parse_symbols("btc,ETHBTC, adarub") == ["BTCUSDT", "ETHBTC", "ADARUB"]
    with pytest.raises(InputError, match="names no symbol"):
        parse_symbols(",")
    with pytest.raises(InputError, match="letters and digits"):
        normalize_symbol("BTC-USDT")


def test_a_recorded_symbol_without_a_known_quote_is_found_by_the_name_it_was_recorded_under(tmp_path: Path) -> None:
    # Found by the fuzz test: a capture may name SOLTSDT; `--symbols SOLTSDT` normalises to SOLTSDTUSDT.
    from acts.cli import main
    from tests.conftest import import_generated

    capture = tmp_path / "cap.jsonl"
    import_generated(tmp_path, "SOL", minutes=2)
    text = (tmp_path / "cap.jsonl").read_text().replace("SOLUSDT", "SOLTSDT")
    capture.write_text(text)
    other = tmp_path / "other"
    assert main(["import", "--data-dir", str(other), str(capture), "-q"]) == 0
    assert main(["replay", "--data-dir", str(other), "--from", "2024-05-01", "--symbols", "SOLTSDT",
                 "--out", str(tmp_path / "rows.csv"), "-q"]) == 0
    rows = (tmp_path / "rows.csv").read_text().splitlines()
    assert len(rows) > 1 and all(",SOLTSDT," in row for row in rows[1:])
