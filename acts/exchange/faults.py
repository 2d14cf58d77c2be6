"""Faults the local exchange injects on purpose, one shot (or N shots) at a time, never global chaos.

Spec syntax (``acts exchange --fault SPEC``, repeatable; ``LocalExchange.inject(SPEC)`` from tests)::

    KIND[@DELAY][:ARG]...

``DELAY`` and durations are a number with an optional unit ``ms``, ``s`` (the default), ``m`` or
``h`` and count wall-clock time: a fault given at start-up fires ``DELAY`` after the exchange starts,
one injected while it runs fires ``DELAY`` after the call. ``SYMBOL`` is optional (default: every
symbol, each on its own count) and ``N`` defaults to 1.

=====================================  ==================================================================
``drop[:close|reset]``                 close every websocket: a close frame 1001 (default) or a TCP reset
``stall[:DURATION][:burst]``           send nothing for DURATION (default 5 s), sockets and pings kept;
                                       diffs of the stall are lost (``burst``: held, then sent at once)
``skip[:SYMBOL][:N]``                  drop the next N diffs (the client sees an update-id gap);
                                       alias ``skip_ids``
``duplicate[:SYMBOL][:N]``             send each of the next N diffs twice; alias ``dup``
``reorder[:SYMBOL][:N]``               swap the next N pairs of consecutive diffs
``malformed[:N]``                      one frame that is not JSON, on each of the next N steps
``unknown[:N]``                        one event of an unknown type (``"e": "unknownEvent"``), N times
``rest:500|5xx|timeout|429|418[:N]``   the next N ``/api/v3/depth`` answers fail that way (``timeout``
                                       hangs until the client gives up or the exchange stops)
``restart[:DELTA]``                    an exchange restart: update ids (diffs and snapshots) jump by
                                       DELTA (``+5000``, ``-5000``); without DELTA they restart at 1
``skip_trades[:SYMBOL][:N]``           drop the next N trades (the client sees a trade-id gap);
                                       alias ``drop_trades``
``bad_ticker[:SYMBOL][:N]``            the next N bookTickers carry twice the true best bid quantity
                                       (each names a diff's final ``u``: the audit must catch it)
=====================================  ==================================================================

Examples: ``drop@30s``, ``skip_ids@10s``, ``stall@5s:3s``, ``skip@10:BTCUSDT:3``, ``rest@5:500:2``,
``restart@20:-500``, ``skip_trades@5:BTCUSDT:2``, ``bad_ticker@5:BTCUSDT``.

``skip``, ``duplicate`` and ``reorder`` act on depth diffs only; trades and tickers pass them by.

``Faults`` holds the pending faults of one exchange and is sans-I/O: the server hands it each
step's messages with the current time and gets back a ``StepPlan`` saying what to send.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from acts.core.errors import InputError
from acts.core.symbols import StreamKind
from acts.exchange.wire import message_kind

__all__ = ["FaultKind", "DropMode", "STALL_BURST", "REST_TIMEOUT", "REST_REFUSALS", "Fault", "StepPlan", "Faults",
           "parse_fault", "parse_duration", "ALL"]

#: ``Fault.symbol`` meaning every symbol (each on its own count).
ALL = "*"


class DropMode(StrEnum):
    """How ``drop`` ends connections."""

    #: A close frame 1001 (going away).
    CLOSE = "close"
    #: A TCP reset, no close frame.
    RESET = "reset"


#: ``stall`` mode: the stall's diffs are held, then sent at once (without it, ``""``: they are lost).
STALL_BURST = "burst"
#: ``rest`` mode: the answer hangs until the client gives up or the exchange stops.
REST_TIMEOUT = "timeout"
#: ``rest`` modes answered as a rate-limit refusal with ``Retry-After``: too many requests, IP banned.
REST_REFUSALS = ("429", "418")
#: How ``/api/v3/depth`` fails under ``rest``: these, or any other ``5xx`` status.
REST_MODES = ("500", "502", "503", "504", REST_TIMEOUT, *REST_REFUSALS)
_DEFAULT_STALL_S = 5.0
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class FaultKind(StrEnum):
    DROP = "drop"
    STALL = "stall"
    SKIP = "skip"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REST = "rest"
    RESTART = "restart"
    SKIP_TRADES = "skip_trades"
    BAD_TICKER = "bad_ticker"


_ALIASES = {"skip_ids": FaultKind.SKIP, "dup": FaultKind.DUPLICATE, "drop_trades": FaultKind.SKIP_TRADES}
_PER_SYMBOL = (FaultKind.SKIP, FaultKind.DUPLICATE, FaultKind.REORDER, FaultKind.SKIP_TRADES, FaultKind.BAD_TICKER)


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed fault; ``spec`` is the text it came from (for logs)."""

    kind: FaultKind
    delay_s: float = 0.0
    symbol: str = ALL
    count: int = 1
    seconds: float = _DEFAULT_STALL_S  # stall duration
    mode: str = ""  # drop: a DropMode; stall: "" | STALL_BURST; rest: one of REST_MODES or a 5xx status
    delta: int | None = None  # restart: id jump; None: ids restart at 1
    spec: str = ""


def parse_duration(text: str, what: str = "duration") -> float:
    """``"500ms"`` -> 0.5, ``"30s"`` / ``"30"`` -> 30.0, ``"2m"`` -> 120.0."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InputError(f"{what} {text!r} is not a duration; write it like 30, 30s, 500ms or 2m")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def _count(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"fault {spec!r}: count {text!r} must be a whole number >= 1")
    return int(text)


def parse_fault(spec: str) -> Fault:
    """``"stall@5s:3s"`` -> ``Fault(FaultKind.STALL, delay_s=5.0, seconds=3.0)``; raises ``InputError``."""
    text = spec.strip()
    head, *args = text.split(":")
    name, _, delay = head.partition("@")
    name = name.strip().lower()
    kind = _ALIASES.get(name) or next((k for k in FaultKind if k.value == name), None)
    if kind is None:
        known = ", ".join([k.value for k in FaultKind] + list(_ALIASES))
        raise InputError(f"fault {spec!r}: unknown kind {name!r}; use one of {known} (see acts/exchange/faults.py)")
    base = Fault(kind, parse_duration(delay, f"fault {spec!r}: delay") if delay else 0.0, spec=text)
    return _with_args(base, [a.strip() for a in args if a.strip()])


def _with_args(base: Fault, args: list[str]) -> Fault:
    spec, kind = base.spec, base.kind
    if kind in _PER_SYMBOL:
        symbol, count = ALL, 1
        for arg in args:
            if arg.isdigit():
                count = _count(arg, spec)
            elif arg.isalnum() and symbol == ALL:
                symbol = arg.upper()
            else:
                raise InputError(f"fault {spec!r}: {kind.value} takes an optional symbol and count, "
                                 f"like {kind.value}:BTCUSDT:3")
        return replace(base, symbol=symbol, count=count)
    if kind in (FaultKind.MALFORMED, FaultKind.UNKNOWN):
        if len(args) > 1:
            raise InputError(f"fault {spec!r}: {kind.value} takes an optional count, like {kind.value}:2")
        return replace(base, count=_count(args[0], spec) if args else 1)
    if kind is FaultKind.DROP:
        if len(args) > 1 or (args and args[0] not in tuple(DropMode)):
            raise InputError(f"fault {spec!r}: drop takes one of {' | '.join(DropMode)}, like drop:reset")
        return replace(base, mode=DropMode(args[0]) if args else DropMode.CLOSE)
    if kind is FaultKind.STALL:
        seconds, mode = _DEFAULT_STALL_S, ""
        for arg in args:
            if arg == STALL_BURST:
                mode = arg
            else:
                seconds = parse_duration(arg, f"fault {spec!r}: stall duration")
        return replace(base, seconds=seconds, mode=mode)
    if kind is FaultKind.REST:
        if not args or not (args[0] in REST_MODES or re.fullmatch(r"5\d\d", args[0])) or len(args) > 2:
            raise InputError(f"fault {spec!r}: say how REST fails: {' | '.join(REST_MODES)}, like rest@5:500:2")
        return replace(base, mode=args[0], count=_count(args[1], spec) if len(args) > 1 else 1)
    # restart
    if len(args) > 1 or (args and not re.fullmatch(r"[+-]?\d+", args[0])):
        raise InputError(f"fault {spec!r}: restart takes an id jump like restart:-5000 or restart:+5000")
    return replace(base, delta=int(args[0]) if args else None)


@dataclass(slots=True)
class StepPlan:
    """What the server does with one step: close everything, hold it back, or send ``messages`` (+ extras)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    drop: DropMode | None = None  # end every websocket; nothing of this step is sent
    stalled: bool = False  # send nothing now
    burst: bool = False  # (stalled) keep this step's frames and send them when the stall ends
    malformed: bool = False  # add one frame that is not JSON
    unknown: bool = False  # add one event of an unknown type


class Faults:
    """Pending faults of one running exchange (no module-level state).

    Per-message faults count per symbol; ``restart`` shifts a symbol's update ids by an offset kept
    here, applied to diffs (``plan``) and snapshots (``renumber_snapshot``) alike. Times (``now``)
    are seconds on any monotonic clock, the same for every call.
    """

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        self.fired: list[Fault] = []  # every fault armed so far, in order
        self._scheduled: list[tuple[float, int, Fault]] = []  # heap of (due, seq, fault)
        self._seq = 0
        self._drop: DropMode | None = None
        self._stall_s = 0.0
        self._stall_burst = False
        self._stall_until = float("-inf")
        self._skip: dict[str, int] = {}
        self._duplicate: dict[str, int] = {}
        self._reorder: dict[str, int] = {}
        self._skip_trades: dict[str, int] = {}
        self._bad_ticker: dict[str, int] = {}
        self._held: dict[str, dict[str, Any]] = {}  # reorder: a diff held back until the next one
        self._malformed = 0
        self._unknown = 0
        self._rest: deque[str] = deque()
        self._restart: dict[str, int | None] = {}  # symbol -> id jump due at its next diff
        self._offset: dict[str, int] = {}  # symbol -> id offset after restarts

    # --- arming ---------------------------------------------------------------------------

    def check(self, fault: Fault | str) -> Fault:
        """The parsed fault; ``InputError`` if it is malformed or names a symbol that is not served."""
        if isinstance(fault, str):
            fault = parse_fault(fault)
        if fault.symbol != ALL and fault.symbol not in self.symbols:
            raise InputError(f"fault {fault.spec!r}: symbol {fault.symbol} is not served; "
                             f"use one of {', '.join(self.symbols)}")
        return fault

    def inject(self, fault: Fault | str, now: float) -> Fault:
        """Arm ``fault`` now, or at ``now + fault.delay_s``; returns the parsed fault."""
        fault = self.check(fault)
        if fault.delay_s > 0:
            self._seq += 1
            heapq.heappush(self._scheduled, (now + fault.delay_s, self._seq, fault))
        else:
            self._arm(fault)
        return fault

    def arm_due(self, now: float) -> list[Fault]:
        """Arm the scheduled faults whose time has come; returns them."""
        armed = []
        while self._scheduled and self._scheduled[0][0] <= now:
            fault = heapq.heappop(self._scheduled)[2]
            self._arm(fault)
            armed.append(fault)
        return armed

    def _arm(self, fault: Fault) -> None:
        self.fired.append(fault)
        targets = self.symbols if fault.symbol == ALL else [fault.symbol]
        kind = fault.kind
        if kind is FaultKind.DROP:
            self._drop = DropMode(fault.mode or DropMode.CLOSE)
        elif kind is FaultKind.STALL:
            self._stall_s, self._stall_burst = fault.seconds, fault.mode == STALL_BURST
        elif kind in _PER_SYMBOL:
            counters = {FaultKind.SKIP: self._skip, FaultKind.DUPLICATE: self._duplicate,
                        FaultKind.REORDER: self._reorder, FaultKind.SKIP_TRADES: self._skip_trades,
                        FaultKind.BAD_TICKER: self._bad_ticker}[kind]
            for symbol in targets:
                counters[symbol] = counters.get(symbol, 0) + fault.count
        elif kind is FaultKind.MALFORMED:
            self._malformed += fault.count
        elif kind is FaultKind.UNKNOWN:
            self._unknown += fault.count
        elif kind is FaultKind.REST:
            self._rest.extend([fault.mode] * fault.count)
        elif kind is FaultKind.RESTART:
            for symbol in targets:
                self._restart[symbol] = fault.delta

    @property
    def pending(self) -> bool:
        """Anything armed or scheduled that has not happened yet."""
        return bool(self._scheduled or self._drop or self._stall_s or any(self._skip.values())
                    or any(self._duplicate.values()) or any(self._reorder.values()) or self._held
                    or any(self._skip_trades.values()) or any(self._bad_ticker.values())
                    or self._malformed or self._unknown or self._rest or self._restart)

    # --- the stream -----------------------------------------------------------------------

    def plan(self, messages: list[dict[str, Any]], now: float) -> StepPlan:
        """Apply the armed stream faults to one step's messages (``depthUpdate``, ``trade``, ``bookTicker``)."""
        self.arm_due(now)
        plan = StepPlan()
        for msg in messages:
            symbol = msg["s"]
            kind = message_kind(msg)
            if kind is not StreamKind.DEPTH:
                out = self._other(symbol, kind, msg)
                if out is not None:
                    plan.messages.append(out)
                continue
            msg = self._renumber(symbol, msg)
            if self._skip.get(symbol):
                self._skip[symbol] -= 1
                continue
            held = self._held.pop(symbol, None)
            if held is None and self._reorder.get(symbol):
                self._reorder[symbol] -= 1
                self._held[symbol] = msg
                continue
            for out in (msg,) if held is None else (msg, held):
                plan.messages.append(out)
                if self._duplicate.get(symbol):
                    self._duplicate[symbol] -= 1
                    plan.messages.append(out)
        if self._drop:
            plan.drop, self._drop = self._drop, None
            self._held.clear()  # in flight on the dropped connections
            return plan
        if self._stall_s:
            self._stall_until, self._stall_s = now + self._stall_s, 0.0
        if now < self._stall_until:
            plan.stalled, plan.burst = True, self._stall_burst
            return plan
        if self._malformed:
            self._malformed -= 1
            plan.malformed = True
        if self._unknown:
            self._unknown -= 1
            plan.unknown = True
        return plan

    def _other(self, symbol: str, kind: StreamKind, msg: dict[str, Any]) -> dict[str, Any] | None:
        """A trade (None: dropped by ``skip_trades``) or a bookTicker (renumbered as the diffs are;
        its bid quantity doubled by ``bad_ticker``)."""
        if kind is StreamKind.TRADE:
            if self._skip_trades.get(symbol):
                self._skip_trades[symbol] -= 1
                return None
            return msg
        offset = self._offset.get(symbol, 0)
        if offset:
            msg = {**msg, "u": msg["u"] + offset}
        if self._bad_ticker.get(symbol):
            self._bad_ticker[symbol] -= 1
            msg = {**msg, "B": str(Decimal(msg["B"]) * 2)}
        return msg

    def _renumber(self, symbol: str, msg: dict[str, Any]) -> dict[str, Any]:
        if symbol in self._restart:
            delta = self._restart.pop(symbol)
            offset = self._offset.get(symbol, 0)
            # Ids never go below 1, whatever the jump.
            offset = 1 - msg["U"] if delta is None else max(offset + delta, 1 - msg["U"])
            self._offset[symbol] = offset
        offset = self._offset.get(symbol, 0)
        if not offset:
            return msg
        if "pu" in msg:  # futures: the previous u moves with the ids, so the chain holds past the jump
            return {**msg, "U": msg["U"] + offset, "u": msg["u"] + offset, "pu": msg["pu"] + offset}
        return {**msg, "U": msg["U"] + offset, "u": msg["u"] + offset}

    # --- REST -----------------------------------------------------------------------------

    def take_rest_failure(self) -> str | None:
        """How the next ``/api/v3/depth`` answer fails (``"500"``, ``"timeout"``, ...), or None."""
        return self._rest.popleft() if self._rest else None

    def renumber_snapshot(self, symbol: str, snapshot: dict[str, Any]) -> dict[str, Any]:
        """A depth snapshot with ``lastUpdateId`` on the same numbering as the diffs sent."""
        offset = self._offset.get(symbol, 0)
        return snapshot if not offset else {**snapshot, "lastUpdateId": snapshot["lastUpdateId"] + offset}
