"""One contract, every store: SQLite (embedded default), MongoDB (a real wire server), the spool."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acts.core.errors import SinkError
from acts.sinks import MongoSink, SpoolingSink, SqliteSink


def entry(symbol: str, minute: str, **values: Any) -> dict[str, Any]:
    return {"symbol": symbol, "minute": minute, "valid": True, **values}


class SinkContract:
    """Subclass and provide ``make`` (a fresh store) and ``reopen`` (the same store, reconnected)."""

    @pytest.fixture
    def sink(self) -> Iterator[Any]:
        store = self.make()
        yield store
        store.close()

    def make(self) -> Any:
        raise NotImplementedError

    def reopen(self, sink: Any) -> Any:
        raise NotImplementedError

    def test_upsert_is_idempotent(self, sink: Any) -> None:
        batch = [entry("BTCUSDT", "2024-05-01T00:00:00Z", mid_price=1.5),
                 entry("ETHUSDT", "2024-05-01T00:00:00Z", mid_price=2.5)]
        sink.write(batch)
        sink.write(batch)
        assert sink.read() == [batch[0], batch[1]]

    def test_same_key_replaces(self, sink: Any) -> None:
        sink.write([entry("BTCUSDT", "2024-05-01T00:00:00Z", mid_price=1.5, bias10=0.1)])
        sink.write([entry("BTCUSDT", "2024-05-01T00:00:00Z", mid_price=2.0, bias10=None)])
        assert sink.read() == [entry("BTCUSDT", "2024-05-01T00:00:00Z", mid_price=2.0, bias10=None)]

    def test_filters_and_order(self, sink: Any) -> None:
        minutes = [f"2024-05-01T00:0{i}:00Z" for i in range(4)]
        sink.write([entry(s, m, x=float(i)) for i, m in enumerate(reversed(minutes)) for s in ("ETHUSDT", "BTCUSDT")])
        got = sink.read()
        expected = sorted((m, s) for m in minutes for s in ("BTCUSDT", "ETHUSDT"))
        assert [(e["minute"], e["symbol"]) for e in got] == expected
        assert [e["minute"] for e in sink.read(["ETHUSDT"], minutes[1], minutes[3])] == minutes[1:3]
        assert {e["symbol"] for e in sink.read(["BTCUSDT"])} == {"BTCUSDT"}

    def test_floats_round_trip_exactly(self, sink: Any) -> None:
        values = {"a": 0.1 + 0.2, "b": 1e-12, "c": 1.7976931348623157e308, "d": -0.0, "e": 2.5e-05, "f": None}
        sink.write([entry("SHIBUSDT", "2024-05-01T00:00:00Z", **values)])
        (got,) = sink.read()
        for key, value in values.items():
            assert got[key] == value and repr(got[key]) == repr(value)

    def test_registered_names_and_vectors_round_trip(self, sink: Any) -> None:
        # Live entries name features as replay does: plug-in names carry '.' and ':'; a vector is a list.
        values = {"time": "2024-05-01T00:00:00Z", "mid": 1.5, "mid_price": 1.5, "mypkg.feat:wimb5": 0.25,
                  "mypkg.feat:vec": [1.0, None, -2.5], "depth50": None}
        sink.write([entry("BTCUSDT", "2024-05-01T00:00:00Z", **values)])
        sink.write([entry("BTCUSDT", "2024-05-01T00:00:00Z", **values)])
        assert sink.read() == [entry("BTCUSDT", "2024-05-01T00:00:00Z", **values)]

    def test_data_survives_a_restart(self, sink: Any) -> None:
        sink.write([entry("BTCUSDT", "2024-05-01T00:00:00Z", mid_price=1.5)])
        again = self.reopen(sink)
        try:
            assert again.read() == [entry("BTCUSDT", "2024-05-01T00:00:00Z", mid_price=1.5)]
        finally:
            again.close()


class TestSqlite(SinkContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "entries.sqlite"

    def make(self) -> SqliteSink:
        return SqliteSink(self.path)

    def reopen(self, sink: SqliteSink) -> SqliteSink:
        sink.close()
        return SqliteSink(self.path)


@pytest.mark.mongo
class TestMongo(SinkContract):
    @pytest.fixture(autouse=True)
    def _server(self, mongo_uri: str) -> None:
        self.uri = mongo_uri
        self.database = f"t{uuid.uuid4().hex[:12]}"

    def make(self) -> MongoSink:
        return MongoSink(self.uri, database=self.database)

    def reopen(self, sink: MongoSink) -> MongoSink:
        sink.close()
        return MongoSink(self.uri, database=self.database)

    def test_unique_index_exists(self, sink: MongoSink) -> None:
        sink.ping()
        indexes = sink._coll.index_information()
        assert indexes["symbol_minute"]["unique"] is True


class TestSpool(SinkContract):
    """The spool in front of an embedded primary behaves like a plain sink."""

    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.dir = tmp_path

    def make(self) -> SpoolingSink:
        return SpoolingSink(SqliteSink(self.dir / "primary.sqlite"), SqliteSink(self.dir / "spool.sqlite"))

    def reopen(self, sink: SpoolingSink) -> SpoolingSink:
        sink.close()
        return self.make()


class Flaky:
    """A primary that fails while ``down`` -- the shape of a MongoDB outage."""

    def __init__(self, inner: SqliteSink) -> None:
        self.inner = inner
        self.down = True
        self.writes = 0
        self.bounds: list[float | None] = []

    def write(self, entries: Any, timeout_s: float | None = None) -> int:
        self.bounds.append(timeout_s)
        if self.down:
            raise SinkError("MongoDB at mongodb://u:***@127.0.0.1:1 is not usable: connection refused")
        self.writes += 1
        return self.inner.write(entries)

    def read(self, *args: Any) -> Any:
        return self.inner.read(*args)

    def close(self) -> None:
        self.inner.close()


def test_spool_keeps_entries_through_an_outage(tmp_path: Path) -> None:
    primary = Flaky(SqliteSink(tmp_path / "primary.sqlite"))
    spool = SpoolingSink(primary, SqliteSink(tmp_path / "spool.sqlite"))  # type: ignore[arg-type]
    first = [entry("BTCUSDT", f"2024-05-01T00:0{i}:00Z", x=float(i)) for i in range(3)]
    spool.write(first)  # no exception: recording must not notice
    assert spool.pending == 3 and "not usable" in (spool.last_error or "")
    spool.write(first[:1])  # rewritten while down: still three, no duplicate
    assert spool.pending == 3
    primary.down = False
    assert spool.flush() == 0 and spool.pending == 0
    assert primary.inner.read() == first


def test_after_a_failure_the_spool_rests_by_its_clock_and_close_stays_short(tmp_path: Path) -> None:
    from tests.exchange.conftest import FakeClock

    clock = FakeClock()
    primary = Flaky(SqliteSink(tmp_path / "primary.sqlite"))
    spool = SpoolingSink(primary, SqliteSink(tmp_path / "spool.sqlite"), retry_after_s=30,  # type: ignore[arg-type]
                         close_timeout_s=0.5, clock=clock)
    spool.write([entry("BTCUSDT", "2024-05-01T00:00:00Z")], timeout_s=2.0)
    assert primary.bounds == [2.0] and spool.resting
    clock.advance(29)
    spool.write([entry("BTCUSDT", "2024-05-01T00:01:00Z")], timeout_s=2.0)  # resting: spooled only
    assert primary.bounds == [2.0] and spool.pending == 2
    clock.advance(1)
    spool.write([entry("BTCUSDT", "2024-05-01T00:02:00Z")], timeout_s=2.0)  # rested: one more try
    assert primary.bounds == [2.0, 2.0] and spool.pending == 3
    spool.close()  # it just failed: close does not wait for it again
    assert primary.bounds == [2.0, 2.0]
    assert len(SqliteSink(tmp_path / "spool.sqlite").read()) == 3


def test_close_gives_a_healthy_primary_one_short_try(tmp_path: Path) -> None:
    primary = Flaky(SqliteSink(tmp_path / "primary.sqlite"))
    spool = SpoolingSink(primary, SqliteSink(tmp_path / "spool.sqlite"), close_timeout_s=0.5)  # type: ignore[arg-type]
    spool.spool.write([entry("BTCUSDT", "2024-05-01T00:00:00Z")])  # left by an earlier run
    primary.down = False
    spool.close()
    assert primary.bounds == [0.5] and len(SqliteSink(tmp_path / "primary.sqlite").read()) == 1


@pytest.mark.mongo
def test_unreachable_mongo_is_a_clear_error_without_password() -> None:
    sink = MongoSink("mongodb://bob:hunter2@127.0.0.1:9/?directConnection=true", timeout_ms=300)
    with pytest.raises(SinkError) as info:
        sink.write([entry("BTCUSDT", "2024-05-01T00:00:00Z")])
    assert "hunter2" not in str(info.value) and "bob:***@" in str(info.value)
