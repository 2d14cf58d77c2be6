"""The recorder's crash-safe journal: raw messages, zstd-framed, appended and fsynced every second.

Layout::

    file   := b"ACTSJRNL" version:u8 reserved:7 frame*
    frame  := b"AJF1" compressed_len:u32 raw_len:u32 crc32(compressed):u32 zstd(record*)
    record := recv_ns:i64 channel:u8 symbol_len:u16 payload_len:u32 symbol payload

All integers little-endian. Each frame is an independent zstd frame carrying one batch, so a
crash loses at most the batch not yet flushed (``flush_interval_s``, one second by default). A
reader stops at a truncated tail frame (reported in ``dropped_bytes``) and skips a corrupt
middle frame by searching for the next frame magic, so one bad write never hides the rest.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import zstandard

from acts.errors import CorruptSegmentError

__all__ = ["Channel", "JournalRecord", "JournalWriter", "JournalScan", "read_journal", "list_journals"]

FILE_MAGIC = b"ACTSJRNL"
FILE_VERSION = 1
_FILE_HEADER = FILE_MAGIC + bytes([FILE_VERSION]) + bytes(7)
FRAME_MAGIC = b"AJF1"
_FRAME = struct.Struct("<4sIII")
_RECORD = struct.Struct("<qBHI")
#: A batch is flushed early when its raw size passes this.
MAX_BATCH_BYTES = 1 << 20
_MAX_FRAME_BYTES = 1 << 28  # anything larger is a corrupt length field


class Channel(IntEnum):
    STREAM = 0  # a websocket text frame, byte for byte
    SNAPSHOT = 1  # a REST depth answer body
    MARKER = 2  # connect / disconnect / gap / resync, as JSON


@dataclass(frozen=True, slots=True)
class JournalRecord:
    recv_ns: int
    channel: Channel
    symbol: str
    payload: bytes


def _encode(record: JournalRecord) -> bytes:
    symbol = record.symbol.encode()
    return _RECORD.pack(record.recv_ns, record.channel, len(symbol), len(record.payload)) + symbol + record.payload


class JournalWriter:
    """Append-only writer. ``append`` is cheap (it buffers); the flush it may trigger compresses,
    writes and fsyncs one frame (about a millisecond for a second of 200 symbols). Not thread-safe:
    use it from one thread (the recorder's event loop)."""

    def __init__(self, path: Path, flush_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.flush_interval_s = flush_interval_s
        self._clock = clock
        self._compressor = zstandard.ZstdCompressor(level=3)
        new = not path.exists() or path.stat().st_size == 0
        self._fh = open(path, "ab")
        if new:
            self._fh.write(_FILE_HEADER)
            self._sync()
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._last_flush = clock()
        self.records = 0

    def append(self, record: JournalRecord) -> None:
        encoded = _encode(record)
        self._batch.append(encoded)
        self._batch_bytes += len(encoded)
        self.records += 1
        if self._batch_bytes >= MAX_BATCH_BYTES or self._clock() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Write the pending batch as one frame and fsync it."""
        self._last_flush = self._clock()
        if not self._batch:
            return
        raw = b"".join(self._batch)
        compressed = self._compressor.compress(raw)
        self._fh.write(_FRAME.pack(FRAME_MAGIC, len(compressed), len(raw), zlib.crc32(compressed)) + compressed)
        self._batch.clear()
        self._batch_bytes = 0
        self._sync()

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh.closed:
            return
        self.flush()
        self._fh.close()


@dataclass
class JournalScan:
    records: list[JournalRecord] = field(default_factory=list)
    frames: int = 0
    corrupt_frames: int = 0
    dropped_bytes: int = 0  # bytes skipped: corrupt frames and a truncated tail
    truncated_tail: bool = False


def _decode_batch(raw: bytes) -> list[JournalRecord]:
    out = []
    pos = 0
    while pos < len(raw):
        recv_ns, channel, symbol_len, payload_len = _RECORD.unpack_from(raw, pos)
        pos += _RECORD.size
        symbol = raw[pos : pos + symbol_len].decode()
        pos += symbol_len
        payload = raw[pos : pos + payload_len]
        if len(payload) != payload_len:
            raise ValueError("record runs past its frame")
        pos += payload_len
        out.append(JournalRecord(recv_ns, Channel(channel), symbol, payload))
    return out


def read_journal(path: Path) -> JournalScan:
    """Every record of every intact frame, in order; damage is counted, never raised.

    Raises ``CorruptSegmentError`` only when the file is not a journal at all.
    """
    data = path.read_bytes()
    if data[: len(FILE_MAGIC)] != FILE_MAGIC:
        raise CorruptSegmentError(f"{path}: not an ACTS journal (bad magic)")
    scan = JournalScan()
    decompressor = zstandard.ZstdDecompressor()
    pos = len(_FILE_HEADER)
    while pos < len(data):
        if len(data) - pos < _FRAME.size:
            scan.truncated_tail = True
            scan.dropped_bytes += len(data) - pos
            break
        magic, clen, rlen, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + clen
        if magic != FRAME_MAGIC or clen > _MAX_FRAME_BYTES or rlen > _MAX_FRAME_BYTES:
            pos = _resync(data, pos + 1, scan)
            continue
        if end > len(data):
            scan.truncated_tail = True
            scan.dropped_bytes += len(data) - pos
            break
        body = data[pos + _FRAME.size : end]
        try:
            if zlib.crc32(body) != crc:
                raise ValueError("crc mismatch")
            records = _decode_batch(decompressor.decompress(body, max_output_size=rlen))
        except (ValueError, zstandard.ZstdError, struct.error, UnicodeDecodeError):
            pos = _resync(data, pos + 1, scan)
            continue
        scan.records.extend(records)
        scan.frames += 1
        pos = end
    return scan


def _resync(data: bytes, start: int, scan: JournalScan) -> int:
    """Skip to the next frame magic after a damaged frame."""
    scan.corrupt_frames += 1
    found = data.find(FRAME_MAGIC, start)
    stop = len(data) if found < 0 else found
    scan.dropped_bytes += stop - (start - 1)
    return stop


def list_journals(directory: Path) -> list[Path]:
    """Journals not yet rolled into segments, oldest first (names are their start time in ns)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.journal"), key=lambda p: (len(p.stem), p.stem))
