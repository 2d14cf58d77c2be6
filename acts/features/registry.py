"""Named book features: resolve ``"bias10"`` or ``"mypkg.mod:func"`` to a function of the book.

A feature is a plain function ``f(view: BookView) -> float | None`` (``None`` = undefined, e.g. an
empty side). Families take their parameter from the name: ``bias10`` is ``bias(levels=10)``.
Unknown names fail before any work, listing the known ones and the closest match.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from acts.book.protocol import BookView
from acts.core.errors import UnknownFeatureError

__all__ = ["FeatureFn", "Feature", "Registry"]

FeatureFn = Callable[[BookView], "float | None"]

_FAMILY_NAME = re.compile(r"([a-z_]+?)([0-9]+)")
#: Families accept 1..this many levels (Binance snapshots carry at most 5000 levels a side).
MAX_LEVELS = 5000


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    fn: FeatureFn


class Registry:
    """Plain features by name, families by prefix (``bias`` -> ``bias{N}``)."""

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
        return dict(sorted(self._docs.items()))

    def resolve(self, names: Iterable[str]) -> list[Feature]:
        """Every name resolved, in order; the first unknown one raises ``UnknownFeatureError``."""
        resolved = [self._resolve_one(name.strip()) for name in names if name.strip()]
        seen: set[str] = set()
        for feature in resolved:
            if feature.name in seen:
                raise UnknownFeatureError(f"feature {feature.name!r} is requested twice; list it once")
            seen.add(feature.name)
        return resolved

    def _resolve_one(self, name: str) -> Feature:
        if name in self._plain:
            return Feature(name, self._plain[name])
        if ":" in name:
            return Feature(name, _import_feature(name))
        match = _FAMILY_NAME.fullmatch(name)
        if match and match.group(1) in self._families:
            levels = int(match.group(2))
            if not 1 <= levels <= MAX_LEVELS:
                raise UnknownFeatureError(f"feature {name!r}: N must be between 1 and {MAX_LEVELS}")
            if match.group(2) != str(levels):  # bias010 and bias10: one feature under two column names
                raise UnknownFeatureError(f"feature {name!r}: write N without leading zeros, as "
                                          f"{match.group(1) + str(levels)!r}")
            return Feature(name, self._families[match.group(1)](levels))
        raise UnknownFeatureError(_unknown_message(name, self._plain, self._families))


def _unknown_message(name: str, plain: Mapping[str, FeatureFn], families: Mapping[str, object]) -> str:
    candidates = list(plain) + [prefix + "10" for prefix in families]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    known = ", ".join(sorted(plain) + sorted(p + "{N}" for p in families))
    return (
        f"unknown feature {name!r}.{hint} Known features: {known}; "
        "or a function of your own as 'package.module:function'."
    )


#: ``package.module:function``: dotted identifiers, one colon.
_USER_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _import_feature(spec: str) -> FeatureFn:
    if not _USER_SPEC.fullmatch(spec):
        raise UnknownFeatureError(f"feature {spec!r} is not a name; write your own feature as "
                                  "'package.module:function'")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownFeatureError(f"feature {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 -- user code: a syntax error, or anything its import runs
        raise UnknownFeatureError(f"feature {spec!r}: importing {module_name} failed: {type(exc).__name__}: "
                                  f"{exc}; fix the module") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UnknownFeatureError(f"feature {spec!r}: {module_name} has no function {attr!r}")
    # A user's function is only known to be callable; what it returns is checked at each call
    # (``pipeline._finite``: a value that is not a finite number is null and reported).
    return cast(FeatureFn, fn)


def names_from_csv(text: str | Sequence[str]) -> list[str]:
    """``"bias10, mid"`` -> ``["bias10", "mid"]``."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    return [p.strip() for p in parts if p.strip()]
