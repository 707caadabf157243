"""Operations on a live container: update, pause/resume, events and ps, as runc has them.

Each works on the cgroups that create recorded in state.json (never re-resolving
`cgroupsPath`), so it acts on exactly the directories the container was put in.
"""

from __future__ import annotations


from ociish.container import Container
from ociish.errors import OciishError, WrongState
from ociish.state.store import StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LIVE = ("created", "running", "paused")


def live_container(store: StateStore, container_id: str, action: str, allowed: tuple[str, ...] = LIVE,
                   wanted: str = "running") -> tuple[Container, Any]:
    """The container and its CgroupManager, if its status is one of `allowed`.

    Otherwise WrongState, worded like runc's "container not running":
    ``cannot pause container 'x': it is stopped, not running``.
    """
    container = Container.load(store, container_id)
    status = container.status()
    if status not in allowed:
        raise WrongState(f"cannot {action} container {container_id!r}: it is {status}, not {wanted}")
    return container, cgroup_of(container, action)


def cgroup_of(container: Container, action: str) -> Any:
    """The container's CgroupManager; a rootless container on cgroup v1 has none."""
    cgroup = container.cgroup()
    if cgroup is None:
        raise OciishError(f"cannot {action} container {container.id!r}: it has no cgroup of its own "
                          "(a rootless container on cgroup v1 stays in its creator's)")
    return cgroup
