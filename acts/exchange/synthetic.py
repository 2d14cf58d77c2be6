"""A synthetic recording: what the live recorder would have stored, without a network.

Walks a seeded ``MarketGenerator`` and emits events in receive order the way the recorder does:
diffs first, the start-up snapshot arriving a few diffs later (so those diffs straddle it),
a checkpoint snapshot every ``snapshot_every_s``, and after a sequence gap a gap marker, a resync
marker and a fresh snapshot. Receive times are exchange time plus a seeded network latency.
With ``streams`` naming ``trade`` and/or ``bookTicker``, each symbol's trades and tickers follow its
diff, received as the recorder would (the depth events are the same either way).
Used by the demo, the tests' fixtures and the benchmarks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from acts.core.events import Event, EventKind, ResyncReason, decode_message, marker
from acts.core.symbols import StreamKind, depth_stream
from acts.core.timeunits import MINUTE_MS
from acts.exchange.generator import DEFAULT_START_MS, STEP_MS, MarketGenerator
from acts.exchange.wire import message_kind

__all__ = ["synthetic_events"]

_SNAPSHOT_DELAY_STEPS = 3  # diffs received while the REST snapshot is in flight


def synthetic_events(
    symbols: Sequence[str],
    minutes: float,
    seed: int = 7,
    start_ms: int = DEFAULT_START_MS,
    snapshot_every_s: int = 3600,
    gap_rate: float = 0.0,
    depth: int = 300,
    snapshot_limit: int = 1000,
    streams: Sequence[StreamKind] = (StreamKind.DEPTH,),
) -> Iterator[Event]:
    """Events of all ``symbols`` interleaved in receive order, ``minutes`` of exchange time."""
    gen = MarketGenerator(symbols, seed=seed, start_ms=start_ms, depth=depth, gap_rate=gap_rate)
    latency = random.Random(f"latency:{seed}")
    steps = int(minutes * MINUTE_MS / STEP_MS)
    every = max(1, snapshot_every_s * 1000 // STEP_MS)
    last_u = {s: None for s in symbols}
    # symbol -> (step at which the snapshot answer arrives, the snapshot taken when requested)
    in_flight: dict[str, tuple[int, dict]] = {}
    recv_ns = start_ms * 1_000_000
    for s in symbols:
        yield marker(EventKind.CONNECT, s, recv_ns, stream=depth_stream(s))
    extras = set(streams) - {StreamKind.DEPTH}
    for step in range(steps):
        for msg in gen.step_streams() if extras else gen.step():
            kind = message_kind(msg)
            if kind is not StreamKind.DEPTH:
                if kind in extras:
                    yield decode_message(msg, recv_ns + 1)
                continue
            symbol = msg["s"]
            recv_ns = max(recv_ns, msg["E"] * 1_000_000 + latency.randrange(2_000_000, 40_000_000))
            prev = last_u[symbol]
            if prev is not None and msg["U"] != prev + 1:
                yield marker(EventKind.GAP, symbol, recv_ns, expected=prev + 1, got=msg["U"])
                yield marker(EventKind.RESYNC, symbol, recv_ns, reason=ResyncReason.GAP)
                in_flight.setdefault(symbol, (step + _SNAPSHOT_DELAY_STEPS, gen.snapshot(symbol, snapshot_limit)))
            last_u[symbol] = msg["u"]
            yield decode_message(msg, recv_ns)
            if step == 0 or (step % every == 0 and symbol not in in_flight):
                in_flight.setdefault(symbol, (step + _SNAPSHOT_DELAY_STEPS, gen.snapshot(symbol, snapshot_limit)))
            due = in_flight.get(symbol)
            if due is not None and due[0] == step:
                del in_flight[symbol]
                yield decode_message(due[1], recv_ns + 1, symbol)
