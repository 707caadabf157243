"""`ps`: the processes of a container, by host pid, from its cgroup.

`--format json` prints the pids as a JSON array (`null` when there are none, as runc
prints a Go nil slice) and nothing on stderr: containerd parses the combined output.
`--format table` runs the host's `ps` (default `-ef`, or the arguments given after the
id) and keeps the header and the rows whose PID column is one of the container's.
"""

from __future__ import annotations

import subprocess

import orjson

from ociish.errors import OciishError
from ociish.ops.container import Container, cgroup_of
from ociish.state.store import StateStore

DEFAULT_PS_ARGS = ("-ef",)


def container_pids(store: StateStore, container_id: str) -> list[int]:
    """Every pid in the container's cgroup (sub-cgroups included); none once it is gone."""
    return cgroup_of(Container.load(store, container_id), "list the processes of").pids()


def as_json(pids: list[int]) -> str:
    return (orjson.dumps(pids).decode() if pids else "null") + "\n"


def as_table(pids: list[int], ps_args: list[str]) -> str:
    """The host `ps` output cut down to the container's rows."""
    argv = ["ps", *(ps_args or DEFAULT_PS_ARGS)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise OciishError("ps: the host has no ps command (install procps)") from None
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[0]
        raise OciishError(f"ps: {' '.join(argv)}: {reason}")
    lines = result.stdout.splitlines()
    header = lines[0] if lines else ""
    try:
        column = header.split().index("PID")
    except ValueError:
        raise OciishError(f"ps: {' '.join(argv)} printed no PID column (add -o pid)") from None
    wanted = {str(pid) for pid in pids}
    rows = [line for line in lines[1:] if _field(line, column) in wanted]
    return "".join(line + "\n" for line in [header, *rows])


def _field(line: str, column: int) -> str | None:
    fields = line.split()
    return fields[column] if column < len(fields) else None


def ps(store: StateStore, container_id: str, fmt: str, ps_args: list[str]) -> str:
    """What `ociish ps` prints."""
    if fmt == "json" and ps_args:
        raise OciishError("ps: ps arguments only apply to --format table")
    pids = container_pids(store, container_id)
    return as_json(pids) if fmt == "json" else as_table(pids, ps_args)
