"""`state` and `list`: the state of one container, and of every container under the root,
as runc prints them."""

from __future__ import annotations

from ociish.errors import DamagedState, OciishError
from ociish.ops.container import Container
from ociish.state.document import state_document
from ociish.state.store import StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def runc_state(state: dict[str, Any], owner: str) -> dict[str, Any]:
    """The state as runc prints it: its members in runc's order, annotations only when there
    are any, and the owner (which runc's `state` leaves empty and its `list` fills)."""
    shown = {key: state[key] for key in ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created")}
    if state["annotations"]:
        shown["annotations"] = dict(sorted(state["annotations"].items()))
    shown["owner"] = owner
    return shown


def state(store: StateStore, container_id: str) -> str:
    """What `state ID` prints: no newline after it, as runc's."""
    from ociish.jsonio import dumps_go

    return dumps_go(runc_state(Container.load(store, container_id).state(), owner=""), indent="  ")


def list_containers(store: StateStore, format: str, quiet: bool) -> str:
    """What `list` prints: ids only (quiet), a JSON array, or runc's table."""
    states = []
    for container_id in store.ids():
        try:
            states.append(Container.load(store, container_id).state())
        except DamagedState:  # `state ID` says what is wrong; `delete --force ID` removes it
            states.append({**state_document(container_id, "damaged", 0, "", {}), "rootfs": "", "created": "",
                           "owner": ""})
        except OciishError:
            continue  # vanished, or being made, while we listed
    if quiet:
        return "".join(s["id"] + "\n" for s in states)
    if format == "json":
        from ociish.jsonio import dumps_go

        return dumps_go([runc_state(s, s["owner"]) for s in states] if states else None) + "\n"
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states]
    # runc's tabwriter: columns at least 12 wide, 3 spaces after the longest cell
    widths = [max(12, 3 + max(len(row[i]) for row in rows)) for i in range(len(rows[0]) - 1)] + [0]
    return "".join("".join(cell.ljust(w) for cell, w in zip(row, widths)) + "\n" for row in rows)
