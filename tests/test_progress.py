"""Progress lines (``acts.wiring.Progress``): at most one every few seconds of the injected clock."""

from __future__ import annotations

import io

from acts.core.clock import FakeClock
from acts.wiring import PROGRESS_EVERY_S, Progress, ProgressMode


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_lines_at_most_every_few_seconds_of_the_clock() -> None:
    clock, out = FakeClock(autojump=False), _Pipe()
    progress = Progress.choose("replay", "min", 600, False, clock, out)
    assert progress.mode is ProgressMode.LINES
    for done in range(1, 50):
        progress.update(done)  # no time passes: no line, however often it is called
    assert out.getvalue() == ""
    clock.advance(PROGRESS_EVERY_S - 0.1)
    progress.update(60)
    assert out.getvalue() == ""
    clock.advance(0.1)
    progress.update(60)
    assert out.getvalue() == "replay: 60/600 min (10.0%), 12 min/s, ETA 0:00:45\n"
    progress.update(61)
    clock.advance(1)
    progress.update(62)
    assert len(out.getvalue().splitlines()) == 1  # not again before another PROGRESS_EVERY_S
    clock.advance(PROGRESS_EVERY_S)
    progress.update(120)
    assert out.getvalue().splitlines()[-1] == "replay: 120/600 min (20.0%), 10.9 min/s, ETA 0:00:44"
    progress.close()
    assert out.getvalue().splitlines()[-1] == "replay: done, 120 min in 11.0 s"
    progress.update(130)
    progress.close()
    assert len(out.getvalue().splitlines()) == 3  # closed means silent


def test_bytes_unknown_total_and_quiet() -> None:
    clock, out = FakeClock(autojump=False), _Pipe()
    with Progress.choose("import", "bytes", None, False, clock, out) as progress:
        clock.advance(PROGRESS_EVERY_S)
        progress.update(3 * 2**20)
    assert out.getvalue().splitlines() == ["import: 3.0 MiB, 614.4 KiB/s", "import: done, 3.0 MiB in 5.0 s"]
    quiet = _Pipe()
    with Progress.choose("import", "bytes", None, True, clock, quiet) as progress:
        clock.advance(60)
        progress.update(1)
    assert quiet.getvalue() == ""


def test_a_failed_command_has_no_done_line() -> None:
    clock, out = FakeClock(autojump=False), _Pipe()
    try:
        with Progress.choose("replay", "min", 10, False, clock, out):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert out.getvalue() == ""
