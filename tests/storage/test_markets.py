"""Spot and USD-M futures segments of one symbol never mix: folders, footers, readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acts.core.errors import CorruptSegmentError, NoDataError, UnknownSymbolError
from acts.core.events import DepthUpdate, Snapshot
from acts.core.markets import Market
from acts.storage.columnar import read_columnar_events
from acts.storage.segments import read_events, read_info, write_segments
from acts.storage.store import SegmentStore

S = "BTCUSDT"
T0 = 1_714_568_400_000_000_000  # 2024-05-01 13:00 UTC, ns


def futures_events() -> list:
    return [
        Snapshot(S, 100, (("64000.10", "1.5"),), (("64000.20", "2"),), T0),
        DepthUpdate(S, T0 // 10**6 + 5, 95, 104, (("64000.10", "1"),), (), T0 + 5_000_000, 90),
        DepthUpdate(S, T0 // 10**6 + 9, 120, 130, (), (("64000.30", "0.5"),), T0 + 9_000_000, 104),
    ]


def spot_events() -> list:
    return [Snapshot(S, 100, (("64000.10", "1"),), (("64000.20", "1"),), T0),
            DepthUpdate(S, T0 // 10**6 + 5, 101, 102, (("64000.10", "3"),), (), T0 + 5_000_000)]


def test_futures_segments_live_under_their_market_and_keep_pu(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, S, futures_events(), market=Market.USDM)
    assert path.parent.parent == tmp_path / "segments" / "market=usdm" / f"symbol={S}"
    info = read_info(path)
    assert info.market is Market.USDM
    assert list(read_events(path)) == futures_events()
    fast = [e for e in read_columnar_events(path, S) if isinstance(e, DepthUpdate)]
    assert [e.prev_final_update_id for e in fast] == [90, 104]


def test_spot_segments_and_footers_are_unchanged(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, S, spot_events())
    assert path.parent.parent == tmp_path / "segments" / f"symbol={S}"
    assert b'"market"' not in pq.read_metadata(path).metadata[b"acts.segment"]
    assert read_info(path).market is Market.SPOT and list(read_events(path)) == spot_events()
    assert all(getattr(e, "prev_final_update_id", None) is None for e in read_columnar_events(path, S))


def test_each_store_sees_only_its_market(tmp_path: Path) -> None:
    write_segments(tmp_path, S, futures_events(), market=Market.USDM)
    spot, usdm = SegmentStore(tmp_path), SegmentStore(tmp_path, market=Market.USDM)
    assert usdm.symbols() == [S] and usdm.market is Market.USDM
    assert spot.symbols() == []
    with pytest.raises(NoDataError, match="no segments.*USD-M futures data of BTCUSDT exists: pass --market usdm"):
        spot.check_symbols([S])
    write_segments(tmp_path, "ETHUSDT", [Snapshot("ETHUSDT", 1, (), (), T0)])
    with pytest.raises(UnknownSymbolError, match="no data for symbol BTCUSDT.*pass --market usdm"):
        spot.check_symbols([S])
    assert usdm.check_symbols([]) == [S]
    with pytest.raises(UnknownSymbolError, match="no USD-M futures data for symbol ETHUSDT.*pass --market spot"):
        usdm.check_symbols(["ETHUSDT"])


def test_a_futures_file_in_the_spot_folders_is_refused_naming_the_market(tmp_path: Path) -> None:
    (path,) = write_segments(tmp_path, S, futures_events(), market=Market.USDM)
    moved = tmp_path / "segments" / f"symbol={S}" / path.parent.name / path.name
    moved.parent.mkdir(parents=True)
    shutil.move(path, moved)
    with pytest.raises(CorruptSegmentError, match="market folder says spot but its footer says usdm"):
        read_info(moved)
    # Outside the layout the path claims nothing, but a store of the other market still refuses it.
    loose = tmp_path / "loose.parquet"
    shutil.copy(moved, loose)
    with pytest.raises(CorruptSegmentError, match="USD-M futures data, read as spot; pass --market usdm"):
        SegmentStore(tmp_path).info(loose)


@pytest.mark.parametrize(("market", "events", "said"), [
    (Market.SPOT, futures_events(), "with pu in a spot segment"),
    (Market.USDM, spot_events(), "without pu in a usdm segment"),
])
def test_the_writer_never_mixes_markets(tmp_path: Path, market: Market, events: list, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        write_segments(tmp_path, S, events, market=market)
    with pytest.raises(ValueError, match="need format 2"):
        write_segments(tmp_path, S, futures_events(), format_version=1, market=Market.USDM)
