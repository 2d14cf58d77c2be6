"""Journal rolls in a child process, so the recorder's own memory stays flat and its loop keeps the GIL.

Strategy: a roll decodes a whole journal (minutes to an hour of every symbol) into segments. In the
recorder's process that took the GIL from the event loop for a minute and left the allocators at the
roll's peak for good (140 MB -> 350-465 MB at the first roll, issue 14). The child runs the very same
``Roller.roll`` (same order of operations: segments first, the journal retired last), niced, and
exits, handing all its memory back. The parent only waits for it. If the child fails, the journal is
where it was -- nothing is lost -- and the next start's recovery rolls it (``RollFailed`` says so).

The child's log lines come back on its stderr as ``LEVEL message`` and are logged again by the parent
under ``acts.recorder.roll``; the paths it wrote come back as JSON on its stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from acts.core.clock import FakeClock
from acts.core.errors import StorageError
from acts.core.markets import Market
from acts.recorder.roll import Roller

__all__ = ["RollFailed", "roll_apart", "main", "ROLL_NICENESS"]

log = logging.getLogger("acts.recorder.roll")

#: The child yields the CPU to the recorder (and to the exchange feeding it) on a busy machine.
ROLL_NICENESS = 5
#: The child runs this checkout's ``acts`` (the parent's), installed or not.
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); from acts.recorder.rollproc import main; "
          "sys.exit(main(sys.argv[2]))")
_STDERR_TAIL = 600


class RollFailed(StorageError):
    """A roll's child process failed; its journal is kept for the next start's recovery."""


async def roll_apart(roller: Roller, journal: Path | None, now_ns: int) -> list[Path]:
    """Roll ``journal`` (None: every journal a previous run left, as ``Roller.recover``) in a child
    process with ``roller``'s settings; the segment paths it wrote. ``now_ns`` is the time the roll's
    retention rules see (the recorder's injected clock)."""
    spec = {"parent": os.getpid(), "data_dir": str(roller.data_dir),
            "journal": None if journal is None else str(journal), "keep_rolled": roller.keep_rolled,
            "keep_days": roller.keep_days, "now_ns": now_ns, "market": str(roller.market)}
    source = str(Path(__file__).resolve().parents[2])  # the folder holding this ``acts`` package
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", _CHILD, source, json.dumps(spec),
                                                 stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.PIPE)
    out, err = await child.communicate()  # a roll is never cut short: a stop waits for it
    for line in err.decode(errors="replace").splitlines():
        level, _, message = line.partition(" ")
        log.log(logging.getLevelName(level) if level in _LEVELS else logging.ERROR, "roll: %s", message or line)
    what = "the unfinished journals" if journal is None else str(journal)
    if child.returncode != 0:
        tail = err.decode(errors="replace").strip()[-_STDERR_TAIL:] or "no output"
        raise RollFailed(f"rolling {what} failed in its child process (exit {child.returncode}): {tail}; the "
                         "journal is kept and rolled again at the next start")
    try:
        return [Path(p) for p in json.loads(out)["paths"]]
    except (ValueError, KeyError, TypeError):
        raise RollFailed(f"rolling {what}: its child process answered {out[:80]!r}, not its paths; the journal is "
                         "kept if the roll did not finish") from None


_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
#: Linux ``prctl`` option: the signal this process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """A roll outliving a recorder killed with -9 would race the next start's recovery of the same
    journal: the child dies with its parent instead, a crash mid-roll that recovery already handles."""
    with contextlib.suppress(OSError, AttributeError):  # Linux (glibc) only
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:  # the parent was gone before the line above
        os._exit(1)


def main(spec_json: str) -> int:
    """The child: roll what ``spec_json`` says, print the paths as JSON; exit 1 on failure."""
    with contextlib.suppress(OSError):
        os.nice(ROLL_NICENESS)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    spec: dict[str, Any] = json.loads(spec_json)
    _die_with_parent(int(spec.get("parent", 0)))
    # Retention reads the parent's clock, frozen at the time it asked for the roll.
    roller = Roller(Path(spec["data_dir"]), keep_rolled=spec["keep_rolled"], keep_days=spec["keep_days"],
                    clock=FakeClock(start_ns=spec["now_ns"], autojump=False),
                    market=Market(spec.get("market", Market.SPOT)))
    try:
        paths = roller.recover() if spec["journal"] is None else roller.roll(Path(spec["journal"]))
    except Exception as exc:  # noqa: BLE001 -- reported to the parent, which keeps the journal
        logging.getLogger("acts.recorder.roll").error("%s: %s", type(exc).__name__, exc)
        return 1
    print(json.dumps({"paths": [str(p) for p in paths]}))
    return 0
