"""Segments on object storage: a real S3-compatible server (moto) on loopback, read through pyarrow."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from acts.cli import main
from acts.features.builtin import default_registry
from acts.replayer.replay import replay
from acts.replayer.verify import verify
from acts.storage.store import SegmentStore
from tests.conftest import NEAR_HOUR_MS

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extras")
boto3 = pytest.importorskip("boto3")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_uri(recorded_dir: Path) -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        mp.setenv(key, value)
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        s3.create_bucket(Bucket="acts")
        for path in sorted(recorded_dir.rglob("*.parquet")):
            s3.upload_file(str(path), "acts", f"history/{path.relative_to(recorded_dir)}")
        yield f"s3://acts/history?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    finally:
        server.stop()
        mp.undo()


def test_s3_replay_equals_local(s3_uri: str, recorded_dir: Path) -> None:
    features = default_registry().resolve(["mid", "bias10"])
    remote = SegmentStore.open(s3_uri)
    assert remote.symbols() == ["BTCUSDT", "SHIBUSDT"]
    assert [p.name for p in remote.paths("BTCUSDT")] == [p.name for p in SegmentStore(recorded_dir).paths("BTCUSDT")]
    start = NEAR_HOUR_MS + 7 * 60_000  # starts from a snapshot inside the second hour's file
    got = list(replay(remote, ["BTCUSDT", "SHIBUSDT"], features, start))
    assert got and got == list(replay(SegmentStore(recorded_dir), ["BTCUSDT", "SHIBUSDT"], features, start))


def test_s3_through_the_cli_and_verify(s3_uri: str, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    assert main(["replay", "--data-dir", s3_uri, "--from", "2024-05-01", "--symbols", "SHIB", "--out", str(out)]) == 0
    assert out.read_text().count("SHIBUSDT") == 12
    assert verify(s3_uri, ["BTCUSDT"]).ok()
