"""The check registry: every check, the requirements it covers, its area."""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from conformance.harness import CheckContext

CheckFunc = Callable[[CheckContext], None]


@dataclass(frozen=True)
class Check:
    """A runnable check: name (area.function), requirement ids it decides."""

    name: str
    area: str
    covers: tuple[str, ...]
    func: CheckFunc
    doc: str

    def matches(self, patterns: list[str]) -> bool:
        """True if any glob matches the name, the area or a covered id.

        A pattern without glob characters matches as a substring.
        """
        keys = (self.name, self.area, *self.covers)
        for pat in patterns:
            glob = pat if any(c in pat for c in "*?[") else f"*{pat}*"
            if any(fnmatch.fnmatchcase(k, glob) for k in keys):
                return True
        return False


_CHECKS: dict[str, Check] = {}


def register(name: str, area: str, covers: tuple[str, ...], func: CheckFunc,
             doc: str = "") -> None:
    """Add a check; names must be unique."""
    if name in _CHECKS:
        raise ValueError(f"duplicate check {name}")
    if not covers:
        raise ValueError(f"check {name} covers no requirement")
    text = (doc or func.__doc__ or "").strip()
    _CHECKS[name] = Check(name, area, covers, func, text.splitlines()[0] if text else "")


def check(*covers: str) -> Callable[[CheckFunc], CheckFunc]:
    """Decorator: register func as check `<module>.<func>` covering ids."""

    def deco(func: CheckFunc) -> CheckFunc:
        area = func.__module__.rsplit(".", 1)[-1]
        register(f"{area}.{func.__name__}", area, covers, func)
        return func

    return deco


def all_checks() -> list[Check]:
    """Import every module of conformance.checks and return their checks."""
    import conformance.checks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return list(_CHECKS.values())
