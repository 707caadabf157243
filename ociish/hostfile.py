"""Files the runtime writes, as root, at paths a client names (``--pid-file``, ``--log``).

Such a path may lie in a directory the container or its image can write (a bundle
directory, a shared volume), so a symlink planted there must never redirect the write:
the final component is never followed, and the pid file is written to a temporary file
with an unguessable name, created exclusively beside it, then renamed over it (a rename
replaces a symlink itself, it never writes through one).
"""

from __future__ import annotations

import os
import stat

from ociish.errors import OciishError


def refuse_symlink(path: str, option: str) -> None:
    """Refuse ``path`` up front if it is a symlink (or names something not a file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise OciishError(f"{option} {path}: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise OciishError(f"{option} {path}: is a symlink; name the file itself")
    if stat.S_ISDIR(st.st_mode):
        raise OciishError(f"{option} {path}: is a directory")


def replace(path: str, data: bytes, option: str) -> None:
    """Atomically put ``data`` at ``path`` without following any symlink at its end."""
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    refuse_symlink(path, option)
    tmp = f".{name}.{os.urandom(8).hex()}.tmp"
    try:
        dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise OciishError(f"{option} {path}: cannot open its directory: {e.strerror}") from None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
    except OSError as e:
        raise OciishError(f"{option} {path}: cannot write it: {e.strerror}") from None
    finally:
        os.close(dir_fd)


def open_append(path: str) -> int:
    """A write-only, appending fd of ``path`` (created 0644 if missing), never through a
    symlink: a symlink at ``path`` fails with ELOOP."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
