"""Shared fixtures: small seeded recordings written as segments."""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import settings

from acts.core.events import Event
from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.synthetic import synthetic_events
from acts.storage.segments import write_segments

# CI draws the same examples every run (reproducible: a red run is a real regression, and a green one stays
# green); a developer's `make test` explores new examples each time and keeps failures in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

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


def import_generated(data_dir: Path, symbols: str, minutes: int = 3) -> Path:
    """A seeded capture of ``symbols`` (``acts generate``) imported into ``data_dir`` (``acts import``)."""
    from acts.cli import main

    capture = data_dir / "cap.jsonl"
    assert main(["generate", "--out", str(capture), "--symbols", symbols, "--minutes", str(minutes)]) == 0
    assert main(["import", "--data-dir", str(data_dir), str(capture)]) == 0
    return data_dir


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


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    uri = os.environ.get("ACTS_TEST_MONGODB_URI")
    if uri:
        yield uri
        return
    started = subprocess.run(["bash", str(ROOT / ".ci/mongo/start.sh")], capture_output=True, text=True,
                             timeout=300, check=False)
    if started.returncode == 3:
        message = "MONGO TESTS SKIPPED: no Python 3.13 for the Mongo-wire server (" + started.stderr.strip() + ")"
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    if started.returncode != 0:
        pytest.fail(f"the Mongo-wire server did not start: {started.stderr[-2000:]}")
    env = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    try:
        yield env["ACTS_TEST_MONGODB_URI"].strip("'")
    finally:
        subprocess.run(["kill", env["ACTS_MONGO_PID"]], check=False)
