"""config.json mount options → mount(2) flags, propagation, recursive attributes, data.

Pure: runs in `create` (stage 0) while the plan is built, so a bad option is reported
before any process exists.  The result is plain data the container init applies.
"""

from __future__ import annotations

from ociish.linux import libc as L

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    from ociish.process.plantypes import MountOptions

MS_I_VERSION = 1 << 23

# option → (flags to set, flags to clear)
_FLAGS: dict[str, tuple[int, int]] = {
    "async": (0, L.MS_SYNCHRONOUS),
    "atime": (0, L.MS_NOATIME),
    "defaults": (0, 0),
    "dev": (0, L.MS_NODEV),
    "diratime": (0, L.MS_NODIRATIME),
    "dirsync": (L.MS_DIRSYNC, 0),
    "exec": (0, L.MS_NOEXEC),
    "iversion": (MS_I_VERSION, 0),
    "lazytime": (L.MS_LAZYTIME, 0),
    "loud": (0, L.MS_SILENT),
    "mand": (L.MS_MANDLOCK, 0),
    "noatime": (L.MS_NOATIME, 0),
    "nodev": (L.MS_NODEV, 0),
    "nodiratime": (L.MS_NODIRATIME, 0),
    "noexec": (L.MS_NOEXEC, 0),
    "noiversion": (0, MS_I_VERSION),
    "nolazytime": (0, L.MS_LAZYTIME),
    "nomand": (0, L.MS_MANDLOCK),
    "norelatime": (0, L.MS_RELATIME),
    "nostrictatime": (0, L.MS_STRICTATIME),
    "nosuid": (L.MS_NOSUID, 0),
    "nosymfollow": (L.MS_NOSYMFOLLOW, 0),
    "relatime": (L.MS_RELATIME, 0),
    "remount": (L.MS_REMOUNT, 0),
    "ro": (L.MS_RDONLY, 0),
    "rw": (0, L.MS_RDONLY),
    "silent": (L.MS_SILENT, 0),
    "strictatime": (L.MS_STRICTATIME, 0),
    "suid": (0, L.MS_NOSUID),
    "symfollow": (0, L.MS_NOSYMFOLLOW),
    "sync": (L.MS_SYNCHRONOUS, 0),
}

_PROPAGATION: dict[str, int] = {
    "private": L.MS_PRIVATE,
    "rprivate": L.MS_PRIVATE | L.MS_REC,
    "shared": L.MS_SHARED,
    "rshared": L.MS_SHARED | L.MS_REC,
    "slave": L.MS_SLAVE,
    "rslave": L.MS_SLAVE | L.MS_REC,
    "unbindable": L.MS_UNBINDABLE,
    "runbindable": L.MS_UNBINDABLE | L.MS_REC,
}

# recursive option → (mount_setattr attr_set, attr_clr); atime options replace the atime field
_ATIME = L.MOUNT_ATTR__ATIME
_RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (L.MOUNT_ATTR_RDONLY, 0),
    "rrw": (0, L.MOUNT_ATTR_RDONLY),
    "rnosuid": (L.MOUNT_ATTR_NOSUID, 0),
    "rsuid": (0, L.MOUNT_ATTR_NOSUID),
    "rnodev": (L.MOUNT_ATTR_NODEV, 0),
    "rdev": (0, L.MOUNT_ATTR_NODEV),
    "rnoexec": (L.MOUNT_ATTR_NOEXEC, 0),
    "rexec": (0, L.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (L.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, L.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (L.MOUNT_ATTR_RELATIME, _ATIME),
    "rnorelatime": (L.MOUNT_ATTR_STRICTATIME, _ATIME),
    "rnoatime": (L.MOUNT_ATTR_NOATIME, _ATIME),
    "ratime": (L.MOUNT_ATTR_RELATIME, _ATIME),  # leaving noatime falls back to the kernel default
    "rstrictatime": (L.MOUNT_ATTR_STRICTATIME, _ATIME),
    "rnostrictatime": (L.MOUNT_ATTR_RELATIME, _ATIME),
    "rnosymfollow": (L.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, L.MOUNT_ATTR_NOSYMFOLLOW),
}
MOUNT_OPTIONS = sorted(set(_FLAGS) | set(_PROPAGATION) | set(_RECURSIVE) | {"bind", "rbind", "tmpcopyup", "idmap", "ridmap"})


def parse_options(options: list[str]) -> MountOptions:
    """Split a mount's options into what each step of the mount needs.

    Returns ``{"bind", "rec", "copy_up", "idmap", "flags", "clear", "propagation":
    [flags...], "attr_set", "attr_clr", "data"}``; ``idmap`` is None, "idmap" or "ridmap"
    (recursive); unknown options become filesystem data, as the spec asks.
    """
    flags = clear = attr_set = attr_clr = 0
    bind = rec = copy_up = False
    idmap: Literal["idmap", "ridmap"] | None = None
    propagation: list[int] = []
    data: list[str] = []
    for option in options:
        if option in ("bind", "rbind"):
            bind = True
            rec = rec or option == "rbind"
        elif option in _FLAGS:
            set_bits, clear_bits = _FLAGS[option]
            flags = (flags & ~clear_bits) | set_bits
            clear = (clear & ~set_bits) | clear_bits
        elif option in _PROPAGATION:
            propagation.append(_PROPAGATION[option])
        elif option in _RECURSIVE:
            set_bits, clear_bits = _RECURSIVE[option]
            attr_set = (attr_set & ~clear_bits) | set_bits
            attr_clr = (attr_clr & ~set_bits) | clear_bits
        elif option in ("idmap", "ridmap"):
            idmap = "ridmap" if "ridmap" in (idmap, option) else "idmap"
        elif option == "tmpcopyup":
            copy_up = True
        else:
            data.append(option)
    return {
        "bind": bind,
        "rec": rec,
        "copy_up": copy_up,
        "idmap": idmap,
        "flags": flags,
        "clear": clear,
        "propagation": propagation,
        "attr_set": attr_set,
        "attr_clr": attr_clr,
        "data": ",".join(data),
    }
