"""`exec --cgroup`: the sub-cgroups of the container's cgroup an exec'd process starts in.

runc's two forms.  `--cgroup PATH`, given alone, means the sub-cgroup PATH in every
hierarchy the container has (each v1 controller, name=systemd and the cgroup2 tree).
`--cgroup CONTROLLER[,CONTROLLER...]:PATH`, repeatable, means PATH in those controllers'
hierarchies only; the others keep the container's own cgroup.  On cgroup v2 a process has
one cgroup, so the controllers named must be ones the container's cgroup has, all with
the same PATH (runc accepts only the first form there).  The sub-cgroups are not made
here: they must exist, as runc requires (the container's own processes, or whoever
manages its cgroup, create them).
"""

from __future__ import annotations

import os

from ociish.cgroups import fs
from ociish.errors import OciishError

UNIFIED = ""  # the cgroup2 tree's key in CgroupManager.dirs


class Request:
    """The parsed --cgroup options: one PATH for every hierarchy, or one per controller."""

    def __init__(self, every: str | None, per_controller: dict[str, tuple[str, str]]) -> None:
        self.every = every
        self.per_controller = per_controller  # controller → (PATH, the option as given)


def parse(options: list[str]) -> Request:
    """The --cgroup options, refused as runc refuses them."""
    every = None
    per_controller: dict[str, tuple[str, str]] = {}
    for option in options:
        controllers, colon, path = option.partition(":")
        if not colon:
            if len(options) != 1:
                raise OciishError(f"exec: --cgroup {option}: a PATH without a CONTROLLER: prefix must be the "
                                  "only --cgroup")
            every = option
            continue
        for controller in controllers.split(","):
            if not controller:
                raise OciishError(f"exec: --cgroup {option}: empty controller name")
            if controller in per_controller:
                raise OciishError(f"exec: --cgroup: controller {controller} given more than once")
            per_controller[controller] = (path, option)
    return Request(every, per_controller)


def targets(request: Request, mode: str, dirs: dict[str, str]) -> dict[str, str]:
    """Container directory → the existing sub-cgroup directory to join instead.

    ``mode`` and ``dirs`` are the container's CgroupManager's (controller → directory,
    "" for the cgroup2 tree; co-mounted controllers share a directory)."""
    result: dict[str, str] = {}
    if request.every is not None:
        for leaf in dict.fromkeys(dirs.values()):
            result[leaf] = _below(leaf, request.every, f"--cgroup {request.every}")
        return result
    for controller, (path, option) in request.per_controller.items():
        leaf = _hierarchy(controller, mode, dirs, option)
        target = _below(leaf, path, f"--cgroup {option}")
        if result.setdefault(leaf, target) != target:
            shared = "on cgroup v2 a process has one cgroup" if mode == "v2" else f"{leaf} holds several controllers"
            raise OciishError(f"exec: --cgroup {option}: {shared}: give every controller of it the same PATH")
    return result


def _hierarchy(controller: str, mode: str, dirs: dict[str, str], option: str) -> str:
    if mode == "v2":
        leaf = dirs[UNIFIED]
        if controller in (fs.read_optional(os.path.join(leaf, "cgroup.controllers")) or "").split():
            return leaf
    elif controller != UNIFIED and controller in dirs:
        return dirs[controller]
    raise OciishError(f"exec: --cgroup {option}: unknown controller {controller} (the container's cgroup has "
                      f"{', '.join(_known(mode, dirs))})")


def _known(mode: str, dirs: dict[str, str]) -> list[str]:
    if mode == "v2":
        return (fs.read_optional(os.path.join(dirs[UNIFIED], "cgroup.controllers")) or "").split() or ["none"]
    return sorted(c for c in dirs if c != UNIFIED)


def _below(leaf: str, path: str, what: str) -> str:
    """``path`` inside the container's ``leaf``: never a sibling or parent, and existing."""
    target = os.path.normpath(os.path.join(leaf, path.lstrip("/")))
    if target != leaf and not target.startswith(leaf + "/"):
        raise OciishError(f"exec: {what}: {path!r} is not a sub-cgroup of the container's cgroup {leaf}")
    if not os.path.isdir(target):
        raise OciishError(f"exec: {what}: the sub-cgroup {target} does not exist")
    return target
