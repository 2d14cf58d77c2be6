"""Journal records <-> events: the one decoder the live path, the roll and recovery all use.

Strategy: the recorder journals every raw message *first*, then turns that journal record into an
event with ``record_to_event`` -- the very function that later rolls the journal into segments.
Live rows and replayed rows therefore come from identical events in identical order.
"""

from __future__ import annotations

import json

from acts.core.errors import MalformedMessageError
from acts.core.events import Event, EventKind, Marker, decode_message
from acts.storage.journal import Channel, JournalRecord

__all__ = ["record_to_event", "marker_record"]


def marker_record(kind: EventKind, symbol: str, recv_ns: int, **detail: object) -> JournalRecord:
    """A marker as a journal record (payload: ``{"kind": k, "detail": {...}}``)."""
    payload = {"kind": int(kind), "detail": detail}
    return JournalRecord(recv_ns, Channel.MARKER, symbol, json.dumps(payload, sort_keys=True).encode())


def record_to_event(record: JournalRecord) -> Event:
    """The one decoder from journal records to events; ``MalformedMessageError`` if it is not one, or if it
    holds a value that cannot be stored exactly or an event time far from the record's receive time
    (``decode_message``): live ingest, the roll and recovery skip and quarantine the very same records."""
    try:
        msg = json.loads(record.payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedMessageError(f"not JSON: {exc}") from None
    if record.channel is Channel.MARKER:
        # Only marker kinds: a depth, snapshot, trade or bookTicker arrives as the exchange's own message.
        kinds = {int(k) for k in EventKind} - {EventKind.DEPTH, EventKind.SNAPSHOT, EventKind.TRADE,
                                               EventKind.BOOK_TICKER}
        kind = msg.get("kind") if isinstance(msg, dict) else None
        if type(kind) is not int or kind not in kinds or not isinstance(msg.get("detail", {}), dict):
            raise MalformedMessageError(f"marker record {record.payload[:60]!r} is not {{'kind': k, 'detail': {{}}}}")
        detail = json.dumps(msg.get("detail", {}), sort_keys=True, separators=(",", ":"))
        return Marker(EventKind(msg["kind"]), record.symbol, record.recv_ns, detail)
    event = decode_message(msg, record.recv_ns, record.symbol or None)
    if record.channel is Channel.SNAPSHOT and record.symbol and event.symbol != record.symbol:
        raise MalformedMessageError(f"snapshot for {event.symbol} journaled as {record.symbol}")
    return event
