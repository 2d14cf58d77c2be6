"""A Mongo password never reaches stderr, a log or a file, whatever the URI's shape (README, "Logs")."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus, unquote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acts.cli import main
from acts.core.errors import SinkError
from acts.core.secrets import Scrubber, ScrubbingFormatter, redact_uri, secrets_of
from acts.sinks import MongoSink
from acts.wiring import build_sink

ROOT = Path(__file__).resolve().parents[2]
#: Letters plus every character that changes how a URI is read, and the percent sign.
PASSWORD_CHARS = "abcXYZ019" + "/@:?#%&=+[] ,;'\"\\" + "é"
PASSWORDS = st.text(alphabet=PASSWORD_CHARS, min_size=6, max_size=24)
USERS = st.sampled_from(["", "bob", "acts_rw", "u.x-1"])
HOSTS = st.sampled_from(["127.0.0.1:9", "db1.example:27017,db2.example:27018", "cluster0.ab1cd.mongodb.net",
                         "[::1]:27017"])
SCHEMES = st.sampled_from(["mongodb://", "mongodb+srv://", "MongoDB://", ""])
SAFE_OPTIONS = st.sampled_from(["", "directConnection=true", "authSource=admin&w=majority", "tls=true"])
SECRET_OPTION_NAMES = st.sampled_from(["tlsCertificateKeyFilePassword", "password", "authMechanismProperties",
                                       "sslClientCertificateKeyPassword", "unknownOption"])


@st.composite
def uris(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A URI of any shape and its secrets: a raw or percent-encoded password, or none, and maybe a
    secret-bearing option (AWS_SESSION_TOKEN inside authMechanismProperties among them)."""
    secrets: list[str] = []
    user = draw(USERS)
    userinfo = ""
    if draw(st.booleans()) or not user:
        password = draw(PASSWORDS)
        secrets.append(password)
        spelled = quote_plus(password) if draw(st.booleans()) else password
        userinfo = f"{user}:{spelled}@"
    elif user:
        userinfo = f"{user}@"
    options = [draw(SAFE_OPTIONS)]
    if draw(st.booleans()):
        value = draw(PASSWORDS.filter(lambda v: not any(c in v for c in "&#")))
        name = draw(SECRET_OPTION_NAMES)
        if name == "authMechanismProperties":
            options.append(f"authMechanism=MONGODB-AWS&{name}=AWS_SESSION_TOKEN:{quote_plus(value)}")
        else:
            options.append(f"{name}={quote_plus(value) if draw(st.booleans()) else value}")
        secrets.append(value)
    query = "&".join(o for o in options if o)
    path = draw(st.sampled_from(["", "/", "/acts"]))
    uri = f"{draw(SCHEMES)}{userinfo}{draw(HOSTS)}{path}" + (f"?{query}" if query else ("" if path else ""))
    # A secret spelled inside the public parts (a host name, the user) cannot be hidden by anyone.
    public = uri
    for secret in secrets:
        for form in (secret, quote_plus(secret)):
            public = public.replace(form, "")
    assume(all(s not in public and unquote(s) not in public for s in secrets))
    return uri, secrets


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = []
    for secret in secrets:
        for form in {secret, quote_plus(secret), unquote(secret)}:
            if len(form) >= 4 and form in text:
                found.append(form)
    return found


@settings(max_examples=400, deadline=None)
@given(uris())
def test_redacted_uri_never_holds_a_secret(case: tuple[str, list[str]]) -> None:
    uri, secrets = case
    assert _leaks(redact_uri(uri), secrets) == []


@settings(max_examples=300, deadline=None)
@given(uris())
def test_scrubbed_text_never_holds_a_secret(case: tuple[str, list[str]]) -> None:
    uri, secrets = case
    text = "; ".join([f"driver says {uri!r}", uri] + [f"{s} {s!r} {unquote(s)} {quote_plus(s)}" for s in secrets])
    assert _leaks(Scrubber.for_uri(uri)(text), secrets) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uris())
def test_a_mongo_sink_error_never_holds_a_secret(case: tuple[str, list[str]]) -> None:
    """Building the sink (the driver parses the URI) and a failed write: each message names no secret."""
    uri, secrets = case
    try:
        sink = MongoSink(uri, timeout_ms=50)
    except SinkError as exc:
        assert _leaks(str(exc), secrets) == []
        return
    try:
        sink.write([{"symbol": "BTCUSDT", "minute": "2024-05-01T00:00:00Z"}], timeout_s=0.05)
    except SinkError as exc:
        assert _leaks(str(exc), secrets) == []
    finally:
        sink.close()


@settings(max_examples=100, deadline=None)
@given(uris())
def test_a_log_line_with_a_traceback_never_holds_a_secret(case: tuple[str, list[str]]) -> None:
    uri, secrets = case
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ScrubbingFormatter("%(levelname)s %(message)s", Scrubber.for_uri(uri)))
    logger = logging.getLogger("acts.test.secrets")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(f"cannot parse {uri}")
        except ValueError:
            logger.exception("MongoDB %s failed", uri)
    finally:
        logger.removeHandler(handler)
    assert _leaks(stream.getvalue(), secrets) == []


@pytest.mark.parametrize("uri", ["mongodb://user:se/cret@127.0.0.1:9", "user:secret@127.0.0.1:9",
                                 "mongodb://user:sec@ret@127.0.0.1:9"])
def test_the_shapes_that_leaked_are_refused_without_the_password(uri: str) -> None:
    secret = secrets_of(uri)[0]
    with pytest.raises(SinkError) as info:
        MongoSink(uri)
    assert secret not in str(info.value) and "user:***@" in str(info.value)


def test_the_cli_error_line_is_scrubbed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["backfill", "--from", "2024-05-01", "--data-dir", str(tmp_path), "--mongo",
                 "mongodb://user:se/cret@127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "se/cret" not in err and "cret" not in err


def test_build_sink_logs_where_without_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="acts")
    logging.getLogger("acts").propagate = True
    uri = "mongodb://bob:pw%2Fx@127.0.0.1:9/?tlsCertificateKeyFilePassword=KEYPASS&directConnection=true"
    sink = build_sink(tmp_path, uri)
    sink.close()
    assert "bob:***@127.0.0.1:9" in caplog.text and "pw%2Fx" not in caplog.text and "KEYPASS" not in caplog.text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("password, options", [
    ("se/cret", ""),  # refused at start: the one line must not quote it
    (quote_plus("p@ss/w:rd?#%"), "directConnection=true"),  # recorded; every write fails
    ("plain", "directConnection=true&tlsCertificateKeyFilePassword=KEYPASS&password=OPTPASS"),
])
def test_acts_record_writes_no_secret_anywhere(tmp_path: Path, password: str, options: str) -> None:
    from acts.exchange.feed import GeneratorFeed
    from acts.exchange.server import ExchangeThread

    uri = f"mongodb://acts:{password}@127.0.0.1:{_closed_port()}/" + (f"?{options}" if options else "")
    secrets = [password, unquote(password), "KEYPASS", "OPTPASS"]
    data_dir = tmp_path / "data"
    feed = GeneratorFeed(["BTCUSDT"], seed=3, start_ms=time.time_ns() // 1_000_000)  # E near the receive times
    with ExchangeThread(feed, speed=60) as ex:
        args = [sys.executable, "-c", "from acts.cli import app_main; app_main()", "record", "BTC", "--data-dir",
                str(data_dir), "--rest-url", ex.rest_url, "--stream-url", ex.stream_url, "--duration", "4", "-v"]
        env = dict(os.environ, MONGODB_URI=uri)
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 2), done.stderr
    texts = {"stderr": done.stderr, "stdout": done.stdout}
    for path in data_dir.rglob("*") if data_dir.exists() else []:
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    if password != "se/cret":
        assert "cannot write entries to MongoDB" in texts[str(data_dir / "logs" / "acts.log")]
    for where, text in texts.items():
        assert not [s for s in secrets if s in text], f"a secret in {where}"
