"""USD-M aggTrades in version 2 segments: ``f``/``l`` kept in the trade row's update-id columns (null on a spot
trade), so both readers give back the very aggTrade that was received, and ``to_wire`` its frame."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from acts.core.events import Event, Trade, to_wire
from acts.storage.columnar import read_columnar_events, read_row_groups
from acts.storage.segments import read_events, write_segments

T0 = 1_714_521_600 * 10**9  # 2024-05-01 00:00 UTC, ns
E0 = T0 // 10**6
SYM = "BTCUSDT"


def _trades() -> list[Event]:
    return [
        Trade(SYM, E0 + 1, 5933014, "67012.10", "0.125", E0, True, T0 + 1_000_000, 100, 105),
        Trade(SYM, E0 + 2, 5933015, "67012.2", "3", E0 + 2, False, T0 + 2_000_000, 0, 0),  # f = l = 0: still set
        Trade(SYM, E0 + 3, 12, "1.00", "2.0", E0 + 3, False, T0 + 3_000_000),  # a spot trade: no f, l
    ]


def test_agg_trades_keep_their_fills_in_both_readers(tmp_path: Path) -> None:
    events = _trades()
    (path,) = write_segments(tmp_path, SYM, events)
    table = pq.read_table(path)
    assert table.column("first_update_id").to_pylist() == [100, 0, None]
    assert table.column("final_update_id").to_pylist() == [105, 0, None]
    assert list(read_events(path)) == events
    assert list(read_columnar_events(path, SYM)) == events
    # The fast reader's update-id arrays hold none of them: the lane scans those for a ticker's u.
    (group,) = read_row_groups(path, SYM)
    assert group.firsts.tolist() == group.finals.tolist() == [0, 0, 0]


def test_a_stored_agg_trade_goes_back_to_its_frame(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, SYM, _trades())
    first, _, spot = (to_wire(e) for e in read_events(path) if isinstance(e, Trade))
    assert first == {"e": "aggTrade", "E": E0 + 1, "s": SYM, "a": 5933014, "p": "67012.10", "q": "0.125",
                     "f": 100, "l": 105, "T": E0, "m": True}
    assert spot["e"] == "trade" and spot["t"] == 12
