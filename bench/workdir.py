"""Where the bench keeps its generated data: a cache folder outside the repo, one folder per dataset.

A dataset's folder name holds everything its contents depend on (the segment format version, the
bench's own generation version, the generation parameters), so a format change or a new parameter
never reuses stale files: it simply misses the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from acts.storage.segments import FORMAT_VERSION
from bench.procs import ROOT

__all__ = ["ENV_DIR", "GEN_VERSION", "default_root", "dataset_dir", "ensure_dataset"]

#: Overrides the cache folder (default ``$XDG_CACHE_HOME/acts-bench``, i.e. ``~/.cache/acts-bench``).
ENV_DIR = "ACTS_BENCH_DIR"
#: Bumped when bench/data.py writes different files for the same parameters.
GEN_VERSION = 1
_READY = "ready.json"


def default_root() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "acts-bench"


def dataset_dir(root: Path, kind: str, params: dict[str, object]) -> Path:
    """``root/fmt<F>-gen<G>-<kind>-<k>=<v>-...``: the folder name is the cache key."""
    key = "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    return root / f"fmt{FORMAT_VERSION}-gen{GEN_VERSION}-{kind}-{key}"


def ensure_dataset(root: Path, kind: str, params: dict[str, object]) -> Path:
    """The dataset's folder, generated first if missing, by ``python -m bench.data`` in a child process.

    A child, so that the bench's own peak RSS measures replay, not generation; into a temp folder
    renamed at the end, so that an interrupted generation never leaves a half dataset behind.
    """
    final = dataset_dir(root, kind, params)
    if (final / _READY).exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(final.name + ".tmp")
    shutil.rmtree(temp, ignore_errors=True)
    args: Sequence[str] = [sys.executable, "-m", "bench.data", kind, "--out", str(temp),
                           *[a for k, v in sorted(params.items()) for a in (f"--{k}", str(v))]]
    subprocess.run(args, cwd=ROOT, check=True)
    shutil.rmtree(final, ignore_errors=True)
    temp.rename(final)
    return final
