"""acts.research.study against hand-computed values and a naive pure-Python reference."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acts.core.errors import InputError
from acts.research.study import (
    POOLED,
    decile_means,
    forward_returns,
    information_coefficients,
    rank_average,
    spearman,
    study,
)

S = 1000


def _table(rows: list[tuple[int, str, bool, float | None, float | None]]) -> pa.Table:
    """Rows of (time ms, symbol, valid, mid, f)."""
    return pa.table({
        "time": pa.array([r[0] for r in rows], pa.timestamp("ms", tz="UTC")),
        "symbol": pa.array([r[1] for r in rows], pa.string()),
        "valid": pa.array([r[2] for r in rows], pa.bool_()),
        "mid": pa.array([r[3] for r in rows], pa.float64()),
        "f": pa.array([r[4] for r in rows], pa.float64()),
    })


# A at 1 s: row 3 is invalid in the middle (its mid and f are set anyway: they must not be used);
# B misses the interval at 2 s. Rows interleaved by time, as the API orders them.
HAND = _table([
    (0 * S, "A", True, 100.0, 0.5),
    (0 * S, "B", True, 10.0, 3.0),
    (1 * S, "A", True, 102.0, -1.0),
    (1 * S, "B", True, 11.0, 1.0),
    (2 * S, "A", True, 101.0, 2.0),
    (3 * S, "A", False, 500.0, 9.0),
    (3 * S, "B", True, 12.0, 2.0),
    (4 * S, "A", True, 103.0, 1.0),
    (5 * S, "A", True, 104.0, 0.0),
])


def test_forward_returns_by_hand() -> None:
    fwd = forward_returns(HAND, [1, 2], every_ms=S).to_pydict()
    nan = None
    expected_1 = [102 / 100 - 1, 11 / 10 - 1, 101 / 102 - 1, nan,  # B at 1 s: 2 s is missing
                  nan, nan,  # A at 2 s: the end is invalid; A at 3 s: the start is invalid
                  nan, 104 / 103 - 1, nan]
    expected_2 = [101 / 100 - 1, nan, nan,  # B at 0 s: 2 s missing; A at 1 s: ends on the invalid row
                  12 / 11 - 1, 103 / 101 - 1, nan, nan, nan, nan]
    assert _same(fwd["fwd_1"], expected_1)
    assert _same(fwd["fwd_2"], expected_2)


def _same(got: list[float | None], expected: list[float | None]) -> bool:
    return len(got) == len(expected) and all(
        (g is None and e is None) or (g is not None and e is not None and math.isclose(g, e, rel_tol=1e-12))
        for g, e in zip(got, expected, strict=True))


def test_information_coefficients_by_hand() -> None:
    ic = {(r["horizon"], r["symbol"]): (r["ic"], r["n"])
          for r in information_coefficients(HAND, ["f"], [1, 2], every_ms=S).to_pylist()}
    # A, h=1: samples (0.5, +2%), (-1, -0.98%), (1, +0.97%): f ranks 2,1,3; returns 3,1,2; d^2 = 2
    # -> 1 - 6*2 / (3*8) = 0.5.  (2.0 at 2 s has no return; 9.0 at 3 s is invalid.)
    assert ic[(1, "A")] == (pytest.approx(0.5), 3)
    # B, h=1: one sample (3.0, +10%): undefined.
    assert ic[(1, "B")] == (None, 1)
    # Pooled, h=1: f 0.5, -1, 1, 3 (ranks 2,1,3,4) against +2%, -0.98%, +0.97%, +10% (ranks 3,1,2,4):
    # d^2 = 2 -> 1 - 6*2 / (4*15) = 0.8.
    assert ic[(1, POOLED)] == (pytest.approx(0.8), 4)
    # A, h=2: (0.5, +1%), (2, +1.98%) -> 1; B, h=2: (1, +9.09%) alone.
    assert ic[(2, "A")] == (pytest.approx(1.0), 2)
    assert ic[(2, "B")] == (None, 1)
    # Pooled, h=2: f 0.5, 2, 1 against 1%, 1.98%, 9.09%: ranks 1,3,2 vs 1,2,3 -> 1 - 6*2/24 = 0.5.
    assert ic[(2, POOLED)] == (pytest.approx(0.5), 3)
    assert [r["symbol"] for r in information_coefficients(HAND, ["f"], [1], every_ms=S).to_pylist()] == [
        "A", "B", POOLED]


def test_event_rows_count_rows_not_time() -> None:
    # every_ms=None: the h-th next row of the symbol, whatever its time (B's missing interval is skipped).
    fwd = forward_returns(HAND, [1], every_ms=None).column("fwd_1").to_pylist()
    assert fwd[3] == pytest.approx(12 / 11 - 1)


def test_decile_means_by_hand() -> None:
    rows = [(i * S, "A", True, 100.0 + i, float(i % 10)) for i in range(21)]
    table = _table(rows)
    dec = decile_means(table, ["f"], [1], every_ms=S)
    a = [r for r in dec.to_pylist() if r["symbol"] == "A"]
    assert [r["decile"] for r in a] == list(range(1, 11))
    # 20 samples (the last row has no return): f = i % 10, two samples a decile.
    for r in a:
        d = r["decile"] - 1
        expected = [(100.0 + i + 1) / (100.0 + i) - 1 for i in range(20) if i % 10 == d]
        assert r["n"] == 2
        assert r["mean_return"] == pytest.approx(sum(expected) / 2)


def test_deciles_keep_ties_together_and_report_empty_ones() -> None:
    table = _table([(i * S, "A", True, 100.0 + i, 1.0) for i in range(5)])
    dec = [r for r in decile_means(table, ["f"], [1], every_ms=S, bins=2).to_pylist() if r["symbol"] == "A"]
    assert [(r["decile"], r["n"]) for r in dec] == [(1, 4), (2, 0)]
    assert dec[1]["mean_return"] is None


def test_rank_average_ties() -> None:
    assert rank_average(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert rank_average(np.array([5.0, 5.0, 5.0])).tolist() == [2.0, 2.0, 2.0]
    assert rank_average(np.array([])).tolist() == []


def test_spearman_undefined() -> None:
    assert math.isnan(spearman(np.array([1.0]), np.array([2.0])))
    assert math.isnan(spearman(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])))
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == -1.0


# --- against a naive reference ------------------------------------------------------------------


def _naive_rank(xs: list[float]) -> list[float]:
    return [sum(1 for y in xs if y < x) + (sum(1 for y in xs if y == x) + 1) / 2 for x in xs]


def _naive_spearman(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 2:
        return None
    rx, ry = _naive_rank(xs), _naive_rank(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)
    return None if var == 0 else cov / math.sqrt(var)


def _naive_ic(rows: list[tuple[int, str, bool, float | None, float | None]], h: int,
              symbol: str | None) -> tuple[float | None, int]:
    by_time = {(r[1], r[0]): r for r in rows}
    xs: list[float] = []
    ys: list[float] = []
    for t, sym, valid, mid, f in rows:
        if symbol is not None and sym != symbol:
            continue
        end = by_time.get((sym, t + h * S))
        if not valid or f is None or mid is None or end is None or not end[2] or end[3] is None:
            continue
        xs.append(f)
        ys.append(end[3] / mid - 1)
    return _naive_spearman(xs, ys), len(xs)


row_values = st.tuples(st.booleans(), st.integers(1, 6), st.one_of(st.none(), st.integers(-3, 3)))


@settings(max_examples=60, deadline=None)
@given(st.lists(row_values, min_size=0, max_size=30), st.lists(row_values, min_size=0, max_size=30),
       st.integers(1, 4))
def test_ic_equals_naive_reference(a: list[tuple[bool, int, int | None]], b: list[tuple[bool, int, int | None]],
                                   h: int) -> None:
    # Small integer mids and features: many ties, invalid rows anywhere (their values still set).
    rows = sorted([(i * S, "A", v, float(m), None if f is None else float(f)) for i, (v, m, f) in enumerate(a)] +
                  [(i * S, "B", v, float(m), None if f is None else float(f)) for i, (v, m, f) in enumerate(b)
                   if i % 4 != 2],  # B misses every fourth interval
                  key=lambda r: (r[0], r[1]))
    table = _table(rows)
    got = {(r["symbol"]): (r["ic"], r["n"]) for r in information_coefficients(table, ["f"], [h], every_ms=S)
           .to_pylist()}
    for symbol in sorted({r[1] for r in rows}) + [POOLED]:
        ic, n = _naive_ic(rows, h, None if symbol == POOLED else symbol)
        assert got[symbol][1] == n
        if ic is None:
            assert got[symbol][0] is None
        else:
            assert got[symbol][0] == pytest.approx(ic, abs=1e-9)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"horizons": [0]}, "horizon 0"),
        ({"horizons": []}, "no horizon"),
        ({"horizons": [1, 1]}, "repeat"),
        ({"features": ["nope"]}, "no column 'nope'"),
        ({"features": []}, "no feature"),
        ({"bins": 0}, "bins=0"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"features": ["f"], "horizons": [1], "every_ms": S, **kwargs}
    with pytest.raises(InputError, match=needle):
        study(HAND, **args)  # type: ignore[arg-type]


def test_duplicate_times_need_event_mode() -> None:
    table = _table([(0, "A", True, 1.0, 1.0), (0, "A", True, 2.0, 2.0)])
    with pytest.raises(InputError, match="every_ms=None"):
        study(table, ["f"], [1], every_ms=S)
    assert study(table, ["f"], [1], every_ms=None).ic.column("n").to_pylist() == [1, 1]
