"""One naming everywhere: live entries name features as replay and the API do, seed names kept as aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from acts.core.errors import UnknownFeatureError
from acts.features.builtin import default_registry
from acts.features.entries import SEED_ALIASES, to_entry
from acts.features.pipeline import MinuteRow
from acts.features.registry import RESERVED, Feature, check_names
from acts.sinks import SqliteSink

ROW = MinuteRow("BTCUSDT", 60_000, True, 119_500, 120_000_123_000, (100.5, 0.25, (1.0, None), None))
NAMES = ["mid", "bias10", "mypkg.feat:vec", "mypkg.feat:wimb5"]


def test_an_entry_names_features_as_registered_and_keeps_the_seed_aliases() -> None:
    entry = to_entry(ROW, NAMES)
    assert entry == {
        "symbol": "BTCUSDT", "time": "1970-01-01T00:01:00Z", "valid": True,
        "last_book_update": "1970-01-01T00:01:59.500Z", "current_time": "1970-01-01T00:02:00.000123Z",
        "mid": 100.5, "bias10": 0.25, "mypkg.feat:vec": [1.0, None], "mypkg.feat:wimb5": None,
        "minute": "1970-01-01T00:01:00Z", "mid_price": 100.5,
    }
    assert SEED_ALIASES == {"minute": "time", "mid_price": "mid"}
    without_mid = to_entry(MinuteRow("BTCUSDT", 0, False, None, 1, (None,)), ["bias10"])
    assert "mid_price" not in without_mid and without_mid["minute"] == without_mid["time"]


def test_entries_with_plugin_names_and_vectors_round_trip_the_store(tmp_path: Path) -> None:
    sink = SqliteSink(tmp_path / "entries.sqlite")
    entry = to_entry(ROW, NAMES)
    sink.write([entry])
    assert sink.read() == [entry]
    sink.close()


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_no_feature_is_named_like_a_column_of_every_row(name: str) -> None:
    with pytest.raises(UnknownFeatureError, match=f"feature {name!r}: that name is a column of every row"):
        check_names([Feature(name, lambda view: 1.0)])


def test_resolve_refuses_a_name_twice() -> None:
    with pytest.raises(UnknownFeatureError, match="'mid' is requested twice"):
        default_registry().resolve(["mid", "bias10", "mid"])


def test_a_scalar_may_not_take_the_csv_name_of_a_vector_element() -> None:
    with pytest.raises(UnknownFeatureError, match="feature 'q_1' has the name of an element of vector feature 'q'"):
        check_names([Feature("q", lambda view: (1.0, 2.0), size=2), Feature("q_1", lambda view: 1.0)])
    check_names([Feature("q", lambda view: (1.0, 2.0), size=2), Feature("q_2", lambda view: 1.0)])
