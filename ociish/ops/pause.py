"""`pause` / `resume`: freeze and thaw every process of the container (the cgroup freezer).

`state` then reads `paused` from the freezer itself; nothing is recorded, so a container
frozen or thawed behind our back still shows its true status.
"""

from __future__ import annotations

from ociish.ops.container import live_container
from ociish.state.store import StateStore, check_id


def pause(store: StateStore, container_id: str) -> None:
    """Freeze a running (or created) container, as runc allows both."""
    with store.lock(check_id(container_id)):
        _, cgroup = live_container(store, container_id, "pause", ("created", "running"))
        cgroup.freeze()


def resume(store: StateStore, container_id: str) -> None:
    """Thaw a paused container; it goes back to running (or created, if it was never started)."""
    with store.lock(check_id(container_id)):
        _, cgroup = live_container(store, container_id, "resume", ("paused",), "paused")
        cgroup.thaw()
