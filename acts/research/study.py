"""Does a feature predict the mid? Forward returns, information coefficients, decile means.

Pure functions over a features table as ``acts.open(...).features(...)`` returns it (columns ``time``,
``symbol``, ``valid``, ``mid`` and one per feature); no I/O, no clocks.

Rules:

* A forward return over ``h`` intervals is ``mid[t + h] / mid[t] - 1``, per symbol. It is defined only
  when the rows at ``t`` and at ``t + h`` both exist, are ``valid`` and carry a finite mid (positive
  at ``t``). With ``every_ms`` the row at ``t + h`` is the one whose ``time`` is ``t + h * every_ms``
  (a missing interval leaves the return undefined); with ``every_ms=None`` (``every="event"`` rows)
  it is the ``h``-th next row of the symbol.
* A sample is a pair (feature at ``t``, forward return from ``t``): it enters only if the row at ``t``
  is valid, its feature value finite and the return defined. Invalid rows never enter.
* The information coefficient is Spearman's rank correlation of the samples: Pearson's correlation of
  their ranks, ties taking the average of the ranks they span. It is null with fewer than 2 samples
  or when either side is constant. ``n`` is the number of samples.
* Per symbol, then ``"pooled"``: the samples of every symbol together (a rank-based measure, so a
  feature whose level differs by symbol -- ``mid`` itself -- mixes levels when pooled).
* Deciles: samples are cut into ``bins`` groups by the rank of the feature (average ranks: equal values
  share a group); each group gets its number of samples and mean forward return.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acts.core.errors import InputError

__all__ = [
    "POOLED",
    "StudyResult",
    "check_horizons",
    "rank_average",
    "spearman",
    "forward_returns",
    "information_coefficients",
    "decile_means",
    "study",
    "IC_SCHEMA",
    "DECILES_SCHEMA",
]

#: The ``symbol`` of the rows over every symbol's samples together.
POOLED = "pooled"

#: ``information_coefficients``: one row per feature, horizon and symbol (then ``"pooled"``).
IC_SCHEMA = pa.schema([
    pa.field("feature", pa.string(), nullable=False),
    pa.field("horizon", pa.int64(), nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("ic", pa.float64()),
    pa.field("n", pa.int64(), nullable=False),
])

#: ``decile_means``: one row per feature, horizon, symbol (then ``"pooled"``) and decile (1 = lowest feature).
DECILES_SCHEMA = pa.schema([
    pa.field("feature", pa.string(), nullable=False),
    pa.field("horizon", pa.int64(), nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("decile", pa.int64(), nullable=False),
    pa.field("n", pa.int64(), nullable=False),
    pa.field("mean_return", pa.float64()),
])


@dataclass(frozen=True, slots=True)
class StudyResult:
    """``study``'s two tables: ``ic`` (``IC_SCHEMA``) and ``deciles`` (``DECILES_SCHEMA``)."""

    ic: pa.Table
    deciles: pa.Table


def rank_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (float64); equal values share the average of the ranks they span."""
    x = np.asarray(values)
    n = len(x)
    ranks = np.empty(n, dtype=np.float64)
    if n == 0:
        return ranks
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    starts_group[1:] = sorted_x[1:] != sorted_x[:-1]
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], n)  # exclusive
    # A group at sorted positions start..end-1 holds ranks start+1..end: their mean is (start + 1 + end) / 2.
    mean_rank = (starts + 1 + ends) / 2.0
    ranks[order] = mean_rank[np.cumsum(starts_group) - 1]
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of two equally long arrays of finite numbers; NaN when undefined
    (fewer than 2 values, or one side constant)."""
    if len(x) != len(y):
        raise InputError(f"spearman: {len(x)} values against {len(y)}; give pairs")
    if len(x) < 2:
        return float("nan")
    rx = rank_average(x)
    ry = rank_average(y)
    dx = rx - rx.mean()
    dy = ry - ry.mean()
    denom = float(np.sqrt(np.dot(dx, dx) * np.dot(dy, dy)))
    if denom == 0.0:
        return float("nan")
    # Ranks are exact halves, so a perfect (anti-)correlation is +-1 up to rounding; clip the rounding.
    return float(np.clip(np.dot(dx, dy) / denom, -1.0, 1.0))


def forward_returns(table: pa.Table, horizons: Sequence[int], *, every_ms: int | None = None,
                    mid: str = "mid") -> pa.Table:
    """One nullable float64 column ``fwd_<h>`` per horizon, aligned with ``table``'s rows: the forward
    mid return over ``h`` intervals (module rules), null where it is undefined."""
    hs = check_horizons(horizons)
    _check_columns(table, [mid])
    n = table.num_rows
    out = {h: np.full(n, np.nan) for h in hs}
    for _symbol, rows, times, ok, mids in _by_symbol(table, mid, every_ms):
        for h in hs:
            out[h][rows] = _forward(times, ok, mids, h, every_ms)
    return pa.table({f"fwd_{h}": pa.array(out[h], pa.float64(), from_pandas=True) for h in hs})


def information_coefficients(table: pa.Table, features: Sequence[str], horizons: Sequence[int], *,
                             every_ms: int | None = None, mid: str = "mid") -> pa.Table:
    """The IC of each feature with each horizon's forward return, per symbol then pooled (``IC_SCHEMA``)."""
    return study(table, features, horizons, every_ms=every_ms, mid=mid).ic


def decile_means(table: pa.Table, features: Sequence[str], horizons: Sequence[int], *,
                 every_ms: int | None = None, mid: str = "mid", bins: int = 10) -> pa.Table:
    """The mean forward return per feature decile (``bins`` groups), per symbol then pooled (``DECILES_SCHEMA``)."""
    return study(table, features, horizons, every_ms=every_ms, mid=mid, bins=bins).deciles


def study(table: pa.Table, features: Sequence[str], horizons: Sequence[int], *, every_ms: int | None = None,
          mid: str = "mid", bins: int = 10) -> StudyResult:
    """Information coefficients and decile means of ``features`` against forward mid returns over
    ``horizons`` (in intervals of ``every_ms``; None: in rows, for ``every="event"`` tables)."""
    names = list(dict.fromkeys(features))
    if not names:
        raise InputError("no feature to study; give at least one, like ['bias10']")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InputError(f"bins={bins!r} must be a whole number of at least 1")
    hs = check_horizons(horizons)
    _check_columns(table, [mid, *names])
    ic: dict[str, list[object]] = {name: [] for name in IC_SCHEMA.names}
    dec: dict[str, list[object]] = {name: [] for name in DECILES_SCHEMA.names}
    for feature, horizon, symbol, x, y in _samples(table, names, hs, every_ms, mid):
        value = spearman(x, y)
        for column, item in zip(IC_SCHEMA.names, (feature, horizon, symbol, None if np.isnan(value) else value,
                                                   len(x)), strict=True):
            ic[column].append(item)
        counts, means = _deciles(x, y, bins)
        for decile in range(bins):
            mean = None if counts[decile] == 0 else float(means[decile])
            for column, item in zip(DECILES_SCHEMA.names, (feature, horizon, symbol, decile + 1,
                                                            int(counts[decile]), mean), strict=True):
                dec[column].append(item)
    return StudyResult(pa.table(ic, schema=IC_SCHEMA), pa.table(dec, schema=DECILES_SCHEMA))


# --- helpers ---------------------------------------------------------------------------------


def check_horizons(horizons: Sequence[int]) -> list[int]:
    hs = list(horizons)
    if not hs:
        raise InputError("no horizon given; use whole numbers of intervals like 1,5,15")
    for h in hs:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise InputError(f"horizon {h!r} is not a whole number of intervals of at least 1; use e.g. 1,5,15")
    if len(set(hs)) != len(hs):
        raise InputError(f"horizons {hs} repeat one; list each once")
    return [int(h) for h in hs]


def _check_columns(table: pa.Table, needed: Sequence[str]) -> None:
    base = [name for name in ("time", "symbol", "valid") if name not in table.column_names]
    missing = base + [name for name in needed if name not in table.column_names]
    if missing:
        raise InputError(f"the table has no column {', '.join(map(repr, missing))}; it has "
                         f"{', '.join(table.column_names)} (request the feature, e.g. features=['mid', ...])")


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls."""
    return np.asarray(pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False),
                      dtype=np.float64)


def _by_symbol(table: pa.Table, mid: str,
               every_ms: int | None) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per symbol (sorted): its row indices in time order, times (ms), whether the row can end or start a
    return (valid, finite mid), and the mids."""
    if every_ms is not None and (isinstance(every_ms, bool) or every_ms < 1):
        raise InputError(f"every_ms={every_ms!r} must be a positive number of milliseconds, or None for event rows")
    symbols = np.asarray(table.column("symbol").to_numpy(zero_copy_only=False), dtype=object)
    times = table.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = np.asarray(pc.fill_null(table.column("valid"), False).to_numpy(zero_copy_only=False), dtype=bool)
    mids = _floats(table.column(mid))
    ok = valid & np.isfinite(mids)
    for symbol in sorted(set(symbols.tolist())):
        rows = np.flatnonzero(symbols == symbol)
        rows = rows[np.argsort(times[rows], kind="mergesort")]
        t = times[rows]
        if every_ms is not None and len(t) > 1 and not np.all(np.diff(t) > 0):
            raise InputError(f"{symbol} has several rows at one time; study event rows with every_ms=None")
        yield symbol, rows, t, ok[rows], mids[rows]


def _forward(times: np.ndarray, ok: np.ndarray, mids: np.ndarray, h: int, every_ms: int | None) -> np.ndarray:
    n = len(times)
    ahead: np.ndarray  # declared: numpy's stubs type the two branches' arrays differently
    if every_ms is None:
        ahead = np.arange(n) + h
        found = ahead < n
    else:
        ahead = np.searchsorted(times, times + h * every_ms)
        found = ahead < n
        found[found] = times[ahead[found]] == times[found] + h * every_ms
    ahead = np.where(found, ahead, 0)
    defined = found & ok & ok[ahead] & (mids > 0)
    out = np.full(n, np.nan)
    out[defined] = mids[ahead[defined]] / mids[defined] - 1.0
    return out


def _samples(table: pa.Table, features: list[str], horizons: list[int], every_ms: int | None,
             mid: str) -> Iterator[tuple[str, int, str, np.ndarray, np.ndarray]]:
    """(feature, horizon, symbol or POOLED, feature values, forward returns) of the valid samples."""
    groups = list(_by_symbol(table, mid, every_ms))
    valid = np.asarray(pc.fill_null(table.column("valid"), False).to_numpy(zero_copy_only=False), dtype=bool)
    values = {name: _floats(table.column(name)) for name in features}
    returns = [{h: _forward(t, ok, mids, h, every_ms) for h in horizons} for _, _, t, ok, mids in groups]
    for feature in features:
        for h in horizons:
            xs: list[np.ndarray] = []
            ys: list[np.ndarray] = []
            for (symbol, rows, _t, _ok, _mids), fwd in zip(groups, returns, strict=True):
                x = values[feature][rows]
                y = fwd[h]
                keep = valid[rows] & np.isfinite(x) & np.isfinite(y)
                xs.append(x[keep])
                ys.append(y[keep])
                yield feature, h, symbol, xs[-1], ys[-1]
            yield feature, h, POOLED, np.concatenate(xs or [np.empty(0)]), np.concatenate(ys or [np.empty(0)])


def _deciles(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples per group and mean return per group (NaN if empty), groups cut by the feature's average rank."""
    group = np.floor((rank_average(x) - 1.0) * bins / max(len(x), 1)).astype(np.int64)
    counts: np.ndarray = np.bincount(group, minlength=bins)
    sums: np.ndarray = np.bincount(group, weights=y, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts, sums / counts
