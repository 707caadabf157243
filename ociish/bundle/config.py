"""Build a config.json in code: the typed API behind the `ociish spec` options and `ociish bundle`.

Tools import this instead of editing nested dicts: each method is one decision (what to
run, what to mount, which limits), starting from `ociish spec`'s defaults, and
``build()`` returns the config only if it passes the validation `ociish create` applies
(schemas/ and the spec's prose), so a bad value is reported when the bundle is made.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self

from ociish.errors import ConfigError
from ociish.spec.defaults import default_config, write_config

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
DEFAULT_TMPFS_OPTIONS = ("nosuid", "nodev", "mode=1777")
CPU_PERIOD = 100_000  # µs; --cpus N is N periods' worth of quota
MIN_CPU_QUOTA = 1_000  # the kernel refuses a cfs quota below 1 ms


class ConfigBuilder:
    """A config.json under construction; every setter returns the builder for chaining.

    >>> config = ConfigBuilder().args("cc", "hello.c").tmpfs("/tmp").memory(256 << 20).build()
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, rootless: bool = False) -> None:
        self._config: dict[str, Any] = copy.deepcopy(dict(config)) if config is not None else default_config(rootless)

    # --- process ---------------------------------------------------------------------

    def args(self, *argv: str) -> Self:
        if not argv:
            raise ConfigError("process.args: at least one argument is required")
        self._process()["args"] = list(argv)
        return self

    def env(self, name: str, value: str) -> Self:
        """Set one variable, replacing an earlier value of the same name."""
        if not name or "=" in name or "\0" in name:
            raise ConfigError(f"process.env: {name!r} is not a variable name")
        process = self._process()
        env = [item for item in process.get("env", []) if item.split("=", 1)[0] != name]
        process["env"] = [*env, f"{name}={value}"]
        return self

    def cwd(self, path: str) -> Self:
        if not path.startswith("/"):
            raise ConfigError(f"process.cwd: {path!r}: must be an absolute path")
        self._process()["cwd"] = path
        return self

    def user(self, uid: int, gid: int, additional_gids: Sequence[int] = ()) -> Self:
        user: dict[str, Any] = {"uid": uid, "gid": gid}
        if additional_gids:
            user["additionalGids"] = list(additional_gids)
        self._process()["user"] = user
        return self

    def terminal(self, enabled: bool = True) -> Self:
        self._process()["terminal"] = enabled
        return self

    # --- root filesystem and mounts ---------------------------------------------------

    def root(self, path: str, *, readonly: bool | None = None) -> Self:
        """root.path (absolute, or relative to the bundle); readonly=None keeps the setting."""
        self._config.setdefault("root", {})["path"] = path
        if readonly is not None:
            self.readonly(readonly)
        return self

    def readonly(self, enabled: bool = True) -> Self:
        self._config.setdefault("root", {"path": "rootfs"})["readonly"] = enabled
        return self

    def readonly_path(self, path: str) -> Self:
        """linux.readonlyPaths: keep ``path`` read-only even when the rootfs is writable."""
        paths = self._linux().setdefault("readonlyPaths", [])
        if path not in paths:
            paths.append(path)
        return self

    def mount(self, destination: str, type: str, source: str, options: Sequence[str] = (), *,
              first: bool = False) -> Self:
        """Add a mount, last or (``first``) before all others; one at the same destination
        is replaced where it stands instead (``tmpfs("/dev/shm", ["size=1g"])`` resizes the
        default one rather than stacking a second)."""
        entry: dict[str, Any] = {"destination": destination, "type": type, "source": source}
        if options:
            entry["options"] = list(options)
        mounts = self._config.setdefault("mounts", [])
        for index, existing in enumerate(mounts):
            if existing.get("destination") == destination:
                mounts[index] = entry
                return self
        if first:
            mounts.insert(0, entry)
        else:
            mounts.append(entry)
        return self

    def bind(self, source: str | Path, destination: str, *, readonly: bool = False,
             options: Sequence[str] = ()) -> Self:
        """A recursive bind mount of a host path (relative sources are relative to the bundle)."""
        return self.mount(destination, "bind", str(source), ["rbind", *(["ro"] if readonly else []), *options])

    def tmpfs(self, destination: str, options: Sequence[str] = ()) -> Self:
        """A fresh tmpfs; ``options`` (e.g. ``size=64m``) come after nosuid,nodev,mode=1777."""
        return self.mount(destination, "tmpfs", "tmpfs", [*DEFAULT_TMPFS_OPTIONS, *options])

    # --- resources --------------------------------------------------------------------

    def memory(self, limit: int) -> Self:
        """Memory limit in bytes."""
        if limit <= 0:
            raise ConfigError(f"linux.resources.memory.limit: {limit}: expected a positive number of bytes")
        self._resources().setdefault("memory", {})["limit"] = limit
        return self

    def cpus(self, count: float) -> Self:
        """CPU time as a number of CPUs (1.5 = 150 ms of every 100 ms)."""
        quota = round(count * CPU_PERIOD)
        if quota < MIN_CPU_QUOTA:
            minimum = MIN_CPU_QUOTA / CPU_PERIOD
            raise ConfigError(f"linux.resources.cpu.quota: {count} CPUs: expected at least {minimum}")
        self._resources()["cpu"] = {**self._resources().get("cpu", {}), "quota": quota, "period": CPU_PERIOD}
        return self

    def pids(self, limit: int) -> Self:
        if limit <= 0:
            raise ConfigError(f"linux.resources.pids.limit: {limit}: expected a positive number of processes")
        self._resources()["pids"] = {"limit": limit}
        return self

    # --- namespaces -------------------------------------------------------------------

    def namespaces(self, namespaces: Iterable[str | tuple[str, str]]) -> Self:
        """Replace the namespace list: a type creates one, (type, path) joins an existing one.

        Without a uts namespace the default hostname is dropped: setting it would need one.
        """
        entries: list[dict[str, str]] = []
        for item in namespaces:
            kind, path = (item, None) if isinstance(item, str) else item
            if kind not in NAMESPACE_TYPES:
                raise ConfigError(f"linux.namespaces: {kind!r}: expected one of {', '.join(NAMESPACE_TYPES)}")
            if any(e["type"] == kind for e in entries):
                raise ConfigError(f"linux.namespaces: {kind!r} is listed twice")
            entries.append({"type": kind, "path": path} if path else {"type": kind})
        self._linux()["namespaces"] = entries
        if not any(e["type"] == "uts" for e in entries):
            self._config.pop("hostname", None)
            self._config.pop("domainname", None)
        return self

    def network(self, mode: Literal["none", "host"]) -> Self:
        """none: a network namespace of its own (loopback only); host: the host's network."""
        if mode not in ("none", "host"):
            raise ConfigError(f"network: {mode!r}: expected none or host")
        namespaces = [ns for ns in self._linux().get("namespaces", []) if ns["type"] != "network"]
        if mode == "none":
            namespaces.append({"type": "network"})
        self._linux()["namespaces"] = namespaces
        return self

    def hostname(self, name: str) -> Self:
        self._config["hostname"] = name
        return self

    # --- metadata and output ----------------------------------------------------------

    def annotation(self, key: str, value: str) -> Self:
        self._config.setdefault("annotations", {})[key] = value
        return self

    def peek(self) -> dict[str, Any]:
        """A copy of the config as it stands, unvalidated (for code that inspects it)."""
        return copy.deepcopy(self._config)

    def build(self, label: str = "config.json") -> dict[str, Any]:
        """The finished config; ConfigError listing every problem if it is not valid."""
        from ociish.spec.validate import validate_config

        config = copy.deepcopy(self._config)
        errors = validate_config(config, label)
        kinds = {ns.get("type") for ns in config.get("linux", {}).get("namespaces", [])}
        for field in ("hostname", "domainname"):
            if field in config and "uts" not in kinds:
                errors.append(f"{label}: {field}: setting it needs a uts namespace (linux.namespaces)")
        if errors:
            raise ConfigError("\n".join(errors))
        return config

    def write(self, bundle: str | Path) -> Path:
        """Validate, then write <bundle>/config.json (never over an existing one)."""
        return Path(write_config(str(bundle), self.build()))

    def _process(self) -> dict[str, Any]:
        return self._config.setdefault("process", {"cwd": "/", "args": ["sh"]})

    def _linux(self) -> dict[str, Any]:
        return self._config.setdefault("linux", {})

    def _resources(self) -> dict[str, Any]:
        return self._linux().setdefault("resources", {})
