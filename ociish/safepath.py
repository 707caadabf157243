"""Open, create and mount paths inside the container's root without ever leaving it.

Every lookup goes through openat2(RESOLVE_IN_ROOT): ``..`` and symlinks (absolute or
relative) are resolved as if the rootfs were ``/``, so a symlink planted in the image, or
swapped in during setup, cannot point a mount or a mknod at the host.  Callers then act
on the returned fd (``/proc/self/fd/N``), never on the path string again.
"""

from __future__ import annotations

import errno
import os
import stat

from ociish.linux import libc as L
from ociish.linux import syscalls as S

IN_ROOT = L.RESOLVE_IN_ROOT | L.RESOLVE_NO_MAGICLINKS


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def clean(path: str) -> str:
    """A container path as a normalised absolute path (``..`` cannot climb above ``/``)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH, *, follow: bool = True, mode: int = 0) -> int:
    """fd of ``path`` resolved inside ``root_fd``; with follow=False a final symlink is refused."""
    if not follow:
        flags |= os.O_NOFOLLOW
    return S.openat2(root_fd, clean(path), flags, IN_ROOT, mode)


MAX_SYMLINKS = 40  # as the kernel's own lookup limit


def mkdir_all(root_fd: int, path: str, mode: int = 0o755, _links: int = 0) -> int:
    """Create ``path`` and its missing parents inside the root; O_PATH fd of the directory.

    A dangling symlink on the way (images ship e.g. ``/var/run -> /run`` before /run
    exists) gets its target created, inside the root, as runc does.
    """
    parts = [p for p in clean(path).split("/") if p]
    current = os.dup(root_fd)
    done: list[str] = []
    try:
        for part in parts:
            done.append(part)
            prefix = "/".join(done)
            try:
                nxt = S.openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, IN_ROOT)
            except FileNotFoundError:
                try:
                    os.mkdir(part, mode, dir_fd=current)
                except FileExistsError:
                    _create_link_target(root_fd, current, done, _links, directory=True)
                nxt = S.openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, IN_ROOT)
            os.close(current)
            current = nxt
        return current
    except BaseException:
        os.close(current)
        raise


def _create_link_target(root_fd: int, parent_fd: int, done: list[str], links: int, *, directory: bool) -> None:
    """``done[-1]`` exists in ``parent_fd`` but does not resolve: if it is a dangling
    symlink, create what it points to (resolved inside the root)."""
    try:
        target = os.readlink(done[-1], dir_fd=parent_fd)
    except OSError:
        return  # not a symlink (created concurrently): the caller's reopen decides
    if links >= MAX_SYMLINKS:
        raise OSError(errno.ELOOP, "too many levels of symbolic links", "/" + "/".join(done))
    resolved = target if target.startswith("/") else "/".join(["", *done[:-1], target])
    if directory:
        os.close(mkdir_all(root_fd, resolved, _links=links + 1))
    else:
        os.close(ensure_file(root_fd, resolved, _links=links + 1))


def ensure_file(root_fd: int, path: str, mode: int = 0o644, _links: int = 0) -> int:
    """O_PATH fd of a non-directory at ``path`` inside the root, creating an empty file if missing."""
    cleaned = clean(path)
    parent, name = cleaned.rsplit("/", 1)
    if not name:
        raise OSError(errno.EISDIR, "cannot use / as a file mount point", path)
    try:
        return open_in_root(root_fd, cleaned)
    except FileNotFoundError:
        pass
    parent_fd = mkdir_all(root_fd, parent or "/")
    try:
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent_fd))
        except FileExistsError:
            _create_link_target(root_fd, parent_fd, [p for p in cleaned.split("/") if p], _links, directory=False)
    finally:
        os.close(parent_fd)
    return open_in_root(root_fd, cleaned)


def is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)
