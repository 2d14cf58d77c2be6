"""Faults the local exchange can inject, one shot (or N shots) at a time.

Spec strings (``acts exchange --fault SPEC``, repeatable; ``@T`` = seconds after start)::

    drop@30              close every websocket connection
    stall@10:5           stop sending for 5 s, sockets kept open
    skip@10:BTCUSDT:3    drop the next 3 diffs of BTCUSDT (the client sees a gap)
    duplicate@5:2        send every diff of the next 2 steps twice
    reorder@5            swap the next two diffs of each symbol
    malformed@5          send one frame that is not JSON
    unknown@5            send one event of an unknown type
    rest@5:500:2         the next 2 depth requests fail: 500 | timeout | 429 | 418
    restart@20:-500      an exchange restart: update ids jump by -500 (or +N)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from acts.errors import InputError

__all__ = ["Faults", "ScheduledFault", "parse_fault"]

REST_FAULTS = ("500", "timeout", "429", "418")


@dataclass
class Faults:
    """Pending faults of one running exchange (no module-level state)."""

    drop: bool = False
    stall_s: float = 0.0
    skip: dict[str, int] = field(default_factory=dict)
    duplicate: int = 0
    reorder: bool = False
    malformed: int = 0
    unknown: int = 0
    rest: deque[str] = field(default_factory=deque)
    restart: dict[str, int] = field(default_factory=dict)  # symbol ("*" = all) -> id delta


@dataclass(frozen=True)
class ScheduledFault:
    at_s: float
    kind: str
    args: tuple[str, ...]

    def apply(self, faults: Faults) -> None:
        kind, args = self.kind, self.args
        if kind == "drop":
            faults.drop = True
        elif kind == "stall":
            faults.stall_s = float(args[0]) if args else 5.0
        elif kind == "skip":
            faults.skip[args[0].upper()] = int(args[1]) if len(args) > 1 else 1
        elif kind == "duplicate":
            faults.duplicate += int(args[0]) if args else 1
        elif kind == "reorder":
            faults.reorder = True
        elif kind == "malformed":
            faults.malformed += 1
        elif kind == "unknown":
            faults.unknown += 1
        elif kind == "rest":
            faults.rest.extend([args[0]] * (int(args[1]) if len(args) > 1 else 1))
        elif kind == "restart":
            faults.restart["*"] = int(args[0]) if args else -1000


_KINDS = {"drop", "stall", "skip", "duplicate", "reorder", "malformed", "unknown", "rest", "restart"}


def parse_fault(spec: str) -> ScheduledFault:
    """``"stall@10:5"`` -> ``ScheduledFault(10.0, "stall", ("5",))``."""
    head, _, tail = spec.strip().partition(":")
    kind, _, at = head.partition("@")
    args = tuple(a for a in tail.split(":") if a) if tail else ()
    try:
        at_s = float(at) if at else 0.0
    except ValueError:
        raise InputError(f"fault {spec!r}: time after '@' must be seconds, like stall@10:5") from None
    if kind not in _KINDS:
        raise InputError(f"fault {spec!r}: unknown kind {kind!r}; use one of {', '.join(sorted(_KINDS))}")
    if kind == "skip" and not args:
        raise InputError(f"fault {spec!r}: say which symbol, like skip@10:BTCUSDT:3")
    if kind == "rest" and (not args or args[0] not in REST_FAULTS):
        raise InputError(f"fault {spec!r}: say how REST fails: {' | '.join(REST_FAULTS)}, like rest@5:500:2")
    return ScheduledFault(at_s, kind, args)
