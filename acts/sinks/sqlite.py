"""The embedded default store: one SQLite file under the data dir, same upsert semantics as MongoDB."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acts.core.errors import SinkError

__all__ = ["SqliteSink"]


class SqliteSink:
    """Entries as canonical JSON (sorted keys; floats round-trip exactly through ``repr``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS entries (symbol TEXT NOT NULL, minute TEXT NOT NULL, doc TEXT NOT NULL,"
                " PRIMARY KEY (symbol, minute))"
            )
        except (sqlite3.Error, OSError) as exc:
            raise SinkError(f"cannot open the entry store {path}: {exc}") from None
        self._lock = threading.Lock()  # the recorder writes from a worker thread

    def write(self, entries: Sequence[dict[str, Any]], timeout_s: float | None = None) -> int:
        rows = [(e["symbol"], e["minute"], json.dumps(e, sort_keys=True, allow_nan=False)) for e in entries]
        try:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO entries (symbol, minute, doc) VALUES (?, ?, ?)"
                    " ON CONFLICT (symbol, minute) DO UPDATE SET doc = excluded.doc", rows)
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise SinkError(f"cannot write entries to {self.path}: {exc}") from None
        return len(rows)

    def read(self, symbols: Sequence[str] | None = None, start: str | None = None,
             end: str | None = None) -> list[dict[str, Any]]:
        clauses, args = [], []
        if symbols:
            clauses.append(f"symbol IN ({','.join('?' * len(symbols))})")
            args += list(symbols)
        if start is not None:
            clauses.append("minute >= ?")
            args.append(start)
        if end is not None:
            clauses.append("minute < ?")
            args.append(end)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(f"SELECT doc FROM entries{where} ORDER BY minute, symbol", args).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def delete(self, keys: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM entries WHERE symbol = ? AND minute = ?", keys)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()  # closing twice is harmless in sqlite3
