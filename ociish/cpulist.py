"""The kernel's list format for cpus and memory nodes ("0-3,7"), parsed once for the planner and the cgroup drivers."""

from __future__ import annotations

from ociish.errors import ConfigError


def parse_cpu_list(text: str, where: str) -> list[int]:
    """ "0-3,7" → [0, 1, 2, 3, 7] (the kernel's cpu list format)."""
    cpus: list[int] = []
    try:
        for part in filter(None, text.split(",")):
            first, _, last = part.partition("-")
            cpus.extend(range(int(first), int(last or first) + 1))
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a cpu list like 0-3,7") from None
    return cpus
