"""Pictures of features tables: features over time with invalid intervals shaded, IC by horizon.

Needs matplotlib (the ``plot`` extra), imported only when a figure is drawn: ``invalid_spans`` and
``require_matplotlib`` work without it. Figures are built with ``matplotlib.figure.Figure`` on an Agg
canvas, never through ``pyplot``: headless, and no global figure state to leak between calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acts.core.errors import InputError
from acts.research.study import POOLED

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["invalid_spans", "require_matplotlib", "draw_features", "draw_ic", "save_png", "FeaturesPlot",
           "INVALID_GID"]

#: The ``gid`` of every shaded invalid span (``"invalid:BTCUSDT"``), so tests and tools can find them.
INVALID_GID = "invalid"


def require_matplotlib(what: str = "plots") -> None:
    """Raise ``InputError`` (one line, exit 2 in the CLI) when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(f"{what} need matplotlib, which is not installed; install acts[plot] "
                         "(pip install 'acts[plot]')") from None


def invalid_spans(times_ms: np.ndarray, valid: np.ndarray, every_ms: int | None) -> list[tuple[int, int]]:
    """The runs of invalid rows of one symbol as ``(start_ms, end_ms)``, merged when adjacent.

    ``times_ms`` ascending. A row at ``t`` covers ``[t, t + every_ms)``; with ``every_ms=None`` (event
    rows) it covers up to the next row's time, and a trailing invalid row ends at its own time."""
    t = np.asarray(times_ms, dtype=np.int64)
    bad = ~np.asarray(valid, dtype=bool)
    if len(t) == 0 or not bad.any():
        return []
    if every_ms is None:
        ends = np.append(t[1:], t[-1])
    else:
        ends = t + every_ms
    spans: list[tuple[int, int]] = []
    for i in np.flatnonzero(bad):
        start, end = int(t[i]), int(ends[i])
        if spans and start <= spans[-1][1]:  # continues the span before
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


@dataclass(frozen=True, slots=True)
class FeaturesPlot:
    """``draw_features``' figure and what it shows: the invalid spans per symbol."""

    figure: Figure
    spans: dict[str, list[tuple[int, int]]]

    @property
    def span_count(self) -> int:
        return sum(len(s) for s in self.spans.values())


def draw_features(table: pa.Table, features: list[str], every_ms: int | None, title: str | None = None
                  ) -> FeaturesPlot:
    """One panel per feature, one line per symbol; each symbol's invalid intervals shaded in its colour
    on every panel (its line is broken there: invalid rows have no value). A panel whose symbols lie on
    scales that do not overlap (``mid`` of BTC and SHIB) shows each in % from its first valid value."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    missing = [name for name in ("time", "symbol", "valid", *features) if name not in table.column_names]
    if missing:
        raise InputError(f"the table has no column {', '.join(map(repr, missing))}; it has "
                         f"{', '.join(table.column_names)}")
    if not features:
        raise InputError("no feature to plot; give at least one, like mid")
    symbols = np.asarray(table.column("symbol").to_numpy(zero_copy_only=False), dtype=object)
    times = table.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = np.asarray(pc.fill_null(table.column("valid"), False).to_numpy(zero_copy_only=False), dtype=bool)
    fig = Figure(figsize=(11, 2.4 * len(features) + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(features), 1, sharex=True, squeeze=False)[:, 0]
    colours = [f"C{i % 10}" for i in range(len(set(symbols.tolist())))]
    order = sorted(set(symbols.tolist()))
    by_symbol = {}
    for symbol in order:
        rows = np.flatnonzero(symbols == symbol)
        by_symbol[symbol] = rows[np.argsort(times[rows], kind="mergesort")]
    spans = {symbol: invalid_spans(times[rows], valid[rows], every_ms) for symbol, rows in by_symbol.items()}
    for ax, feature in zip(axes, features, strict=True):
        column = table.column(feature).cast(pa.float64())
        values = np.array(pc.fill_null(column, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        values[~valid] = np.nan
        lines = {symbol: values[rows] for symbol, rows in by_symbol.items()}
        relative = _apart(list(lines.values()))
        for colour, symbol in zip(colours, order, strict=True):
            line = lines[symbol]
            if relative:
                line = 100.0 * (line / line[np.flatnonzero(np.isfinite(line))[0]] - 1.0)
            ax.plot(times[by_symbol[symbol]].astype("datetime64[ms]"), line, color=colour, linewidth=0.9,
                    label=symbol)
            for k, (start, end) in enumerate(spans[symbol]):
                ax.axvspan(_dt(start), _dt(end), color=colour, alpha=0.3, linewidth=0,
                           gid=f"{INVALID_GID}:{symbol}", label=f"{symbol} invalid" if k == 0 else None)
        ax.set_ylabel(f"{feature}\n(% from first)" if relative else feature)
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="upper left", fontsize="small", ncols=min(4, 2 * len(spans)), frameon=False)
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes[-1].set_xlabel("time (UTC); shaded: invalid intervals (no proven book)")
    if title:
        fig.suptitle(title)
    return FeaturesPlot(fig, spans)


def draw_ic(ic: pa.Table, deciles: pa.Table | None = None, title: str | None = None) -> Figure:
    """``acts study``'s picture: per feature, the IC by horizon (a line per symbol, pooled in bold);
    with ``deciles``, a second row of the pooled mean forward return per decile, one bar group per horizon."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = ic.to_pylist()
    features = list(dict.fromkeys(r["feature"] for r in rows))
    if not features:
        raise InputError("nothing to draw: the study has no rows")
    symbols = list(dict.fromkeys(r["symbol"] for r in rows if r["symbol"] != POOLED))
    nrows = 2 if deciles is not None else 1
    fig = Figure(figsize=(4.2 * len(features) + 1, 3.2 * nrows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, len(features), squeeze=False)
    for col, feature in enumerate(features):
        ax = axes[0, col]
        for i, symbol in enumerate([*symbols, POOLED]):
            mine = [r for r in rows if r["feature"] == feature and r["symbol"] == symbol]
            xs = [r["horizon"] for r in mine]
            ys = [np.nan if r["ic"] is None else r["ic"] for r in mine]
            pooled = symbol == POOLED
            ax.plot(xs, ys, marker="o", color="black" if pooled else f"C{i % 10}",
                    linewidth=2.2 if pooled else 1.0, alpha=1.0 if pooled else 0.7, label=symbol)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_title(feature)
        ax.set_xlabel("horizon (intervals)")
        ax.set_xticks(sorted({r["horizon"] for r in rows}))
        ax.grid(True, alpha=0.3)
        if col == 0:
            ax.set_ylabel("IC (Spearman)")
            ax.legend(fontsize="small", frameon=False)
        if deciles is not None:
            _draw_deciles(axes[1, col], deciles, feature, col == 0)
    if title:
        fig.suptitle(title)
    return fig


def _draw_deciles(ax: Axes, deciles: pa.Table, feature: str, first: bool) -> None:
    mine = [r for r in deciles.to_pylist() if r["feature"] == feature and r["symbol"] == POOLED]
    horizons = sorted({r["horizon"] for r in mine})
    width = 0.8 / max(len(horizons), 1)
    for k, h in enumerate(horizons):
        bars = [r for r in mine if r["horizon"] == h]
        xs = np.array([r["decile"] for r in bars], dtype=float) - 0.4 + width * (k + 0.5)
        ys = [0.0 if r["mean_return"] is None else r["mean_return"] * 1e4 for r in bars]
        ax.bar(xs, ys, width=width, label=f"h={h}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("feature decile (pooled)")
    if first:
        ax.set_ylabel("mean fwd return (bp)")
        ax.legend(fontsize="small", frameon=False)


def save_png(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG (the parent folder must exist)."""
    figure.savefig(path, format="png", dpi=110)


def _apart(lines: list[np.ndarray]) -> bool:
    """Whether symbols' values lie on scales too far apart to share an axis (``mid`` of BTC and SHIB): two
    symbols' ranges do not overlap, and every value is positive, so each can be shown relative to its first."""
    ranges = [(float(np.nanmin(v)), float(np.nanmax(v))) for v in lines if np.isfinite(v).any()]
    if len(ranges) < 2 or any(low <= 0 for low, _ in ranges):
        return False
    return any(a[1] < b[0] or b[1] < a[0] for i, a in enumerate(ranges) for b in ranges[i + 1:])


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)
