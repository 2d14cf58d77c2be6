"""Stores for minute entries: one small interface, upsert by ``(symbol, minute)``."""

from __future__ import annotations

from features.sinks.base import Sink
from features.sinks.mongo import MongoSink
from features.sinks.spool import SpoolingSink
from features.sinks.sqlite import SqliteSink

__all__ = ["Sink", "SqliteSink", "MongoSink", "SpoolingSink"]
