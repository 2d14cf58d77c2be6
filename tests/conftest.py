"""Shared fixtures: small seeded recordings written as segments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from exchange.generator import DEFAULT_START_MS
from exchange.synthetic import synthetic_events
from recorder.events import Event
from recorder.segments import write_segments

#: 00:54 UTC: a 12-minute recording from here crosses an hour, so it spans two segments per symbol.
NEAR_HOUR_MS = DEFAULT_START_MS + 54 * 60_000


def record(data_dir: Path, events: Sequence[Event], chunk: int | None = None) -> list[Path]:
    """Write events as segments, per symbol, optionally in chunks of ``chunk`` events per write."""
    by_symbol: dict[str, list[Event]] = {}
    for event in events:
        by_symbol.setdefault(event.symbol, []).append(event)
    paths: list[Path] = []
    for symbol, evs in by_symbol.items():
        step = chunk or len(evs)
        for i in range(0, len(evs), step):
            paths += write_segments(data_dir, symbol, evs[i : i + step])
    return paths


@pytest.fixture(scope="session")
def recording_events() -> list[Event]:
    """12 minutes of BTC and SHIB across an hour boundary, with gaps and 2-minute checkpoints."""
    return list(
        synthetic_events(["BTCUSDT", "SHIBUSDT"], 12, seed=11, start_ms=NEAR_HOUR_MS, snapshot_every_s=120,
                         gap_rate=0.002, depth=120)
    )


@pytest.fixture(scope="session")
def recorded_dir(tmp_path_factory: pytest.TempPathFactory, recording_events: list[Event]) -> Path:
    data_dir = tmp_path_factory.mktemp("recorded")
    record(data_dir, recording_events)
    return data_dir
