"""Making a directory entry durable: the one ``fsync_dir`` of the journal and the segment writer."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["fsync_dir"]

#: What an ``open``/``fsync`` of a directory fails with where the platform or file system cannot do it
#: (Windows cannot open a directory; some network and FUSE file systems refuse to fsync one). Nothing is
#: at risk that an fsync could save, so these pass; any other error (``EIO``, ``ENOSPC``) is raised.
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EACCES, errno.EPERM,
                          errno.EISDIR})


def fsync_dir(directory: Path) -> None:
    """Make a create, rename or delete in ``directory`` durable (a file's own fsync does not)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
    finally:
        os.close(fd)
