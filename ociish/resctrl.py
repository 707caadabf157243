"""linux.intelRdt: the container's resctrl groups (config-linux.md "IntelRdt").

The container joins a CTRL_MON group of the mounted resctrl filesystem: `closID`, or "/"
for the default one, or else a group named after the container that `create` makes and
`delete` removes.  A group made here gets the schemata lines (l3CacheSchema, then
memBwSchema, then each `schemata` line, one write each so a later line overrides an
earlier one, as the spec orders them); a group that already exists is shared, never
rewritten: the lines must match what its schemata file says, or `create` fails.
`enableMonitoring` adds a MON group `mon_groups/<container id>` that lives as long as the
container.  Stage 1 is written to `tasks` (the MON group's, which puts it in its CTRL_MON
group too) before it starts anything, so the init and everything it forks inherit the
group, as they inherit the cgroup; a process `exec` starts joins the same way.

Every check that can be made before anything exists is made in `for_container`, so a
config this host cannot honour (no resctrl in the kernel, none mounted, no L3 or MB
resource, no monitoring) fails with one line naming the field and nothing to undo.

Imported only for configs that set linux.intelRdt (and to delete their containers).
"""

from __future__ import annotations

import errno
import os

from ociish.errors import ConfigError, OciishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FIELD = "linux.intelRdt"
MOUNTINFO = "/proc/self/mountinfo"
FILESYSTEMS = "/proc/filesystems"
# names the resctrl root already holds: never a closID
_RESERVED = ("info", "mon_groups", "mon_data", "tasks", "cpus", "cpus_list", "schemata", "mode", "size")


class IntelRdt:
    """One container's place in resctrl: its CTRL_MON group, and its MON group if any."""

    def __init__(self, group: str, mon_group: str | None, remove_group: bool,
                 lines: list[tuple[str, str]] | None = None, make_group: bool = False) -> None:
        """``make_group``: the group does not exist yet, `create` makes it (and only such a
        group's schemata are ever written, at create or by `update`)."""
        self.group = group
        self.mon_group = mon_group
        self.remove_group = remove_group  # delete removes it: made here, for no closID (the spec's rule)
        self.lines = lines or []  # (field, schemata line), written to a group made here
        self.make_group = make_group
        self.made: list[str] = []  # directories this create made, undone if it fails

    @classmethod
    def for_container(cls, spec: dict[str, Any], container_id: str, mountinfo: str | None = None,
                      filesystems: str | None = None) -> IntelRdt:
        """The groups of ``spec`` (linux.intelRdt), every precondition checked; the two
        /proc files are other ones only for tests (a fake resctrl tree)."""
        root = _resctrl_root(mountinfo or MOUNTINFO, filesystems or FILESYSTEMS)
        lines = _schemata_lines(spec)
        for field, line in lines:
            resource = line.partition(":")[0].strip()
            if not os.path.isdir(os.path.join(root, "info", resource)):
                raise ConfigError(f"config.json: {FIELD}.{field}: {line!r}: this host has no {resource} resource to allocate "
                                  f"(no info/{resource} under {root})")
        clos_id = spec.get("closID")
        if clos_id is not None and clos_id != "/" and (
                not clos_id or "/" in clos_id or "\n" in clos_id or clos_id in (".", "..") or clos_id in _RESERVED):
            raise ConfigError(f"config.json: {FIELD}.closID: {clos_id!r}: not a group name (a directory name, or \"/\" for the "
                              "default group)")
        group = root if clos_id == "/" else os.path.join(root, clos_id or container_id)
        exists = os.path.isdir(group)
        if exists and lines:
            _check_shared_schemata(group, lines)
        elif not exists and clos_id is not None and not lines:
            raise ConfigError(f"config.json: {FIELD}.closID: {clos_id!r}: no such group in {root} (without schemata, "
                              "closID must name a group that exists)")
        mon_group = None
        if spec.get("enableMonitoring"):
            if not any(name.endswith("_MON") for name in _listdir(os.path.join(root, "info"))):
                raise ConfigError(f"config.json: {FIELD}.enableMonitoring: this host's resctrl has no monitoring "
                                  f"(no info/*_MON under {root})")
            mon_group = os.path.join(group, "mon_groups", container_id)
            if os.path.exists(mon_group):
                raise ConfigError(f"config.json: {FIELD}.enableMonitoring: the MON group {mon_group} already exists")
        return cls(group, mon_group, remove_group=not exists and clos_id is None,
                   lines=[] if exists else lines, make_group=not exists)

    def to_record(self) -> dict[str, Any]:
        return {"group": self.group, "mon_group": self.mon_group, "remove_group": self.remove_group,
                "made_group": self.make_group}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> IntelRdt:
        return cls(record["group"], record.get("mon_group"), bool(record.get("remove_group")),
                   make_group=bool(record.get("made_group")))

    def create(self) -> None:
        """Make the group (with its schemata) and the MON group; undone by `rollback`."""
        if self.make_group:
            _mkdir(self.group, f"{FIELD}.closID")
            self.made.append(self.group)
            for field, line in self.lines:
                _write_schemata(self.group, f"config.json: {FIELD}.{field}", line)
        if self.mon_group is not None:
            _mkdir(self.mon_group, f"{FIELD}.enableMonitoring")
            self.made.append(self.mon_group)

    def join(self, pid: int) -> None:
        """Put ``pid`` in the groups; what it forks from then on is in them too."""
        for directory in (self.group, self.mon_group):
            if directory is not None:
                try:
                    with open(os.path.join(directory, "tasks"), "w") as f:
                        f.write(str(pid))
                except OSError as e:
                    raise OciishError(f"{FIELD}: cannot add pid {pid} to {directory}/tasks: {e.strerror}") from None

    def update(self, lines: list[tuple[str, str]]) -> None:
        """`update --l3-cache-schema/--mem-bw-schema`: (flag, line) written to the container's
        group, in order; a group it found already there is shared and left as it is."""
        for flag, line in lines:
            prefix = "L3" if flag == "--l3-cache-schema" else "MB:"
            if not line.startswith(prefix) or "\n" in line:
                raise OciishError(f"update {flag}: {line!r}: expected one line starting with {prefix}")
            if not self.make_group:
                raise OciishError(f"update {flag}: {self.group} was there before the container (a shared closID, "
                                  "or the default group): its schemata are not rewritten")
            _write_schemata(self.group, f"update {flag}", line)

    def rollback(self) -> None:
        """Remove what this create made, the newest first."""
        _remove([*reversed(self.made)])
        self.made = []

    def destroy(self) -> None:
        """At delete: the MON group always goes, the CTRL_MON group only if it is the container's own."""
        _remove([self.mon_group, self.group if self.remove_group else None])


def _resctrl_root(mountinfo: str, filesystems: str) -> str:
    from ociish.cgroups.detect import mounts

    found = mounts(mountinfo, ("resctrl",))
    if found:
        return found[0][0]
    try:
        with open(filesystems) as f:
            known = any(line.split()[-1:] == ["resctrl"] for line in f)
    except OSError:
        known = False
    if not known:
        raise ConfigError(f"config.json: {FIELD}: this host has no resctrl filesystem: its CPU or its kernel lacks Intel RDT "
                          "(both RDT hardware and CONFIG_X86_CPU_RESCTRL are needed)")
    raise ConfigError(f"config.json: {FIELD}: no resctrl filesystem is mounted (mount -t resctrl resctrl /sys/fs/resctrl)")


def _schemata_lines(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, line) in the order config-linux.md says they are written."""
    lines = [(field, spec[field]) for field in ("l3CacheSchema", "memBwSchema") if spec.get(field)]
    lines += [(f"schemata[{index}]", line) for index, line in enumerate(spec.get("schemata") or []) if line.strip()]
    for field, line in lines:
        if "\n" in line.strip() or ":" not in line:
            raise ConfigError(f"config.json: {FIELD}.{field}: {line!r}: expected one line like L3:0=7f0;1=1f")
    return [(field, line.strip()) for field, line in lines]


def _domains(line: str) -> tuple[str, dict[str, str]]:
    """ "L3:0=7f0;1=1f" → ("L3", {"0": "7f0", "1": "1f"}), values as the kernel prints them."""
    resource, _, rest = line.partition(":")
    domains = {}
    for item in rest.split(";"):
        domain, _, value = item.partition("=")
        if domain.strip():
            domains[domain.strip()] = value.strip().lower().lstrip("0") or "0"
    return resource.strip(), domains


def _check_shared_schemata(group: str, lines: list[tuple[str, str]]) -> None:
    """An existing group is shared: what the config asks must be what it already has."""
    try:
        with open(os.path.join(group, "schemata")) as f:
            current = dict(_domains(line) for line in f if ":" in line)
    except OSError as e:
        raise ConfigError(f"config.json: {FIELD}.closID: cannot read {group}/schemata: {e.strerror}") from None
    for field, line in lines:
        resource, wanted = _domains(line)
        have = current.get(resource, {})
        if any(have.get(domain) != value for domain, value in wanted.items()):
            shown = ";".join(f"{d}={v}" for d, v in have.items())
            raise ConfigError(f"config.json: {FIELD}.{field}: {line!r} does not match the existing group {group} "
                              f"({resource}:{shown or 'none'}); a shared closID's schemata are not rewritten")


def _write_schemata(group: str, where: str, line: str) -> None:
    try:
        with open(os.path.join(group, "schemata"), "w") as f:
            f.write(line + "\n")
    except OSError as e:
        reason = _last_status(os.path.dirname(group)) or e.strerror
        raise ConfigError(f"{where}: {line!r}: the kernel refused it: {reason}") from None


def _last_status(root: str) -> str:
    """Why resctrl refused the last write (info/last_cmd_status), if it says."""
    try:
        with open(os.path.join(root, "info", "last_cmd_status")) as f:
            return f.read().strip()
    except OSError:
        return ""


def _mkdir(path: str, field: str) -> None:
    try:
        os.mkdir(path)
    except OSError as e:
        why = "no more groups of this kind can be made" if e.errno == errno.ENOSPC else e.strerror
        raise OciishError(f"{field}: cannot create {path}: {why}") from None


def _remove(directories: list[str | None]) -> None:
    """rmdir each (resctrl moves what is still in a group to its parent); gone already is fine."""
    for directory in directories:
        if directory is None:
            continue
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise OciishError(f"{FIELD}: cannot remove {directory}: {e.strerror}") from None


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
