"""Idmapped bind mounts (mounts[].uidMappings/gidMappings, the idmap and ridmap options).

Run by `create` as the host's root, in the host's user namespace: the kernel lets only
a holder of CAP_SYS_ADMIN over the filesystem's own user namespace (the host's, for a
host directory) put an idmapping on a mount, so a container init in a user namespace of
its own could never do it.  A detached copy of the source (open_tree OPEN_TREE_CLONE) is
given the mapping of a user namespace made only to carry it (mount_setattr
MOUNT_ATTR_IDMAP); the init then attaches that copy with move_mount.

A mapping reads as in a user namespace: a file the filesystem has as owned by
``containerID + n`` shows through the mount as owned by host id ``hostID + n``, and a
file a process with host id ``hostID + n`` creates there is stored as ``containerID + n``.
"""

from __future__ import annotations

import errno
import os

from ociish.errors import ConfigError
from ociish.linux import libc as L

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ociish.process.plantypes import IdMap


def mapping_userns(uid_mappings: list[dict[str, int]], gid_mappings: list[dict[str, int]]) -> int:
    """An fd of a new user namespace with these mappings, owned by nothing that runs.

    A child unshares the namespace and waits; we write its maps, keep the namespace by
    an fd of /proc/CHILD/ns/user and let the child go (the fd keeps the namespace)."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 1
        try:
            os.close(ready_r)
            os.close(hold_w)
            L.unshare(L.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)  # EOF once the parent holds the namespace
            status = 0
        finally:
            os._exit(status)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(errno.EPERM, "cannot create a user namespace for the mapping")
        for kind, mappings in (("uid", uid_mappings), ("gid", gid_mappings)):
            with open(f"/proc/{pid}/{kind}_map", "w") as f:
                f.write("".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)


def idmapped_tree(source: str, idmap: IdMap, where: str) -> int:
    """A detached, idmapped copy of the mount tree at ``source``, as an fd for move_mount.

    ``idmap`` is the plan's {"uid", "gid" (mappings), "rbind" (copy the submounts too),
    "recursive" (map them too: ridmap)}.  What the filesystem or kernel refuses is
    reported naming the mount."""
    flags = L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | (L.AT_RECURSIVE if idmap["rbind"] else 0)
    try:
        tree = L.open_tree(-100, source, flags)  # AT_FDCWD
    except OSError as e:
        raise ConfigError(f"config.json: {where}.source: {source!r}: {e.strerror}") from None
    try:
        userns = mapping_userns(idmap["uid"], idmap["gid"])
    except OSError as e:
        os.close(tree)
        raise ConfigError(f"config.json: {where}.uidMappings: the kernel refused the mapping: {e.strerror}") from None
    try:
        L.mount_setattr(tree, L.MOUNT_ATTR_IDMAP, 0, recursive=idmap["recursive"], userns_fd=userns)
    except OSError as e:
        os.close(tree)
        reasons: dict[int | None, str] = {
            errno.EINVAL: "the filesystem does not support idmapped mounts",
            errno.ENOSYS: "the kernel has no idmapped mounts (Linux 5.12 or later needed)",
            errno.EPERM: "not permitted (idmapped mounts need the host's root)"}
        reason = reasons.get(e.errno, e.strerror)
        raise ConfigError(f"config.json: {where}: cannot idmap {source!r}: {reason}") from None
    finally:
        os.close(userns)
    return tree
