"""The state of a container as runtime.md "State" defines it: what every hook reads on its
stdin, what a seccomp listener is sent, and (with runc's rootfs, created and owner) what
`state` and `list` print and state.json records."""

from __future__ import annotations

from ociish import OCI_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypedDict

    class StateDocument(TypedDict):
        ociVersion: str
        id: str
        status: str
        pid: int
        bundle: str
        annotations: dict[str, str]


def state_document(container_id: str, status: str, pid: int, bundle: str, annotations: dict[str, str],
                   oci_version: str = OCI_VERSION) -> StateDocument:
    """The spec's members; pid 0 once the container is stopped, the init's pid while it lives."""
    return {"ociVersion": oci_version, "id": container_id, "status": status, "pid": 0 if status == "stopped" else pid,
            "bundle": bundle, "annotations": annotations}
