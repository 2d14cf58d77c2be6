"""The Mongo-wire server for the sink tests: ACTS_TEST_MONGODB_URI, or started here via .ci/mongo/start.sh."""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
