"""Minute entries in MongoDB: a unique index on ``(symbol, minute)`` and upserts, so restarts and
backfills never duplicate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from acts.core.errors import SinkError
from acts.core.secrets import Scrubber, redact_uri, uri_problem
from acts.sinks.markets import ENTRIES_COLLECTION

__all__ = ["MongoSink"]


class MongoSink:
    """``timeout_ms`` bounds each operation (server selection included); ``write(..., timeout_s)``
    may bound one write tighter (a shutdown must not wait out an outage)."""

    def __init__(self, uri: str, database: str = "acts", collection: str = ENTRIES_COLLECTION,
                 timeout_ms: int = 5000) -> None:
        import pymongo
        from pymongo.errors import PyMongoError

        self._errors = PyMongoError
        self._pymongo = pymongo
        self.where = redact_uri(uri)
        self.timeout_s = timeout_ms / 1000
        self._scrub = Scrubber.for_uri(uri)
        problem = uri_problem(uri)
        if problem is not None:  # before the driver parses it: its messages may quote pieces of the password
            raise SinkError(f"MongoDB URI {self.where} is not valid: {problem}")
        try:
            # pymongo connects lazily: an unreachable server at start-up fails the first write, not this.
            self._client: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms,
                                                    connectTimeoutMS=timeout_ms, socketTimeoutMS=timeout_ms * 4)
        except (PyMongoError, ValueError, TypeError) as exc:
            raise SinkError(f"MongoDB URI {self.where} is not valid: {self._safe(exc)}") from None
        self._coll = self._client[database][collection]
        self._indexed = False

    def _ensure_index(self) -> None:
        if not self._indexed:
            self._coll.create_index([("symbol", 1), ("minute", 1)], unique=True, name="symbol_minute")
            self._indexed = True

    def ping(self) -> None:
        """Raise ``SinkError`` unless the server answers."""
        try:
            self._client.admin.command("ping")
            self._ensure_index()
        except self._errors as exc:
            raise SinkError(f"MongoDB at {self.where} is not usable: {self._safe(exc)}") from None

    def _safe(self, exc: Exception) -> str:
        return self._scrub(str(exc))[:300]  # scrubbed before it is cut: a cut could split a secret

    def write(self, entries: Sequence[dict[str, Any]], timeout_s: float | None = None) -> int:
        """Upsert ``entries``; the whole write (server selection included) takes at most ``timeout_s``
        (default: the sink's own bound) before it raises ``SinkError``."""
        if not entries:
            return 0
        ops = [self._pymongo.ReplaceOne({"symbol": e["symbol"], "minute": e["minute"]}, dict(e), upsert=True)
               for e in entries]
        bound = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        try:
            with self._pymongo.timeout(bound):
                self._ensure_index()
                self._coll.bulk_write(ops, ordered=True)
        except self._errors as exc:
            raise SinkError(f"cannot write entries to MongoDB at {self.where}: {self._safe(exc)}") from None
        return len(ops)

    def read(self, symbols: Sequence[str] | None = None, start: str | None = None,
             end: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if symbols:
            query["symbol"] = {"$in": list(symbols)}
        minute: dict[str, str] = {}
        if start is not None:
            minute["$gte"] = start
        if end is not None:
            minute["$lt"] = end
        if minute:
            query["minute"] = minute
        try:
            docs = list(self._coll.find(query, {"_id": 0}).sort([("minute", 1), ("symbol", 1)]))
        except self._errors as exc:
            raise SinkError(f"cannot read entries from MongoDB at {self.where}: {self._safe(exc)}") from None
        return docs

    def close(self) -> None:
        self._client.close()
