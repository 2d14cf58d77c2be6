"""Bad input gives one line ``acts: error: ...`` and exit 2 -- never a traceback, a hang or a silent
default (issue 13, section 7)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web

from acts.cli import main
from tests.conftest import ROOT, imported_capture


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three minutes of BTC and ETH, imported from a generated capture."""
    return imported_capture(tmp_path_factory.mktemp("data"), "BTC,ETH")


def _one_line_error(code: int, capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("acts: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--features", "mid,:"], ["feature ':' is not a name", "package.module:function"]),
        (["--features", "bias010"], ["'bias010'", "without leading zeros, as 'bias10'"]),
        (["--to", "9999-12-31T23:59:59-05:00"], ["--to '9999-12-31T23:59:59-05:00' is out of range"]),
        (["--from", "0001-01-01T00:00+01:00"], ["--from '0001-01-01T00:00+01:00' is out of range"]),
        (["--symbols", ","], ["--symbols ',' names no symbol"]),
        (["--symbols", " "], ["--symbols ' ' names no symbol"]),
        (["--workers", "0"], ["'--workers': 0 is out of range", "at least 1"]),
        (["--workers", "-1"], ["'--workers': -1 is out of range"]),  # was a hang
        (["--workers", "two"], ["'--workers'", "see 'acts replay --help'"]),
        (["--scheduler", "bogus"], ["--scheduler 'bogus' is not a scheduler address", "tcp://"]),
        (["--scheduler", "tcp://nohost"], ["--scheduler 'tcp://nohost'", "missing port"]),
        (["--bogus-option"], ["No such option", "--bogus-option"]),
    ],
)
def test_replay_bad_input(data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                          needles: list[str]) -> None:
    base = ["replay", "--data-dir", str(data_dir), "--from", "2024-05-01"]
    _one_line_error(main([*base, *args]), capsys, *needles)


def test_plugin_module_with_a_syntax_error(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "feat.py").write_text("def top(view:\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "brokenpkg.feat:top"])
    _one_line_error(code, capsys, "'brokenpkg.feat:top'", "SyntaxError", "feat.py, line 1", "fix the module")


def test_plugin_module_that_raises_on_import(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "raisingfeat.py").write_text("raise RuntimeError('no config here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--features", "raisingfeat:f"])
    _one_line_error(code, capsys, "RuntimeError: no config here")


def test_workers_without_the_dask_extra(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` meets without the extra
    code = main(["replay", "--data-dir", str(data_dir), "--from", "2024-05-01", "--workers", "2"])
    _one_line_error(code, capsys, "need Dask", "pip install 'acts[dask]'")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["exchange", "--speed", "0"], ["'--speed': 0 is out of range", "above 0"]),
        (["exchange", "--speed", "nan"], ["'--speed': nan is out of range"]),
        (["exchange", "--port", "70000"], ["'--port': 70000 is out of range", "0 to 65535"]),
        (["exchange", "--port", "-1"], ["'--port': -1 is out of range"]),
        (["exchange", "--gap-rate", "5"], ["'--gap-rate': 5 is out of range", "0 to 1"]),
        (["exchange", "--symbols", ","], ["--symbols ',' names no symbol"]),
        (["generate", "--out", "never.jsonl", "--minutes", "nan"], ["'--minutes': nan is out of range"]),
        (["generate", "--out", "never.jsonl", "--minutes", "inf"], ["'--minutes': inf is out of range"]),
        (["generate", "--out", "never.jsonl", "--minutes", "0"], ["'--minutes': 0 is out of range"]),
        (["generate", "--out", "never.jsonl", "--gap-rate", "5"], ["'--gap-rate': 5 is out of range"]),
        (["generate", "--out", "never.jsonl", "--gap-rate", "-0.1"], ["'--gap-rate': -0.1 is out of range"]),
        (["generate", "--out", "never.jsonl", "--symbols", ","], ["--symbols ',' names no symbol"]),
        (["record", ",", "--duration", "1"], ["SYMBOLS ',' names no symbol"]),
        (["record", "BTC", "--duration", "nan"], ["'--duration': nan is out of range"]),
        (["record", "BTC", "--roll-every", "0.5"], ["'--roll-every': 0.5 is out of range"]),
        (["demo", "--speed", "0"], ["'--speed': 0 is out of range"]),
        (["frobnicate"], ["No such command 'frobnicate'", "see 'acts --help'"]),
    ],
)
def test_other_commands_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str], args: list[str], needles: list[str]) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written, but if it were, not into the repository
    _one_line_error(main([*args, "--data-dir", str(tmp_path)] if args[0] in ("record", "demo") else args),
                    capsys, *needles)
    assert not (tmp_path / "never.jsonl").exists()


def test_verify_bad_and_empty_ranges(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["verify", "--data-dir", str(data_dir)]
    _one_line_error(main([*base, "--from", "2025-01-01"]), capsys, "nothing recorded from 2025-01-01 to the end",
                    "recorded dates: 2024-05-01")
    _one_line_error(main([*base, "--from", "2024-05-01T05:00", "--symbols", "btc"]), capsys,
                    "nothing recorded from 2024-05-01T05:00", "for BTCUSDT")
    _one_line_error(main([*base, "--from", "2024-05-02", "--to", "2024-05-01"]), capsys, "is not after")
    _one_line_error(main([*base, "--symbols", ","]), capsys, "--symbols ',' names no symbol")
    assert main([*base, "--from", "2024-05-01"]) == 0  # a range with data is fine
    assert "BTCUSDT" in capsys.readouterr().out


@contextmanager
def _answering(body: str, content_type: str) -> Iterator[str]:
    """A loopback HTTP server answering every request with ``body``; yields its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    port: list[int] = []

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type=content_type)

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        ("}{ not json", "application/json", "Invalid Response"),
        ("<html><body>Welcome to nginx!</body></html>", "text/html", "unexpected mimetype: text/html"),
        ("[]", "application/json", "answered exchangeInfo with '[]'"),
        ('{"symbols": 7}', "application/json", "not Binance's exchangeInfo"),
    ],
    ids=["garbage", "html", "empty-list", "wrong-shape"],
)
def test_record_at_a_server_that_is_not_binance(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str,
                                                content_type: str, needle: str) -> None:
    with _answering(body, content_type) as base:
        code = main(["record", "BTC", "--data-dir", str(tmp_path), "--rest-url", f"{base}/api", "--stream-url",
                     base.replace("http", "ws") + "/", "--duration", "5"])
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("acts: error: ")]
    assert code == 2 and "Traceback" not in err, err
    assert len(line) == 1 and needle in line[0] and "check that --rest-url is a Binance REST API" in line[0]


def test_numba_without_a_writable_cache_says_so_once_and_replays(tmp_path: Path) -> None:
    """Numba's own refusal, produced for real: its only cache locator points under a regular file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "numba.core.caching.UserProvidedCacheLocator",
           "NUMBA_CACHE_DIR": str(blocker / "cache")}
    out = tmp_path / "rows.csv"
    script = ("import sys; from acts.cli import main; sys.exit(main(['replay', '--data-dir', sys.argv[1], "
              "'--from', '2024-05-01', '--features', 'mid', '--out', sys.argv[2], '--engine', 'fast']))")
    done = subprocess.run([sys.executable, "-c", script, str(ROOT / "tests/data/golden"), str(out)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("numba cannot write its cache") == 1, done.stderr
    assert "Set NUMBA_CACHE_DIR to a writable folder" in done.stderr and "Traceback" not in done.stderr
    assert out.read_text() == _golden_mids(tmp_path)


def _golden_mids(tmp_path: Path) -> str:
    """The same replay in this process (cache as usual)."""
    out = tmp_path / "expected.csv"
    assert main(["replay", "--data-dir", str(ROOT / "tests/data/golden"), "--from", "2024-05-01", "--features",
                 "mid", "--out", str(out)]) == 0
    return out.read_text()
