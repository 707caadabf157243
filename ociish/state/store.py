"""The state root: one directory per container, written atomically, guarded by a lock.

Layout (runc's permissions)::

    <root>/                 0700
    <root>/<id>.lock        flock target serialising mutating commands on <id>, and a
                            copy of the record create wrote last (see ContainerLock)
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

import errno
import fcntl
import os
import stat
import time


from ociish import jsonio
from ociish.errors import ContainerNotFound, DamagedState, OciishError

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
    "intel_rdt": {"group": str, "mon_group": str, "remove_group": bool, "made_group": bool},
}
_NULLABLE = frozenset({"init_start", "start", "cgroup", "intel_rdt", "mon_group"})


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

    The file also keeps a copy of the record create wrote last (`keep`): damage to the
    container's directory leaves it alone, and `delete --force` finds the init and the
    cgroups from it.

    A lock file never outlives its container: released while the container has no
    directory and the file kept no record (a command on an unknown id, a create that
    failed before making it), the file is unlinked first, still under the lock, as
    delete does (waiters re-check).  One that kept a record goes with `delete --force`.
    """

    def __init__(self, store: "StateStore", container_id: str, fd: int) -> None:
        self.path = store.lock_path(container_id)
        self._fd = fd
        self._store = store
        self._id = container_id
        store._held.add(container_id)

    def keep(self, data: bytes) -> None:
        """Replace the kept copy of the record (records only grow while create writes them,
        so a writer killed between the two calls leaves a whole record before the old tail)."""
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def kept(self) -> bytes:
        size = os.fstat(self._fd).st_size
        return os.pread(self._fd, size, 0) if size else b""

    def release(self) -> None:
        if self._fd >= 0:
            if not os.path.isdir(self._store.dir(self._id)):
                try:
                    held = os.fstat(self._fd)
                    if os.stat(self.path).st_ino == held.st_ino and held.st_size == 0:
                        os.unlink(self.path)
                except FileNotFoundError:
                    pass
            os.close(self._fd)
            self._fd = -1
            self._store._held.discard(self._id)

    def __enter__(self) -> "ContainerLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Unreadable(Exception):
    """A file that is there but cannot be read as one; the reason, worded for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_NOT_A_FILE = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a fifo", stat.S_IFSOCK: "a socket",
               stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def read_regular(path: str) -> bytes:
    """The content of the regular file at ``path``: never through a symlink there, never
    blocking on a fifo put in its place.  FileNotFoundError/NotADirectoryError when there
    is nothing; Unreadable for anything else in the way."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as e:
        raise Unreadable(f"{path} is a symbolic link" if e.errno == errno.ELOOP else f"{path}: {e.strerror}") from None
    try:
        mode = stat.S_IFMT(os.fstat(fd).st_mode)
        if mode != stat.S_IFREG:
            raise Unreadable(f"{path} is {_NOT_A_FILE.get(mode, 'not a regular file')}, not a file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise Unreadable(f"{path}: {e.strerror}") from None
    finally:
        os.close(fd)


def write_failure(container_id: str, e: OSError) -> OciishError:
    """A write to the state root the host refused (full, read-only), in one line."""
    reason = e.strerror or str(e)
    return OciishError(f"{reason[:1].lower()}{reason[1:]} writing the state of {container_id!r}")


class StateStore:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)
        self._held: set[str] = set()  # the ids whose lock this process holds

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
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as e:
                raise write_failure(container_id, e) from None
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
            if self._is_current_lock(container_id, fd):
                return ContainerLock(self, container_id, fd)
            os.close(fd)

    def _is_current_lock(self, container_id: str, fd: int) -> bool:
        try:
            return os.stat(self.lock_path(container_id)).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def lock_if_idle(self, container_id: str) -> ContainerLock | None:
        """The lock of a container, if its file exists and no command holds it right now."""
        try:
            fd = os.open(self.lock_path(container_id), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not self._is_current_lock(container_id, fd):
            os.close(fd)
            return None
        return ContainerLock(self, container_id, fd)

    def kept_record(self, container_id: str, lock: ContainerLock) -> dict[str, Any] | None:
        """The copy of the record kept in the lock file, if it is whole."""
        try:
            record = jsonio.loads_record(lock.kept().decode())
        except (OSError, ValueError):
            return None
        return record if _well_formed(record, container_id) else None

    def remove_lock(self, container_id: str) -> None:
        try:
            os.unlink(self.lock_path(container_id))
        except FileNotFoundError:
            pass

    def exists(self, container_id: str) -> bool:
        return os.path.isdir(self.dir(container_id))

    def make_dir(self, container_id: str) -> None:
        """Create the container's directory; fails if the ID is taken."""
        self.ensure_root()
        try:
            os.mkdir(self.dir(container_id), 0o711)
        except FileExistsError:
            raise OciishError(f"container {container_id!r} already exists") from None
        except OSError as e:
            raise write_failure(container_id, e) from None
        os.chmod(self.dir(container_id), 0o711)  # not subject to umask

    def write(self, container_id: str, record: dict[str, Any], lock: ContainerLock | None = None) -> None:
        """Write the record, and keep a copy of it in the held ``lock`` (create does)."""
        data = jsonio.dumps(record)
        if lock is not None:
            try:
                lock.keep(data)
            except OSError as e:
                raise write_failure(container_id, e) from None
        self.write_file(container_id, STATE_FILE, data)

    def write_file(self, container_id: str, name: str, data: bytes) -> None:
        """Write ``name`` in the container dir atomically: temp file, then rename, so a reader
        or a killed writer never sees half a file.  No fsync: the state describes processes,
        which a power loss ends too (runc does not sync its state either), and on a /run that
        is not a tmpfs it cost every create ~5 ms.  A write the host refuses (a full or
        read-only state root) takes its temp file along."""
        final = self.path(container_id, name)
        tmp = f"{final}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            raise write_failure(container_id, e) from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise write_failure(container_id, e) from None

    def damaged(self, container_id: str, reason: str) -> DamagedState:
        return DamagedState(f"state of container {container_id!r} is damaged: {reason}")

    def corrupt(self, container_id: str) -> DamagedState:
        return DamagedState(f"state of container {container_id!r} is corrupt: {self.path(container_id, STATE_FILE)}")

    def load(self, container_id: str) -> dict[str, Any]:
        """The container's record; ContainerNotFound when it has none, DamagedState when it
        cannot be read or is not a record of this container."""
        try:
            data = read_regular(self.path(container_id, STATE_FILE))
        except (FileNotFoundError, NotADirectoryError):
            data = self._read_missing(container_id)
        except Unreadable as e:
            raise self.damaged(container_id, e.reason) from None
        try:
            record = jsonio.loads_record(data.decode())
        except ValueError:  # not JSON, not UTF-8, or nested past the parser's depth
            record = None
        if not _well_formed(record, container_id):
            raise self.corrupt(container_id)
        return record

    def _read_missing(self, container_id: str) -> bytes:
        """state.json was not there: a container being created or deleted right now (a
        command holds its lock), no container at all, or damage (a directory without its
        record, a lock file that kept a record without its directory).  Told apart under a
        shared lock, which no create or delete holds at the same time; the record is read
        once more under it, as a create may have just written it."""
        fd = -1
        if container_id not in self._held:
            try:
                fd = os.open(self.lock_path(container_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ContainerNotFound(container_id) from None
            except OSError:
                pass  # no lock file (or damaged too): the directory decides
        try:
            try:
                return read_regular(self.path(container_id, STATE_FILE))
            except (FileNotFoundError, NotADirectoryError):
                pass
            except Unreadable as e:
                raise self.damaged(container_id, e.reason) from None
            directory = self.dir(container_id)
            if os.path.isdir(directory):
                raise self.damaged(container_id, f"{directory} holds no {STATE_FILE}")
            try:
                lock = os.stat(self.lock_path(container_id), follow_symlinks=False)
            except OSError:
                lock = None
            if lock is not None and lock.st_size and (fd < 0 or lock.st_ino == os.fstat(fd).st_ino):
                raise self.damaged(container_id, f"{directory} is gone, only its lock file is left")
            raise ContainerNotFound(container_id)
        finally:
            if fd >= 0:
                os.close(fd)

    def load_config(self, container_id: str) -> dict[str, Any]:
        """The config.json create saved; DamagedState when it cannot be read."""
        try:
            return jsonio.loads(read_regular(self.path(container_id, CONFIG_FILE)))
        except (OSError, Unreadable, ValueError) as e:
            reason = e.reason if isinstance(e, Unreadable) else f"{self.path(container_id, CONFIG_FILE)}: " + (
                (e.strerror or str(e)) if isinstance(e, OSError) else str(e))
            raise self.damaged(container_id, reason) from None

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
        """Every name with a directory or a lock file in the root: a lock file alone is a
        command in progress, a leftover, or a directory lost to damage (load tells which)."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        names = set()
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                names.add(entry.name)
            elif entry.name.endswith(".lock") and entry.is_file(follow_symlinks=False):
                names.add(entry.name[:-len(".lock")])
        yield from sorted(names)
