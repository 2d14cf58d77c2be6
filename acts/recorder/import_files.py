"""Capture files as text lines, whatever their compression (the one opener ``acts import`` uses).

A file is ``.gz``, ``.zst``, ``.bz2``, ``.xz`` or plain, recognised by its magic bytes whatever its name; a
UTF-8 BOM is dropped and CRLF read as a line end. The stored file stays reachable (``Capture.tell``) so
progress counts bytes as stored, compressed or not.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO

import zstandard

from acts.core.errors import InputError

__all__ = ["Compression", "Capture", "open_capture", "READ_ERRORS"]


class Compression(StrEnum):
    PLAIN = "plain"
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"
    XZ = "xz"


#: Magic bytes of the compressed formats read transparently.
_MAGIC = ((b"\x1f\x8b", Compression.GZIP), (b"\x28\xb5\x2f\xfd", Compression.ZSTD), (b"BZh", Compression.BZIP2),
          (b"\xfd7zXZ\x00", Compression.XZ))
#: Errors a damaged compressed file raises part-way through.
READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError)


@dataclass
class Capture:
    """An open capture: ``lines`` (text) read through ``stored`` (the file's bytes as stored)."""

    path: Path
    compression: Compression
    stored: BinaryIO
    lines: IO[str]

    def tell(self) -> int:
        """Bytes of the stored file read so far."""
        return self.stored.tell()

    def cut_short(self) -> bool:
        """True when a zstd file ends inside a frame.

        zstandard's reader stops quietly at a cut frame (gzip, bzip2 and xz raise), so a truncated ``.zst``
        capture would look complete; this second pass asks each frame whether it ended.
        """
        if self.compression is not Compression.ZSTD:
            return False
        inside = False
        with open(self.path, "rb") as fh:
            frame = zstandard.ZstdDecompressor().decompressobj()
            for block in iter(lambda: fh.read(1 << 16), b""):
                while block:
                    frame.decompress(block)  # the text was read already; only whether the frame ends matters
                    inside = not frame.eof
                    block = frame.unused_data if frame.eof else b""
                    if frame.eof:
                        frame = zstandard.ZstdDecompressor().decompressobj()
        return inside

    def close(self) -> None:
        self.lines.close()
        self.stored.close()  # the decompressors do not close a file object they were given

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_capture(path: Path) -> Capture:
    """Open a capture for reading lines; ``InputError`` naming it if it cannot be read."""
    try:
        stored: BinaryIO = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        head = stored.read(6)
        stored.seek(0)
        kind = next((name for magic, name in _MAGIC if head.startswith(magic)), Compression.PLAIN)
        raw: Any = stored
        if kind is Compression.GZIP:
            raw = gzip.GzipFile(fileobj=stored, mode="rb")
        elif kind is Compression.ZSTD:
            raw = zstandard.open(stored, "rb")
        elif kind is Compression.BZIP2:
            raw = bz2.BZ2File(stored, "rb")
        elif kind is Compression.XZ:
            raw = lzma.LZMAFile(stored, "rb")
    except OSError as exc:
        stored.close()
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return Capture(path, kind, stored, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace"))
