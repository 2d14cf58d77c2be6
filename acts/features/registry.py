"""Named book features: resolve ``"bias10"``, ``"mypkg.mod:func"`` or an installed plug-in's name to a
function of the book.

A feature is a plain function ``f(view: BookView) -> float | None`` (``None`` = undefined, e.g. an
empty side). Families take their parameter from the name: ``bias10`` is ``bias(levels=10)``.
A *vector* feature declares a fixed length k (``@vector(k)``, or ``Feature(name, fn, size=k)``) and
returns k numbers: one fixed-size list column (``name_0..name_{k-1}`` in CSV).

Where a name is looked up, in order: the built-ins (``default_registry``); ``package.module:function``
(imported from the installed packages or the current folder, as ``python -m`` would); the built-in
families (``bias{N}``); the ``acts.features`` entry-point group of installed distributions
(``wimb = "mypkg.feat:wimb"`` in a package's ``pyproject.toml``). Unknown names fail before any
work, listing the known ones and the closest match.
"""

from __future__ import annotations

import difflib
import importlib
import math
import numbers
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, TypeAlias, TypeVar, cast

from acts.book.protocol import BookView
from acts.core.errors import UnknownFeatureError

__all__ = ["FeatureFn", "FeatureValue", "Feature", "Registry", "ENTRY_POINT_GROUP", "RESERVED", "vector",
           "check_names", "names_from_csv"]

FeatureFn = Callable[[BookView], Any]
#: One feature's value in a row: a float, a vector feature's tuple, or None (undefined or failed).
FeatureValue: TypeAlias = "float | tuple[float | None, ...] | None"

_FAMILY_NAME = re.compile(r"([a-z_]+?)([0-9]+)")
#: Families accept 1..this many levels (Binance snapshots carry at most 5000 levels a side).
MAX_LEVELS = 5000
#: Installed distributions register features under this entry-point group (name = feature name).
ENTRY_POINT_GROUP = "acts.features"
#: The attribute ``@vector(k)`` sets: a plug-in may set it by hand and need not import ACTS.
SIZE_ATTRIBUTE = "vector_size"
#: A vector feature has at most this many elements (a column per element in CSV).
MAX_SIZE = 10_000
#: Columns of a features table and keys of an entry that are not features: no feature is named so.
RESERVED = frozenset({"time", "symbol", "valid", "last_book_update", "current_time", "minute", "mid_price"})

F = TypeVar("F", bound=Callable[..., Any])


def vector(size: int) -> Callable[[F], F]:
    """Declare ``fn`` a vector feature of ``size`` numbers (``@vector(5)``); sets ``fn.vector_size``."""
    _check_size(size, "vector")

    def mark(fn: F) -> F:
        setattr(fn, SIZE_ATTRIBUTE, size)
        return fn

    return mark


@dataclass(frozen=True, slots=True)
class Feature:
    """A named feature. ``size`` None: ``fn`` returns one number; k: a vector of exactly k numbers."""

    name: str
    fn: FeatureFn
    size: int | None = None

    def __post_init__(self) -> None:
        if self.size is not None:
            _check_size(self.size, self.name)

    @classmethod
    def of(cls, name: str, fn: FeatureFn) -> Feature:
        """``fn`` under ``name``, a vector if ``fn`` declares a size (``@vector(k)``)."""
        return cls(name, fn, getattr(fn, SIZE_ATTRIBUTE, None))

    def vector(self, value: object) -> tuple[float | None, ...]:
        """A vector feature's return value as a tuple of ``size`` floats (None for None, NaN or infinite
        elements); ``TypeError``/``ValueError`` if it is not ``size`` real numbers, which the sampler
        reports as the feature's failure (its value is then null)."""
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise TypeError(f"returned {type(value).__name__} {value!r:.40}, not a sequence of {self.size} numbers")
        items = tuple(value)
        if len(items) != self.size:
            raise ValueError(f"returned {len(items)} values; it declares {self.size}")
        return tuple(_element(item) for item in items)


def _check_size(size: object, what: str) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise UnknownFeatureError(f"feature {what!r}: a vector size must be a whole number from 1 to {MAX_SIZE}, "
                                  f"not {size!r}")


def _element(value: object) -> float | None:
    """One element of a vector, by the rule of scalar values (``pipeline._finite``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"returned an element {type(value).__name__} {value!r:.40}, not a number")
    number = float(value)
    return number if math.isfinite(number) else None


class Registry:
    """Plain features by name, families by prefix (``bias`` -> ``bias{N}``), installed plug-ins by their
    entry-point name."""

    def __init__(self) -> None:
        self._plain: dict[str, FeatureFn] = {}
        self._families: dict[str, Callable[[int], FeatureFn]] = {}
        self._docs: dict[str, str] = {}

    def add(self, name: str, fn: FeatureFn, doc: str) -> None:
        self._plain[name] = fn
        self._docs[name] = doc

    def add_family(self, prefix: str, factory: Callable[[int], FeatureFn], doc: str) -> None:
        self._families[prefix] = factory
        self._docs[prefix + "{N}"] = doc

    def docs(self) -> dict[str, str]:
        """Every feature's definition, built-ins and installed plug-ins (which are not imported for this)."""
        docs = dict(self._docs)
        for name, points in _installed().items():
            if name not in docs:
                docs[name] = f"plug-in {points[0].value}" + (f" (from {_dist_name(points[0])})"
                                                              if _dist_name(points[0]) else "")
        return dict(sorted(docs.items()))

    def resolve(self, names: Iterable[str]) -> list[Feature]:
        """Every name resolved, in order; the first unknown one raises ``UnknownFeatureError``."""
        resolved = [self._resolve_one(name.strip()) for name in names if name.strip()]
        check_names(resolved)
        return resolved

    def _resolve_one(self, name: str) -> Feature:
        if name in self._plain:
            return Feature.of(name, self._plain[name])
        if ":" in name:
            return Feature.of(name, _import_feature(name))
        match = _FAMILY_NAME.fullmatch(name)
        if match and match.group(1) in self._families:
            levels = int(match.group(2))
            if not 1 <= levels <= MAX_LEVELS:
                raise UnknownFeatureError(f"feature {name!r}: N must be between 1 and {MAX_LEVELS}")
            if match.group(2) != str(levels):  # bias010 and bias10: one feature under two column names
                raise UnknownFeatureError(f"feature {name!r}: write N without leading zeros, as "
                                          f"{match.group(1) + str(levels)!r}")
            return Feature.of(name, self._families[match.group(1)](levels))
        installed = _installed()
        if name in installed:
            return Feature.of(name, _load_entry_point(name, installed[name]))
        raise UnknownFeatureError(_unknown_message(name, self._plain, self._families, installed))


def check_names(features: Sequence[Feature], twice_hint: str = "") -> None:
    """``UnknownFeatureError`` if a name is given twice or is one of the ``RESERVED`` column names."""
    seen: set[str] = set()
    for feature in features:
        if feature.name in RESERVED:
            raise UnknownFeatureError(f"feature {feature.name!r}: that name is a column of every row "
                                      f"({', '.join(sorted(RESERVED))}); give the feature another name")
        if feature.name in seen:
            raise UnknownFeatureError(f"feature {feature.name!r} is requested twice; list it once{twice_hint}")
        seen.add(feature.name)
    # CSV spreads a vector ``v`` over ``v_0..v_{k-1}``: no other column may be called so.
    spread = {f"{f.name}_{i}": f.name for f in features if f.size is not None for i in range(f.size)}
    for feature in features:
        if feature.name in spread:
            raise UnknownFeatureError(f"feature {feature.name!r} has the name of an element of vector feature "
                                      f"{spread[feature.name]!r} in CSV; rename one of them")


def _unknown_message(name: str, plain: Mapping[str, FeatureFn], families: Mapping[str, object],
                     installed: Mapping[str, object]) -> str:
    candidates = list(plain) + [prefix + "10" for prefix in families] + list(installed)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    known = ", ".join(sorted(plain) + sorted(p + "{N}" for p in families) + sorted(installed))
    return (
        f"unknown feature {name!r}.{hint} Known features: {known}; "
        "or a function of your own as 'package.module:function'."
    )


# --- installed plug-ins: the acts.features entry-point group ------------------------------------


def _installed() -> dict[str, list[metadata.EntryPoint]]:
    """The group's entry points by name, read afresh (installing a package needs no restart of a
    notebook); a name may come from several distributions."""
    found: dict[str, list[metadata.EntryPoint]] = {}
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        same = found.setdefault(point.name, [])
        if all(p.value != point.value for p in same):  # one distribution seen twice on sys.path
            same.append(point)
    return found


def _dist_name(point: metadata.EntryPoint) -> str | None:
    dist = getattr(point, "dist", None)
    return None if dist is None else str(dist.name)


def _load_entry_point(name: str, points: Sequence[metadata.EntryPoint]) -> FeatureFn:
    if len(points) > 1:
        sources = ", ".join(f"{p.value} ({_dist_name(p) or 'unknown package'})" for p in points)
        raise UnknownFeatureError(f"feature {name!r} is registered by more than one installed package: {sources}; "
                                  "uninstall one, or use 'package.module:function' to choose")
    point = points[0]
    try:
        fn = point.load()
    except Exception as exc:  # noqa: BLE001 -- user code: its import may raise anything
        raise UnknownFeatureError(f"feature {name!r}: loading plug-in {point.value} failed: "
                                  f"{_one_line(exc)}; fix or reinstall {_dist_name(point) or 'it'}") from exc
    if not callable(fn):
        raise UnknownFeatureError(f"feature {name!r}: plug-in {point.value} is not a function")
    return cast(FeatureFn, fn)


# --- package.module:function --------------------------------------------------------------------


#: ``package.module:function``: dotted identifiers, one colon.
_USER_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _import_feature(spec: str) -> FeatureFn:
    if not _USER_SPEC.fullmatch(spec):
        raise UnknownFeatureError(f"feature {spec!r} is not a name; write your own feature as "
                                  "'package.module:function'")
    module_name, _, attr = spec.partition(":")
    here = os.getcwd()
    try:
        module = _import_here(module_name, here)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UnknownFeatureError(f"feature {spec!r}: no module {exc.name!r}, neither installed nor in the "
                                      f"current folder {here}; run from the folder that holds it, or install "
                                      "it") from exc
        raise UnknownFeatureError(f"feature {spec!r}: importing {module_name} failed: {_one_line(exc)}; "
                                  "install what it needs") from exc
    except Exception as exc:  # noqa: BLE001 -- user code: a syntax error, or anything its import runs
        raise UnknownFeatureError(f"feature {spec!r}: importing {module_name} failed: {_one_line(exc)}; "
                                  "fix the module") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        public = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        close = difflib.get_close_matches(attr, public, n=1, cutoff=0.5)
        hint = f"; did you mean {module_name}:{close[0]}?" if close else ""
        what = "no function" if fn is None else "no function (only a value)"
        raise UnknownFeatureError(f"feature {spec!r}: module {module_name} has {what} {attr!r}{hint}")
    # A user's function is only known to be callable; what it returns is checked at each call
    # (``pipeline._finite``: a value that is not a finite number is null and reported).
    return cast(FeatureFn, fn)


def _import_here(module_name: str, here: str) -> ModuleType:
    """Import ``module_name`` as ``python -m`` run from ``here`` would: the folder first on the path.

    The ``acts`` console script's path starts at its own bin/ folder, not the current one, so a
    plug-in next to the user (README) would not be found. The folder is on ``sys.path`` only while
    the plug-in imports (its own imports included): the process's path is left as it was.
    """
    if here in sys.path or "" in sys.path:
        return importlib.import_module(module_name)
    sys.path.insert(0, here)
    try:
        importlib.invalidate_caches()  # the folder may have been created since the last import
        return importlib.import_module(module_name)
    finally:
        if here in sys.path:
            sys.path.remove(here)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def names_from_csv(text: str | Sequence[str]) -> list[str]:
    """``"bias10, mid"`` -> ``["bias10", "mid"]``."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    return [p.strip() for p in parts if p.strip()]
