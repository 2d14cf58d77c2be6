"""``acts migrate``: rewrite version 1 segments as version 2, losslessly, one file at a time.

Strategy: a segment's name is a function of its events (first receive time + a digest of their
keys), and the writer builds a file under a temp name and renames it into place. So a v1 file's
events, streamed one row group at a time through a version 2 ``SegmentWriter``, land under the very
same name, and the rename replaces the v1 file atomically: a reader sees the old file or the new
one, never neither and never both. Migrating again finds only version 2 files and does nothing.
Should the new name differ (a file written by another writer), the new file is complete and checked
before the old one is removed; a crash in between leaves both, and the next run rewrites the same
bytes and then removes the old file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from acts.core.errors import CorruptSegmentError, NoDataError
from acts.storage import segments_v1
from acts.storage.layout import DataLayout
from acts.storage.segments import TEMP_PREFIX, SegmentInfo, SegmentWriter, read_info, read_row_group

__all__ = ["MigrateReport", "migrate", "migrate_segment"]


@dataclass
class MigrateReport:
    """What ``migrate`` did (or, on a dry run, would do)."""

    migrated: list[Path] = field(default_factory=list)  # version 1 files rewritten (or to rewrite)
    current: int = 0  # files already in the current format
    corrupt: list[str] = field(default_factory=list)  # unreadable files, left untouched
    bytes_before: int = 0  # of the migrated files
    bytes_after: int = 0


def migrate(data_dir: Path, dry_run: bool = False, on_file: Callable[[Path], None] | None = None) -> MigrateReport:
    """Rewrite every version 1 segment under ``data_dir`` as version 2 (``dry_run``: only count them)."""
    segments = DataLayout(data_dir).segments
    if not segments.is_dir():
        raise NoDataError(f"{data_dir} holds no segments folder; point --data-dir at a data folder "
                          "(with segments/)")
    report = MigrateReport()
    for path in sorted(p for p in segments.rglob("*.parquet") if not p.name.startswith(TEMP_PREFIX)):
        try:
            info = read_info(path)
        except CorruptSegmentError as exc:
            report.corrupt.append(str(exc))
            continue
        if info.format_version != 1:
            report.current += 1
            continue
        size = path.stat().st_size
        if not dry_run:
            try:
                report.bytes_after += sum(p.stat().st_size for p in migrate_segment(data_dir, path, info))
            except CorruptSegmentError as exc:
                report.corrupt.append(str(exc))
                continue
        report.migrated.append(path)
        report.bytes_before += size
        if on_file is not None:
            on_file(path)
    return report


def migrate_segment(data_dir: Path, path: Path, info: SegmentInfo) -> list[Path]:
    """Rewrite one version 1 segment as version 2; returns the new file(s) (normally just ``path``)."""
    writer = SegmentWriter(data_dir, info.symbol)
    try:
        reader = pq.ParquetFile(path)
        for i in range(reader.num_row_groups):
            table = read_row_group(reader, i, info)
            writer.write(list(segments_v1.table_to_events(table, info.symbol, info.price_pow10, info.qty_pow10)))
        written = writer.close()
    except (OSError, pa.ArrowException) as exc:
        writer.abort()
        raise CorruptSegmentError(f"{path}: cannot read data ({exc}); left as it is, move it aside") from None
    except BaseException:
        writer.abort()
        raise
    infos = [read_info(p) for p in written]
    if (sum(i.events for i in infos), sum(i.levels for i in infos)) != (info.events, info.levels):
        raise CorruptSegmentError(f"{path}: its version 2 copy does not hold the same events; the original is "
                                  "kept, run 'acts verify'")
    if path not in written:  # another name: the new file is complete and checked, the old one can go
        path.unlink()
    return written
