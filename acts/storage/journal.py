"""The recorder's crash-safe journal: every raw message as received, zstd-framed, fsynced every second.

The live recorder appends each websocket text frame, REST snapshot body and marker here *before*
parsing it, with its local receive time, so the exact bytes survive whatever happens next. Journals
are rolled into segments at rotation and at start-up (``acts.recorder.roll``), then retired.

Layout (integers little-endian)::

    file   := header frame*
    header := b"ACTSJRNL" version:u8 reserved:7                   16 bytes, version 1
    frame  := b"AJF1" body_len:u32 raw_len:u32 crc32(body):u32 body
    body   := one independent zstd frame whose content (raw_len bytes) is record*
    record := recv_ns:i64 channel:u8 symbol_len:u16 payload_len:u32 symbol(utf-8) payload

Strategy: one frame per flushed batch, written and then fsynced, so a crash loses at most the batch
not yet flushed (about ``flush_interval_s`` of records). Each frame carries its own magic, length and
CRC and is an independent zstd frame, so it can be checked without the frames before it; after damage
a reader finds the next good frame by scanning for the magic and verifying the candidate. Damage is
counted in a ``JournalScan``, never raised: only a file that is not a journal raises
``CorruptSegmentError``.

Crash safety of the roll: segments are written first, then ``mark_rolled`` retires the journal. A
crash in between leaves the journal in ``list_journals`` and it is rolled again; segment writes are
idempotent, so that rewrites the same files instead of duplicating events.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import zstandard

from acts.core.errors import CorruptSegmentError
from acts.storage.fsync import fsync_dir

__all__ = [
    "Channel",
    "JournalRecord",
    "JournalWriter",
    "JournalScan",
    "read_journal",
    "iter_journal",
    "list_journals",
    "mark_rolled",
    "JOURNAL_SUFFIX",
    "MAX_BATCH_BYTES",
    "MAX_RECORD_BYTES",
]

FILE_MAGIC = b"ACTSJRNL"
#: Bumped on any layout change; a reader refuses versions it does not know.
FILE_VERSION = 1
_HEADER = struct.Struct("<8sB7x")
_HEADER_BYTES = _HEADER.pack(FILE_MAGIC, FILE_VERSION)
FRAME_MAGIC = b"AJF1"
_FRAME = struct.Struct("<4sIII")
_RECORD = struct.Struct("<qBHI")
#: A journal's file name is ``<start time ns>.journal``; ``list_journals`` orders by that number.
JOURNAL_SUFFIX = ".journal"
#: A batch is flushed early once its raw size reaches this, whatever the interval.
MAX_BATCH_BYTES = 1 << 20
#: The largest payload a record may carry (a REST snapshot of 5000 levels is about 200 KiB).
MAX_RECORD_BYTES = 1 << 26
#: Once a batch is this large while another thread's flush holds the file, ``append`` waits for that
#: flush instead of buffering more: memory stays bounded when the disk stalls.
_HARD_BATCH_BYTES = 1 << 26
#: Frames are at most one batch plus one record; a length field above this is damage, not data.
_MAX_FRAME_BYTES = MAX_BATCH_BYTES + MAX_RECORD_BYTES + _HARD_BATCH_BYTES
_MAX_SYMBOL_BYTES = 0xFFFF
_ZSTD_LEVEL = 3  # ~10x on depth JSON at a few ms per second of 200 symbols; higher levels buy little


class Channel(IntEnum):
    """What a record's payload is; values are part of the file format."""

    STREAM = 0  # a websocket text frame, byte for byte; symbol may be "" (combined streams name it inside)
    SNAPSHOT = 1  # a REST depth answer body; symbol required, as the body does not name it
    MARKER = 2  # connect / disconnect / gap / resync as JSON (``acts.core.events.EventKind``)


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One message exactly as received, with its local receive time (ns since the epoch)."""

    recv_ns: int
    channel: Channel
    symbol: str
    payload: bytes

    def __post_init__(self) -> None:
        if type(self.recv_ns) is not int or not 0 <= self.recv_ns < 1 << 63:
            raise ValueError(f"recv_ns must be an integer in [0, 2**63), got {self.recv_ns!r}")
        if not isinstance(self.channel, Channel):
            raise ValueError(f"channel must be a Channel, got {self.channel!r}")
        if not isinstance(self.payload, bytes):
            raise ValueError(f"payload must be the received bytes, got {type(self.payload).__name__}; "
                             "encode text frames before journaling them")
        if len(self.payload) > MAX_RECORD_BYTES:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds the journal limit of {MAX_RECORD_BYTES}")
        if not isinstance(self.symbol, str):
            raise ValueError(f"symbol must be a str, got {type(self.symbol).__name__}")
        if self.channel is Channel.SNAPSHOT and not self.symbol:
            raise ValueError("a SNAPSHOT record needs its symbol: the REST body does not name it")


def _encode(record: JournalRecord) -> bytes:
    symbol = record.symbol.encode()
    if len(symbol) > _MAX_SYMBOL_BYTES:
        raise ValueError(f"symbol {record.symbol[:40]!r}... is {len(symbol)} bytes; the journal allows 65535")
    return _RECORD.pack(record.recv_ns, record.channel, len(symbol), len(record.payload)) + symbol + record.payload


def _decode_batch(raw: bytes) -> list[JournalRecord]:
    """The records of one frame; ``ValueError`` or ``struct.error`` if the content is not records."""
    out = []
    pos, end = 0, len(raw)
    unpack, head = _RECORD.unpack_from, _RECORD.size
    while pos < end:
        recv_ns, channel, symbol_len, payload_len = unpack(raw, pos)
        pos += head
        symbol = raw[pos : pos + symbol_len].decode()
        pos += symbol_len
        if pos + payload_len > end:
            raise ValueError("record runs past the end of its frame")
        out.append(JournalRecord(recv_ns, Channel(channel), symbol, raw[pos : pos + payload_len]))
        pos += payload_len
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class JournalWriter:
    """Append-only journal file (layout in the module docstring).

    ``append`` encodes and buffers, about a microsecond. When ``flush_interval_s`` has passed since
    the last flush, or the batch reaches ``MAX_BATCH_BYTES``, the same ``append`` flushes: it
    compresses the batch into one frame, writes and fsyncs it (a few ms per second of 200 symbols,
    mostly the fsync). Records are durable once their frame is written; a crash loses at most the
    current batch.

    Threads: ``append`` from one thread (the event loop) and ``flush`` from another (e.g.
    ``await asyncio.to_thread(writer.flush)`` on a timer) are safe together. The batch is swapped under
    a short lock and frames are written in order under another; an ``append`` that finds a flush
    already running leaves its records for the next one rather than wait on the fsync. A timer that
    flushes more often than ``flush_interval_s`` therefore keeps fsyncs off the loop and also flushes
    a quiet feed, which ``append`` alone would not: the live recorder runs such a timer every
    ``RecorderConfig.journal_flush_s`` on its injected clock (``acts.recorder.live``), so a record is
    durable within that interval whether more frames follow or not. ``close`` must not race with ``append``.

    A flush whose write fails (``OSError``, e.g. disk full) keeps the batch for the next flush: the
    torn frame it may leave is skipped by readers, so a retry neither loses nor doubles records. If
    the write succeeded and only the fsync failed, the batch is not rewritten.
    """

    def __init__(self, path: Path, flush_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        #: Records appended through this writer (flushed or not).
        self.records = 0
        self._clock = clock
        self._compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        self._lock = threading.Lock()  # guards the batch; held for microseconds
        self._io_lock = threading.Lock()  # serializes frame writes, so frames keep batch order
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._closed = False
        self._open()
        self._last_flush = clock()

    def _open(self) -> None:
        # Reopening an existing journal appends to it (after a crash, a torn tail frame stays in the
        # middle and readers skip it); a foreign file is refused rather than scribbled on.
        self._fh = open(self.path, "ab", buffering=0)  # unbuffered: a frame goes out in one write call
        try:
            size = os.fstat(self._fh.fileno()).st_size
            if size:
                with open(self.path, "rb") as check:
                    head = check.read(_HEADER.size)
                if len(head) == _HEADER.size:
                    _check_header(self.path, head)
                    return
                if not _HEADER_BYTES.startswith(head):
                    raise CorruptSegmentError(f"{self.path}: not an ACTS journal (bad magic); refusing to append")
                os.truncate(self.path, 0)  # a crash mid-creation left part of the header: start over
            _write_all(self._fh.fileno(), _HEADER_BYTES)
            self._sync()
            fsync_dir(self.path.parent)  # the new file's name must survive a power loss too
        except BaseException:
            self._fh.close()
            raise

    def append(self, record: JournalRecord) -> None:
        """Buffer one record; flush first-hand if the interval passed or the batch is full."""
        encoded = _encode(record)
        with self._lock:
            if self._closed:
                raise ValueError(f"journal {self.path} is closed")
            self._batch.append(encoded)
            self._batch_bytes += len(encoded)
            self.records += 1
            size = self._batch_bytes
            due = size >= MAX_BATCH_BYTES or self._clock() - self._last_flush >= self.flush_interval_s
        if due:
            self._flush(wait=size >= _HARD_BATCH_BYTES)

    def flush(self) -> None:
        """Write the pending batch as one frame and fsync it; waits for a flush running elsewhere."""
        self._flush(wait=True)

    def _flush(self, wait: bool) -> None:
        if not self._io_lock.acquire(blocking=wait):
            return  # another thread is flushing; these records go in the next frame
        try:
            with self._lock:
                batch, self._batch, self._batch_bytes = self._batch, [], 0
                self._last_flush = self._clock()
            if not batch or self._fh.closed:
                return
            raw = b"".join(batch)
            body = self._compressor.compress(raw)
            try:
                _write_all(self._fh.fileno(), _FRAME.pack(FRAME_MAGIC, len(body), len(raw), zlib.crc32(body)) + body)
            except OSError:
                with self._lock:  # put the batch back in front of anything appended meanwhile
                    self._batch[:0] = batch
                    self._batch_bytes += len(raw)
                raise
            self._sync()
        finally:
            self._io_lock.release()

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        if self._closed:
            return
        self.flush()
        with self._io_lock, self._lock:
            self._closed = True
            self._fh.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class JournalScan:
    """What reading a journal found. ``read_journal`` fills ``records``; ``iter_journal`` only counts."""

    records: list[JournalRecord] = field(default_factory=list)
    frames: int = 0  # intact frames read
    corrupt_frames: int = 0  # damaged stretches followed by an intact frame (skipped, reading went on)
    dropped_bytes: int = 0  # bytes skipped: damaged stretches and a damaged tail
    truncated_tail: bool = False  # the file ends in damage, typically a crash mid-write

    @property
    def damaged(self) -> bool:
        return self.truncated_tail or self.corrupt_frames > 0


def _check_header(path: Path, head: bytes) -> None:
    magic, version = _HEADER.unpack(head)
    if magic != FILE_MAGIC:
        raise CorruptSegmentError(f"{path}: not an ACTS journal (bad magic {magic[:8]!r})")
    if version != FILE_VERSION:
        raise CorruptSegmentError(f"{path}: journal format version {version}, this ACTS reads version "
                                  f"{FILE_VERSION}; read it with the ACTS that wrote it")


def read_journal(path: Path) -> JournalScan:
    """Every record of every intact frame, in order, plus what was damaged. Holds all records in memory."""
    scan = JournalScan()
    scan.records.extend(iter_journal(path, scan))
    return scan


def iter_journal(path: Path, scan: JournalScan | None = None) -> Iterator[JournalRecord]:
    """Stream the records of every intact frame, in order, one frame in memory at a time.

    Damage is counted into ``scan`` as it is passed (final once the iterator is exhausted). Raises
    ``CorruptSegmentError`` at once, before iterating, only if ``path`` is not a journal; a file
    shorter than the header (a crash while creating it) is an empty journal with a damaged tail.
    """
    scan = scan if scan is not None else JournalScan()
    fh = open(path, "rb")
    try:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(_HEADER.size)
        if len(head) < _HEADER.size:
            if not _HEADER_BYTES.startswith(head):
                raise CorruptSegmentError(f"{path}: not an ACTS journal ({len(head)} bytes, no journal header)")
            scan.truncated_tail = True
            scan.dropped_bytes += len(head)
            fh.close()
            return iter(())
        _check_header(Path(path), head)
        if size == _HEADER.size:
            fh.close()  # a journal with no frame yet; mmap cannot map what follows the header
            return iter(())
    except BaseException:
        fh.close()
        raise
    return _records(fh, size, scan)


def _records(fh: BinaryIO, size: int, scan: JournalScan) -> Iterator[JournalRecord]:
    # mmap: a damaged stretch is skipped with ``find`` over the file, and memory stays one frame.
    with fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        decompressor = zstandard.ZstdDecompressor()
        pos = _HEADER.size
        while pos < size:
            records, end = _frame_at(data, pos, size, decompressor)
            if records is None:
                found = _next_intact_frame(data, pos + 1, size, decompressor)
                if found is None:
                    scan.truncated_tail = True
                    scan.dropped_bytes += size - pos
                    return
                start, records, end = found
                scan.corrupt_frames += 1
                scan.dropped_bytes += start - pos
            scan.frames += 1
            yield from records
            pos = end


def _frame_at(data: mmap.mmap, pos: int, size: int,
              decompressor: zstandard.ZstdDecompressor) -> tuple[list[JournalRecord] | None, int]:
    """The records of the frame at ``pos`` and where it ends, or ``(None, pos)`` if it is not intact."""
    if size - pos < _FRAME.size:
        return None, pos
    magic, body_len, raw_len, crc = _FRAME.unpack_from(data, pos)
    end = pos + _FRAME.size + body_len
    if magic != FRAME_MAGIC or body_len > _MAX_FRAME_BYTES or raw_len > _MAX_FRAME_BYTES or end > size:
        return None, pos
    body = data[pos + _FRAME.size : end]
    if zlib.crc32(body) != crc:
        return None, pos
    try:
        raw = decompressor.decompress(body, max_output_size=raw_len)
        if len(raw) != raw_len:
            return None, pos
        return _decode_batch(raw), end
    except (zstandard.ZstdError, ValueError, struct.error):  # UnicodeDecodeError is a ValueError
        return None, pos


def _next_intact_frame(data: mmap.mmap, start: int, size: int, decompressor: zstandard.ZstdDecompressor,
                       ) -> tuple[int, list[JournalRecord], int] | None:
    """The first intact frame at or after ``start``: the magic alone may occur inside compressed data."""
    while (found := data.find(FRAME_MAGIC, start, size)) >= 0:
        records, end = _frame_at(data, found, size, decompressor)
        if records is not None:
            return found, records, end
        start = found + 1
    return None


def list_journals(directory: Path) -> list[Path]:
    """Journals in ``directory`` not yet rolled into segments, oldest first (by the start time in the name)."""
    if not directory.is_dir():
        return []
    paths = [p for p in directory.glob(f"*{JOURNAL_SUFFIX}") if p.is_file()]
    # Numeric stems sort as numbers (10 < 9 as text); any other name sorts after them, by name.
    return sorted(paths, key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))


def mark_rolled(journal: Path, rolled_dir: Path | None = None) -> Path | None:
    """Retire a journal whose records are all in segments: move it into ``rolled_dir``, or delete it.

    Call it only once the segments are written and fsynced. Returns the new path (``None`` if
    deleted). A crash before this leaves the journal in ``list_journals`` to be rolled again.
    """
    if rolled_dir is None:
        journal.unlink()
        fsync_dir(journal.parent)
        return None
    rolled_dir.mkdir(parents=True, exist_ok=True)
    target = rolled_dir / journal.name
    os.replace(journal, target)
    fsync_dir(rolled_dir)
    fsync_dir(journal.parent)
    return target
