"""`linux.cgroupsPath` → the container's cgroup, as a path inside every hierarchy.

cgroupfs driver (see docs/cgroups.md for the reasoning):
  - absolute `/a/b` → `/a/b` under each hierarchy's mount point (the spec's rule);
  - relative `a/b`  → also `/a/b`: the "runtime-determined location" is the hierarchy
    root, so the same value always lands in the same place whichever process runs us;
  - unset or empty  → `/ociish/<container id>`.
Paths are cleaned lexically, so `../../x` is `/x` and can never leave the hierarchy.

systemd driver, `slice:prefix:name` → the unit `<prefix>-<name>.scope` in that slice, and
the cgroup systemd gives it: `<expanded slice>/<prefix>-<name>.scope` below the manager's
own cgroup (or the slice itself when `name` ends in `.slice`); an empty slice is
`system.slice` (`user.slice` for a user's systemd), `-` is the root slice, and dashes
nest (`a-b.slice` → `/a.slice/a-b.slice`).  Unset means `:ociish:<id>`.
"""

from __future__ import annotations

import posixpath

from ociish.errors import ConfigError

FIELD = "linux.cgroupsPath"
DEFAULT_PARENT = "/ociish"


def clean(path: str) -> str:
    """Absolute and lexically clean; `..` stops at the root."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _container_name(container_id: str) -> str:
    if not container_id or "/" in container_id or container_id in (".", "..") or "\0" in container_id:
        raise ConfigError(f"{FIELD}: container id {container_id!r} cannot name a cgroup")
    return container_id


def _checked(path: str, original: str) -> str:
    if path == "/":
        raise ConfigError(f"{FIELD}: {original!r} names the root cgroup, which a container cannot own")
    return path


def cgroupfs_path(container_id: str, cgroups_path: str | None) -> str:
    """The cgroup for the cgroupfs driver (see the module docstring)."""
    if not cgroups_path:
        return f"{DEFAULT_PARENT}/{_container_name(container_id)}"
    if not isinstance(cgroups_path, str) or "\0" in cgroups_path:
        raise ConfigError(f"{FIELD}: expected a path, got {cgroups_path!r}")
    if not cgroups_path.startswith("/") and ":" in cgroups_path:
        raise ConfigError(
            f"{FIELD}: {cgroups_path!r} is a systemd 'slice:prefix:name' path but the cgroupfs driver is in use"
        )
    return _checked(clean(cgroups_path), cgroups_path)


def expand_slice(slice_name: str) -> str:
    """Where systemd puts a slice: `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`, `-.slice` → `/`."""
    if slice_name in ("-", "-.slice"):
        return "/"
    stem = slice_name.removesuffix(".slice")
    words = stem.split("-")
    if stem == slice_name or "/" in stem or "" in words:
        raise ConfigError(f"{FIELD}: {slice_name!r} is not a valid systemd slice name")
    return "".join(f"/{'-'.join(words[: i + 1])}.slice" for i in range(len(words)))


def systemd_unit(container_id: str, cgroups_path: str | None, user: bool = False) -> tuple[str, str]:
    """(slice, unit) of `slice:prefix:name`; an empty slice is `system.slice`, or `user.slice`
    for a user's systemd, as runc has it."""
    value = cgroups_path or f":ociish:{_container_name(container_id)}"
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 3 or value.startswith("/"):
        raise ConfigError(f"{FIELD}: expected 'slice:prefix:name' for the systemd cgroup driver, got {value!r}")
    slice_name, prefix, name = parts
    if not name or "/" in prefix + name or "\0" in value:
        raise ConfigError(f"{FIELD}: {value!r} does not name a systemd unit")
    if name.endswith(".slice"):
        return slice_name, name
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return slice_name or ("user.slice" if user else "system.slice"), unit


def systemd_path(container_id: str, cgroups_path: str | None, user: bool = False) -> str:
    """The cgroup systemd makes for `slice:prefix:name` (see the module docstring), below the
    manager's own cgroup."""
    slice_name, unit = systemd_unit(container_id, cgroups_path, user)
    if unit.endswith(".slice"):
        return _checked(expand_slice(unit), cgroups_path or "")
    return posixpath.join(expand_slice(slice_name), unit)


def resolve(container_id: str, cgroups_path: str | None, systemd: bool = False) -> str:
    """The container's cgroup path inside each hierarchy, for either driver."""
    if systemd:
        return systemd_path(container_id, cgroups_path)
    return cgroupfs_path(container_id, cgroups_path)
