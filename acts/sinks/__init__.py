"""Stores for minute entries: one small interface, upsert by ``(symbol, minute)``."""

from __future__ import annotations

from acts.sinks.base import Sink
from acts.sinks.markets import ENTRIES_COLLECTION, entries_collection, entries_file
from acts.sinks.mongo import MongoSink
from acts.sinks.spool import SpoolingSink
from acts.sinks.sqlite import SqliteSink

__all__ = ["Sink", "SqliteSink", "MongoSink", "SpoolingSink", "ENTRIES_COLLECTION", "entries_collection",
           "entries_file"]
