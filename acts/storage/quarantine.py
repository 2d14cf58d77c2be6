"""Messages that cannot be stored, kept aside with where they came from: one format for import and roll.

``DATA/quarantine/<name>.jsonl``, one JSON object a line, keys sorted::

    {"error": "b entry ['1.123456789', '1']: '1.123456789' has 9 decimals; ...",
     "text": "<the line or payload as received>",       # or "payload_b64" when it is not UTF-8
     "where": "capture.jsonl:250"}                        # import: file:line
     "where": "1714521600000000000.journal record 812"    # roll / recovery: journal and record number

Journal entries also carry ``recv_ns``, ``channel`` and ``symbol`` (what the frame said besides its payload).
Nothing is lost: each entry holds the exact bytes received.

Strategy: an import appends (several imports, one file), while a journal roll writes one file per journal
through a temp file and a rename, so rolling the same journal again (after a crash) rewrites the same file.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import IO, Any

from acts.storage.layout import DataLayout

__all__ = ["Quarantine", "MAX_EXAMPLES"]

#: ``where: error`` lines kept for the report (the file holds them all).
MAX_EXAMPLES = 20


class Quarantine:
    """A quarantine file, opened at the first entry. ``count`` and ``examples`` say what went in."""

    def __init__(self, data_dir: Path, name: str, append: bool) -> None:
        self.path = DataLayout(data_dir).quarantine / f"{name}.jsonl"
        self._append = append
        self._tmp = self.path.with_suffix(f".tmp-{os.getpid()}")
        self._fh: IO[str] | None = None
        self.count = 0
        self.examples: list[str] = []  # "where: error", the first MAX_EXAMPLES

    def add(self, where: str, error: str, raw: bytes | str, **extra: Any) -> None:
        """Keep one message: ``raw`` exactly as received, ``extra`` (JSON values) alongside."""
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {error}")
        entry: dict[str, Any] = {"where": where, "error": error, **extra}
        if isinstance(raw, str):
            entry["text"] = raw
        else:
            try:
                entry["text"] = raw.decode()
            except UnicodeDecodeError:
                entry["payload_b64"] = base64.b64encode(raw).decode()
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path if self._append else self._tmp, "a" if self._append else "w", encoding="utf-8")
        self._fh.write(json.dumps(entry, sort_keys=True) + "\n")

    def close(self) -> Path | None:
        """Finish the file; its path, or None if nothing was quarantined."""
        fh, self._fh = self._fh, None
        if fh is None:
            return None
        fh.close()
        if not self._append:
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop a roll's unfinished file (after an error; the roll will run again)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()
        if not self._append:
            self._tmp.unlink(missing_ok=True)
