"""Parsing /proc/<pid>/mountinfo lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    parent_id: int
    root: str
    point: str
    options: frozenset[str]  # per-mount options (field 6)
    tags: frozenset[str]  # optional fields: shared:N, master:N, unbindable
    fstype: str
    source: str
    super_options: frozenset[str]

    @classmethod
    def parse(cls, line: str) -> Mount:
        pre, _, post = line.partition(" - ")
        f = pre.split(" ")
        fstype, source, sopts = (post.split(" ") + ["", "", ""])[:3]
        return cls(int(f[0]), int(f[1]), unescape(f[3]), unescape(f[4]),
                   frozenset(f[5].split(",")), frozenset(f[6:]), fstype,
                   source, frozenset(sopts.split(",")))

    @property
    def propagation(self) -> str:
        """shared, slave, unbindable or private (as mountinfo tags show it)."""
        kinds = {t.split(":")[0] for t in self.tags}
        if "shared" in kinds:
            return "shared"
        if "master" in kinds:
            return "slave"
        return "unbindable" if "unbindable" in kinds else "private"

    def super_value(self, name: str) -> str | None:
        """Value of a `name=value` filesystem option, if present."""
        for opt in self.super_options:
            if opt.startswith(name + "="):
                return opt.split("=", 1)[1]
        return None


def unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def read(path: Path = Path("/proc/self/mountinfo")) -> list[Mount]:
    """All mounts listed in a mountinfo file."""
    return [Mount.parse(line) for line in path.read_text().splitlines()]
