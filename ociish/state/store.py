"""The state root: one directory per container, written atomically, guarded by a lock.

Layout (runc's permissions)::

    <root>/                 0700
    <root>/<id>.lock        flock target serialising mutating commands on <id>
    <root>/<id>/            0711
    <root>/<id>/state.json  the record (written to a temp file, then renamed)
    <root>/<id>/config.json the validated config as create read it
    <root>/<id>/exec.fifo   present while the container is "created"

The lock is a regular file beside the directory, never the directory itself, so no
directory fd of the state root has to exist while a container process is being set up.

The record is a few hundred bytes read by every `state`, `kill` and `start`: it goes
through the json package's C scanner, with nothing else imported (see ociish.jsonio).
"""

from __future__ import annotations

import fcntl
import os
import time


from ociish import jsonio
from ociish.errors import ContainerNotFound, OciishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator

DEFAULT_ROOT = "/run/ociish"
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
FIFO_NAME = "exec.fifo"
LOCK_TIMEOUT = 60.0

# runc's ^[\w+-\.]+$ with Go's ASCII-only \w; a set, not a regex: `state` does not import re
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-.")


def check_id(container_id: str) -> str:
    """Refuse IDs that could escape the state root or confuse the clients."""
    if not container_id:
        raise OciishError("container id cannot be empty")
    if container_id in (".", "..") or not _ID_CHARS.issuperset(container_id) or len(container_id) > 1024:
        raise OciishError(f"invalid container id {container_id!r}: use letters, digits, '_', '+', '-' and '.'")
    return container_id


_PID_MAX = 1 << 22  # PID_MAX_LIMIT
_STR_LIST = "list of strings"
# The fields later commands read from a record and the shapes they rely on (when present):
# a record that breaks them is reported as corrupt, never met as a KeyError deep in a command.
_RECORD_SHAPE: dict[str, Any] = {
    "ociVersion": str, "status": str, "pid": "pid", "bundle": str, "rootfs": str, "created": str, "owner": str,
    "annotations": dict, "init_start": int, "pid_namespace_new": bool, "hooks": dict,
    "creator": {"pid": "pid", "start": int},
    "cgroup": {"version": int, "mode": str, "driver": str, "cgroup": str, "paths": dict, "created": _STR_LIST},
}
_NULLABLE = frozenset({"init_start", "start", "cgroup"})


def _fits(value: Any, shape: Any) -> bool:
    if shape == "pid":
        return type(value) is int and 0 <= value <= _PID_MAX
    if shape == _STR_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if isinstance(shape, dict):
        return isinstance(value, dict) and all(
            k not in value or (value[k] is None and k in _NULLABLE) or _fits(value[k], s) for k, s in shape.items())
    return isinstance(value, shape) and not (isinstance(value, bool) and shape is int)


def _well_formed(record: Any, container_id: str) -> bool:
    if not isinstance(record, dict) or record.get("id") != container_id or not _fits(record, _RECORD_SHAPE):
        return False
    if record.get("cgroup") is not None:
        paths = record["cgroup"].get("paths")
        if not isinstance(paths, dict) or not all(isinstance(v, str) for v in paths.values()):
            return False
    hooks = record.get("hooks") or {}
    return all(isinstance(entries, list) and all(isinstance(h, dict) and isinstance(h.get("path"), str)
                                                 for h in entries) for entries in hooks.values())


class ContainerLock:
    """An exclusive flock on ``<root>/<id>.lock``, held for the life of a mutating command.

    A lock file never outlives its container: released while the container has no
    directory (a command on an unknown id, a create that failed before making it), the
    file is unlinked first, still under the lock, as delete does (waiters re-check).
    """

    def __init__(self, path: str, fd: int, directory: str) -> None:
        self.path = path
        self._fd = fd
        self._directory = directory

    def release(self) -> None:
        if self._fd >= 0:
            if not os.path.isdir(self._directory):
                try:
                    mine = os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
                    if mine:
                        os.unlink(self.path)
                except FileNotFoundError:
                    pass
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "ContainerLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StateStore:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)

    def dir(self, container_id: str) -> str:
        return os.path.join(self.root, check_id(container_id))  # an id never names a path outside the root

    def path(self, container_id: str, name: str) -> str:
        return os.path.join(self.dir(container_id), name)

    def lock_path(self, container_id: str) -> str:
        return self.dir(container_id) + ".lock"

    def ensure_root(self) -> None:
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except OSError as e:
            raise OciishError(f"cannot create state root {self.root}: {e.strerror}") from None

    def lock(self, container_id: str, timeout: float = LOCK_TIMEOUT) -> ContainerLock:
        """Take the container's lock, waiting up to ``timeout`` seconds for another command."""
        path = self.lock_path(container_id)
        self.ensure_root()
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise OciishError(f"container {container_id!r} is busy: another ociish command holds its lock")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            # delete unlinks the lock file last: if ours was unlinked while we waited, take the new one.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return ContainerLock(path, fd, self.dir(container_id))
            os.close(fd)

    def remove_lock(self, container_id: str) -> None:
        try:
            os.unlink(self.lock_path(container_id))
        except FileNotFoundError:
            pass

    def remove_stale_lock(self, container_id: str) -> None:
        """Unlink the lock file of a container without a directory (a create killed before
        it made one), unless a command holds it right now."""
        try:
            fd = os.open(self.lock_path(container_id), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return
        ContainerLock(self.lock_path(container_id), fd, self.dir(container_id)).release()

    def exists(self, container_id: str) -> bool:
        return os.path.isdir(self.dir(container_id))

    def make_dir(self, container_id: str) -> None:
        """Create the container's directory; fails if the ID is taken."""
        self.ensure_root()
        try:
            os.mkdir(self.dir(container_id), 0o711)
        except FileExistsError:
            raise OciishError(f"container {container_id!r} already exists") from None
        os.chmod(self.dir(container_id), 0o711)  # not subject to umask

    def write(self, container_id: str, record: dict[str, Any]) -> None:
        self.write_file(container_id, STATE_FILE, jsonio.dumps(record))

    def write_file(self, container_id: str, name: str, data: bytes) -> None:
        """Write ``name`` in the container dir atomically: temp file, then rename, so a reader
        or a killed writer never sees half a file.  No fsync: the state describes processes,
        which a power loss ends too (runc does not sync its state either), and on a /run that
        is not a tmpfs it cost every create ~5 ms."""
        final = self.path(container_id, name)
        tmp = f"{final}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, final)

    def load(self, container_id: str) -> dict[str, Any]:
        """The container's record; ContainerNotFound when it has none."""
        try:
            with open(self.path(container_id, STATE_FILE), "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(container_id) from None
        try:
            record = jsonio.loads_record(data.decode())
        except ValueError:  # not JSON, not UTF-8, or nested past the parser's depth
            record = None
        if not _well_formed(record, container_id):
            raise OciishError(f"state of container {container_id!r} is corrupt: {self.path(container_id, STATE_FILE)}")
        return record

    def load_config(self, container_id: str) -> dict[str, Any]:
        with open(self.path(container_id, CONFIG_FILE), "rb") as f:
            return jsonio.loads(f.read())

    def remove(self, container_id: str) -> None:
        """Remove the container's directory and everything in it.

        Its entries are files (create makes no directories in it), unlinked through a
        directory fd; shutil (2 ms to import) only for a directory someone put there."""
        directory = self.dir(container_id)
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            for name in os.listdir(fd):
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except IsADirectoryError:
                    import shutil

                    shutil.rmtree(os.path.join(directory, name))
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise OciishError(f"cannot remove {directory}: {e.strerror}") from None
        finally:
            os.close(fd)

    def ids(self) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield entry.name
