"""`update`: change the resource limits of a live container.

The change comes from runc's flags (`--memory 512m --pids-limit 100`) or from a
LinuxResources JSON (`--resources FILE`, `-` for stdin: podman passes a file, containerd
stdin).  It is laid over the container's current resources, which state.json keeps
under `resources` once an update succeeded (before that, config.json's), and the merged
whole is applied, as runc does, so that interdependent files (memory and memory+swap,
cpu quota and period) are written against their final values.  If the kernel refuses
any of it, the previous resources are applied again and nothing is recorded.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import orjson

from ociish import log
from ociish.errors import OciishError
from ociish.ops.container import live_container
from ociish.state.store import StateStore, check_id
from ociish.units import parse_size

def parse_bytes(text: str, flag: str) -> int:
    """A byte count as runc reads it: `1048576`, `512m`, `1.5GiB` (binary units), or -1 for unlimited."""
    if text.strip() == "-1":
        return -1
    try:
        return parse_size(text)
    except ValueError:
        raise OciishError(f"update: invalid value for {flag}: {text!r} (bytes, a size such as 512m or 1.5g, or -1)") from None


def _integer(minimum: int | None) -> Callable[[str, str], int]:
    def parse(text: str, flag: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise OciishError(f"update: invalid value for {flag}: {text!r} (an integer)") from None
        if minimum is not None and value < minimum:
            raise OciishError(f"update: invalid value for {flag}: {value} (must be >= {minimum})")
        return value

    return parse


def _text(text: str, flag: str) -> str:
    return text


# argparse dest of each runc flag → (linux.resources section, key, parser).
FLAG_FIELDS: dict[str, tuple[str, str, Callable[[str, str], Any]]] = {
    "memory": ("memory", "limit", parse_bytes),
    "memory_reservation": ("memory", "reservation", parse_bytes),
    "memory_swap": ("memory", "swap", parse_bytes),
    "kernel_memory": ("memory", "kernel", parse_bytes),
    "kernel_memory_tcp": ("memory", "kernelTCP", parse_bytes),
    "cpu_shares": ("cpu", "shares", _integer(0)),
    "cpu_quota": ("cpu", "quota", _integer(None)),
    "cpu_period": ("cpu", "period", _integer(0)),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", _integer(None)),
    "cpu_rt_period": ("cpu", "realtimePeriod", _integer(0)),
    "cpuset_cpus": ("cpu", "cpus", _text),
    "cpuset_mems": ("cpu", "mems", _text),
    "pids_limit": ("pids", "limit", _integer(None)),
    "blkio_weight": ("blockIO", "weight", _integer(0)),
}
_RDT_FLAGS = ("l3_cache_schema", "mem_bw_schema")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def read_resources(source: str) -> dict[str, Any]:
    """A LinuxResources object from a file, or from stdin for `-`."""
    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as f:
                data = f.read()
    except OSError as e:
        raise OciishError(f"update: cannot read {name}: {e.strerror}") from None
    try:
        resources = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise OciishError(f"update: {name}: not valid JSON: {e}") from None
    if not isinstance(resources, dict):
        raise OciishError(f"update: {name}: expected a JSON object (LinuxResources), got {type(resources).__name__}")
    return resources


def resources_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The requested change: the --resources document, or the flags as a LinuxResources object."""
    given = {dest: getattr(args, dest) for dest in (*FLAG_FIELDS, *_RDT_FLAGS) if getattr(args, dest) is not None}
    if args.resources is not None:
        if given:
            flags = ", ".join(_flag(dest) for dest in given)
            raise OciishError(f"update: give either --resources or flags, not both ({flags})")
        return read_resources(args.resources)
    change: dict[str, Any] = {}
    for dest, text in given.items():
        if dest in _RDT_FLAGS:
            continue  # not linux.resources: rdt_lines_from_args
        section, key, parse = FLAG_FIELDS[dest]
        change.setdefault(section, {})[key] = parse(text, _flag(dest))
    return change


def rdt_lines_from_args(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(flag, schemata line) of --l3-cache-schema and --mem-bw-schema, in that order (config-linux.md's)."""
    return [(_flag(dest), getattr(args, dest)) for dest in _RDT_FLAGS if getattr(args, dest) is not None]


def merge(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`change` laid over `current`: objects merge key by key; numbers, strings and arrays
    replace; null leaves the current value (the meaning of an absent Go pointer)."""
    merged = dict(current)
    for key, value in change.items():
        if value is None:
            continue
        old = merged.get(key)
        merged[key] = merge(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return merged


def unlimited_memory_lifts_swap(merged: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A memory limit changed to -1 (unlimited) lifts memory+swap too unless the change sets
    it, as runc does: a finite swap kept from before would be below the memory limit, and
    the kernel refuses that."""
    changed = change.get("memory") or {}
    memory = merged.get("memory") or {}
    if changed.get("limit") == -1 and changed.get("swap") is None and memory.get("swap") not in (None, -1):
        return {**merged, "memory": {**memory, "swap": -1}}
    return merged


def _to_apply(resources: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """What to write: everything but unchanged device rules.

    v1 device rules edit the cgroup's current list, starting from the config's own reset
    (usually deny-all); rewriting an unchanged list would, for a moment, deny the
    container devices it already has.
    """
    if "devices" in change:
        return resources
    return {key: value for key, value in resources.items() if key != "devices"}


def current_resources(store: StateStore, container_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """The resources last applied: the record's after an update, else config.json's."""
    if isinstance(record.get("resources"), dict):
        return record["resources"]
    try:
        config = store.load_config(container_id)
    except (OSError, ValueError) as e:
        raise OciishError(f"container {container_id!r}: cannot read its config.json: {e}") from None
    return (config.get("linux") or {}).get("resources") or {}


def update(store: StateStore, container_id: str, change: dict[str, Any],
           rdt_lines: list[tuple[str, str]] | None = None) -> None:
    """Apply `change` (and the Intel RDT schemata lines) to a created, running or paused
    container and record the result."""
    with store.lock(check_id(container_id)):
        container, cgroup = live_container(store, container_id, "update")
        rdt = None
        if rdt_lines:
            if not container.record.get("intel_rdt"):
                raise OciishError(f"update {rdt_lines[0][0]}: container {container_id!r} has no linux.intelRdt "
                                  "(no resctrl group to write to)")
            from ociish.resctrl import IntelRdt

            rdt = IntelRdt.from_record(container.record["intel_rdt"])
        current = current_resources(store, container_id, container.record)
        merged = unlimited_memory_lifts_swap(merge(current, change), change)
        try:
            cgroup.apply(_to_apply(merged, change))
            if rdt is not None and rdt_lines:
                rdt.update(rdt_lines)
        except OciishError:
            try:
                cgroup.apply(_to_apply(current, change))
            except OciishError as e:
                log.warning(f"update: restoring the previous resources failed, the cgroup may hold part "
                            f"of the update: {e.message}")
            raise
        container.record["resources"] = merged
        store.write(container_id, container.record)
