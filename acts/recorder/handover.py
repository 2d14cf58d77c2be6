"""Replacing a websocket connection without losing or reordering a frame (pure: no I/O, no clock).

Before Binance's 24 h cut the recorder opens a second connection for the same streams while the
old one keeps delivering. Both see the same events, but not in step: either may be ahead by a
few frames (each has its own queue in python-binance). Feeding frames in arrival order would let
the new connection's first frame overtake ones the old connection has not delivered yet -- a
spurious gap and a resync. So while both are open, the old connection stays the feed and the new
one's frames wait until the old one has delivered them too (then they go in as duplicates, which
the sequencer ignores, so every received frame is still journaled). Once the old connection has
caught up with everything the new one holds, the new one takes over and the old one closes. If
the old one dies first, what the new one holds goes in at once; a real gap is then recorded as one.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

__all__ = ["Handover", "frame_key"]


class Frame(Protocol):
    @property
    def payload(self) -> bytes: ...


F = TypeVar("F", bound=Frame)


def frame_key(payload: bytes) -> Hashable:
    """What identifies a frame across connections: a diff's (symbol, U, u), else its bytes."""
    try:
        message = json.loads(payload)
        data = message.get("data", message)
        if data.get("e") == "depthUpdate":
            return ("depthUpdate", data.get("s"), data.get("U"), data.get("u"))
    except (ValueError, AttributeError):
        pass
    return payload


class Handover(Generic[F]):
    """Merges the frames of an old and a new connection into one in-order feed, ``deliver``.

    ``limit`` bounds what the new connection may hold while the old one lags behind it (past it
    the old one is given up, ``old_gone``, as if it had died), and how many of the old one's
    recent frames are remembered while the new one is still connecting.
    """

    def __init__(self, deliver: Callable[[F], None], limit: int = 100_000) -> None:
        self._deliver = deliver
        self._limit = limit
        self._held: OrderedDict[Hashable, list[F]] = OrderedDict()  # the new connection's, in order
        # What the old one delivered lately (a dict as an ordered set: the oldest go first).
        self._delivered: OrderedDict[Hashable, None] = OrderedDict()
        self._new_started = False
        self.done = False

    def old_frame(self, frame: F) -> bool:
        """Deliver a frame of the old connection; True when the old connection can close now."""
        self._deliver(frame)
        if self.done:
            return True
        key = frame_key(frame.payload)
        if key in self._held:
            self._release_held(through=key)  # the old connection caught up with held frames
        else:
            self._delivered[key] = None
            if len(self._delivered) > self._limit:
                self._delivered.popitem(last=False)
        if self._new_started and not self._held:
            self._finish()
        return self.done

    def new_frame(self, frame: F) -> None:
        """Take a frame of the new connection: delivered once the old connection has delivered it too."""
        if self.done:
            self._deliver(frame)
            return
        self._new_started = True
        key = frame_key(frame.payload)
        if key in self._delivered:
            # The old connection is past this frame, so past anything held before it (frames it
            # never had): release those, then this one, a duplicate.
            self._release_held()
            self._deliver(frame)
            return
        self._held.setdefault(key, []).append(frame)
        if len(self._held) > self._limit:
            self.old_gone()

    def old_gone(self) -> None:
        """The old connection closed or failed: deliver what the new one holds; it is the feed now."""
        self._release_held()
        self._finish()

    def _release_held(self, through: Hashable | None = None) -> None:
        """Deliver held frames in order: all of them, or up to and including the frame ``through``."""
        while self._held:
            key, frames = self._held.popitem(last=False)
            for held in frames:
                self._deliver(held)
            if key == through:
                return

    def _finish(self) -> None:
        self.done = True
        self._delivered.clear()
