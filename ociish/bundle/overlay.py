"""A bundle whose rootfs shares one read-only base: an overlay per top-level directory.

Why per directory: the runtime makes config.json's mounts inside the rootfs it already
holds open, so an overlay mounted over the rootfs root itself ("/") would sit on top of a
directory the runtime keeps using underneath, and the container would never see it (see
docs/rootfs.md for the runtime change that would allow it).  Overlaying each non-empty
top-level directory of the base gives the container the same tree with mounts the runtime
already makes, inside the container's own mount namespace: nothing is mounted on the
host, so nothing is left behind when the container is deleted.

On disk, ``rootfs/`` holds only the base's top level (symlinks such as ``bin -> usr/bin``,
empty directories, the mount points), and ``overlay/upper/NAME`` and
``overlay/work/NAME`` each overlay's writable layer and scratch space.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ociish.bundle.config import ConfigBuilder
from ociish.errors import OciishError

UPPER = "overlay/upper"
WORK = "overlay/work"
# Keep each upper layer made of plain files and whiteouts (what `bundle export` turns
# into an image layer), and never trust redirect xattrs found in a base.
OVERLAY_OPTIONS = ("redirect_dir=nofollow", "metacopy=off")
_UNSAFE_IN_OPTIONS = (",", ":", "\\")  # mount data separators and overlay's layer separator


def add_overlay(builder: ConfigBuilder, bundle: Path, base: Path, *, readonly: bool) -> None:
    """Make ``bundle/rootfs`` the base's top level and put one overlay mount per non-empty
    top-level directory first in the builder's mounts (submounts such as /dev/pts go on
    top).  A directory the config already mounts something on (/dev, /proc) gets no
    overlay: the container would never see it."""
    _check_paths(bundle, base)
    skeleton = bundle / "rootfs"
    skeleton.mkdir()
    covered = {m.get("destination") for m in builder.peek().get("mounts", [])}
    base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        overlaid = [name for name in sorted(os.listdir(base_fd))
                    if _copy_top_entry(base_fd, name, bundle, overlay=f"/{name}" not in covered)]
        _copy_attrs(os.fstat(base_fd), str(skeleton))
    finally:
        os.close(base_fd)
    for name in reversed(overlaid):
        options = [f"lowerdir={base}/{name}", f"upperdir={bundle / UPPER / name}", f"workdir={bundle / WORK / name}",
                   *OVERLAY_OPTIONS, *(["ro"] if readonly else [])]
        builder.mount(f"/{name}", "overlay", "overlay", options, first=True)
    builder.root("rootfs")


def overlay_dirs(bundle: Path) -> list[str]:
    """The top-level directories an overlay bundle overlays (one upper layer each)."""
    upper = bundle / UPPER
    return sorted(os.listdir(upper)) if upper.is_dir() else []


def _check_paths(bundle: Path, base: Path) -> None:
    for path, what in ((base, "--base"), (bundle, "the bundle path")):
        if any(c in str(path) for c in _UNSAFE_IN_OPTIONS):
            raise OciishError(f"{what}: {path}: an overlay cannot use a path containing , : or \\")
    if bundle.is_relative_to(base) or base.is_relative_to(bundle):
        raise OciishError(f"--base: {base}: the bundle {bundle} and its base must not contain each other")


def _copy_top_entry(base_fd: int, name: str, bundle: Path, *, overlay: bool) -> bool:
    """Recreate one top-level entry of the base in the skeleton; True if it gets an overlay."""
    if any(c in name for c in _UNSAFE_IN_OPTIONS):
        raise OciishError(f"--base: top-level entry {name!r}: an overlay cannot use a name containing , : or \\")
    st = os.lstat(name, dir_fd=base_fd)
    target = str(bundle / "rootfs" / name)
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=base_fd)
        try:
            overlay = overlay and bool(os.listdir(fd))
        finally:
            os.close(fd)
        os.mkdir(target)
        _copy_attrs(st, target)
        if overlay:
            for layer in (UPPER, WORK):
                directory = bundle / layer / name
                directory.mkdir(parents=True)
                if layer == UPPER:  # the overlay's root directory takes the upper one's owner and mode
                    _copy_attrs(st, str(directory))
        return overlay
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=base_fd), target)
    elif stat.S_ISREG(st.st_mode):
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=base_fd)
        try:
            dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                while os.sendfile(dst, src, None, 1 << 20):
                    pass
            finally:
                os.close(dst)
        finally:
            os.close(src)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        os.mknod(target, st.st_mode, st.st_rdev)
    else:
        return False  # a socket: meaningless in a copy
    _copy_attrs(st, target)
    return False


def _copy_attrs(st: os.stat_result, path: str) -> None:
    """Owner, then mode (chown clears set-id bits), then times, without following a symlink."""
    os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
