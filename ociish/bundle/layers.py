"""OCI image layers: apply one to a rootfs without ever writing outside it, and write one.

Applying never uses a path string on the host.  Each entry's parent directory is opened
with openat2(RESOLVE_IN_ROOT) (via ociish.safepath): ``..`` and symlinks, absolute or
relative, from this layer or an earlier one, resolve as if the rootfs were ``/``; the
entry itself is then made relative to that directory fd, never following a final symlink
(O_NOFOLLOW, O_EXCL, AT_SYMLINK_NOFOLLOW).  A name with a ``..`` component is refused
outright: no honest image has one.

Whiteouts follow the image-spec: ``.wh.NAME`` removes NAME from the layers below and
``.wh..wh..opq`` empties its directory of everything the layers below put there.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from typing import IO

from ociish import safepath
from ociish.errors import OciishError
from ociish.linux import libc as L

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
XATTR_PAX = "SCHILY.xattr."
# overlayfs keeps its own state in these xattrs: an image must not plant them, and an
# upper layer's are not part of what the container wrote
_PRIVATE_XATTRS = ("trusted.overlay.", "user.overlay.")
_IN_ROOT = safepath.IN_ROOT
_DEVICE_TYPES = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}


class LayerError(OciishError):
    """A layer that cannot be applied: the message names the layer and the entry."""


def apply_layer(root_fd: int, stream: IO[bytes], label: str) -> None:
    """Apply one layer (plain, gzip, bzip2 or xz tar) to the tree under ``root_fd``.

    ``root_fd`` must be a real (not O_PATH) directory fd: the root's own entry, if the
    layer has one, sets its owner and mode through it."""
    applier = _Applier(root_fd, label)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                applier.entry(member, tar)
    except tarfile.TarError as e:
        raise LayerError(f"{label}: not a valid tar archive: {e}") from None
    applier.finish()


class _Applier:
    def __init__(self, root_fd: int, label: str) -> None:
        self.root_fd = root_fd
        self.label = label
        self.seen: set[str] = set()  # paths this layer has written (whiteouts spare them)
        self.dir_times: list[tuple[str, float]] = []

    def fail(self, name: str, reason: str) -> LayerError:
        return LayerError(f"{self.label}: entry {name!r}: {reason}")

    def entry(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        path = self.clean(member.name)
        parent_path, _, name = path.rpartition("/")
        if name == OPAQUE:
            self.opaque(member.name, parent_path)
        elif name.startswith(WHITEOUT):
            self.whiteout(member.name, parent_path, name[len(WHITEOUT):])
        elif not path:
            if not member.isdir():
                raise self.fail(member.name, "the root of a layer must be a directory")
            self.directory_attrs(os.dup(self.root_fd), member, "")
        else:
            self.seen.add(path)
            parent = self.parent(member.name, parent_path)
            try:
                self.create(parent, name, path, member, tar)
            except OSError as e:
                raise self.fail(member.name, e.strerror or str(e)) from None
            finally:
                os.close(parent)

    def clean(self, name: str) -> str:
        """The entry's path relative to the root ("" for the root); ``..`` is refused."""
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.fail(name, "a path with '..' could escape the rootfs")
        return "/".join(parts)

    def parent(self, name: str, parent_path: str) -> int:
        try:
            return safepath.mkdir_all(self.root_fd, parent_path)
        except OSError as e:
            raise self.fail(name, f"parent directory: {e.strerror}") from None

    def create(self, parent: int, name: str, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        existing = _lstat(parent, name)
        if member.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                os.unlink(name, dir_fd=parent)
                existing = None
            if existing is None:
                os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            self.directory_attrs(fd, member, path)
            return
        if existing is not None:
            _remove(parent, name, existing)
        if member.isreg():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=parent)
            try:
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has data
                with os.fdopen(os.dup(fd), "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                self.file_attrs(fd, member)
            finally:
                os.close(fd)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            self.nofollow_attrs(parent, name, member)
        elif member.islnk():
            self.hardlink(parent, name, member)
        elif member.type in _DEVICE_TYPES:
            device = os.makedev(member.devmajor, member.devminor)
            os.mknod(name, _DEVICE_TYPES[member.type] | 0o600, device, dir_fd=parent)
            self.nofollow_attrs(parent, name, member)
        else:
            raise self.fail(member.name, f"unsupported tar entry type {member.type!r}")

    def hardlink(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        target = self.clean(member.linkname)
        target_parent, _, target_name = target.rpartition("/")
        if not target_name:
            raise self.fail(member.name, "a hard link to the root")
        try:
            source_dir = L.openat2(self.root_fd, target_parent or "/", os.O_PATH | os.O_DIRECTORY, _IN_ROOT)
        except OSError as e:
            raise self.fail(member.name, f"hard link target {member.linkname!r}: {e.strerror}") from None
        try:
            os.link(target_name, name, src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(source_dir)

    def file_attrs(self, fd: int, member: tarfile.TarInfo) -> None:
        """Owner, mode (after chown, which clears set-id bits), xattrs (after chown, which
        clears security.capability), times."""
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for key, value in _xattrs(member):
            os.setxattr(fd, key, value)
        os.utime(fd, (member.mtime, member.mtime))

    def nofollow_attrs(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if not member.issym():
            os.chmod(name, member.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
        for key, value in _xattrs(member):
            # lsetxattr through the pinned parent: the final component is never followed
            os.setxattr(f"{safepath.fd_path(parent)}/{name}", key, value, follow_symlinks=False)
        os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)

    def directory_attrs(self, fd: int, member: tarfile.TarInfo, path: str) -> None:
        """Like file_attrs, but times wait until the layer is done (children change them)."""
        try:
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            for key, value in _xattrs(member):
                os.setxattr(fd, key, value)
        except OSError as e:
            raise self.fail(member.name, e.strerror or str(e)) from None
        finally:
            os.close(fd)
        self.dir_times.append((path, member.mtime))

    def whiteout(self, name: str, parent_path: str, target: str) -> None:
        if target in ("", ".", "..") or target.startswith(WHITEOUT):
            raise self.fail(name, "not a valid whiteout")
        if f"{parent_path}/{target}".lstrip("/") in self.seen:
            return  # a whiteout hides lower layers only, never its own layer's files
        parent = self.existing_dir(parent_path)
        if parent < 0:
            return
        try:
            existing = _lstat(parent, target)
            if existing is not None:
                _remove(parent, target, existing)
        except OSError as e:
            raise self.fail(name, e.strerror or str(e)) from None
        finally:
            os.close(parent)

    def opaque(self, name: str, parent_path: str) -> None:
        """Remove everything under the directory that this layer did not write."""
        directory = self.existing_dir(parent_path)
        if directory < 0:
            return
        try:
            self.prune(directory, parent_path)
        except OSError as e:
            raise self.fail(name, e.strerror or str(e)) from None
        finally:
            os.close(directory)

    def prune(self, directory: int, path: str) -> None:
        for child in os.listdir(directory):
            child_path = f"{path}/{child}".lstrip("/")
            st = _lstat(directory, child)
            if st is None:
                continue
            if child_path not in self.seen:
                _remove(directory, child, st)
            elif stat.S_ISDIR(st.st_mode):
                fd = os.open(child, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
                try:
                    self.prune(fd, child_path)
                finally:
                    os.close(fd)

    def existing_dir(self, path: str) -> int:
        """fd of a directory inside the root, or -1 if there is none there."""
        try:
            return L.openat2(self.root_fd, path or "/", os.O_RDONLY | os.O_DIRECTORY, _IN_ROOT)
        except (FileNotFoundError, NotADirectoryError):
            return -1

    def finish(self) -> None:
        """Directory times, deepest first, now that nothing in them changes any more."""
        for path, mtime in reversed(self.dir_times):
            try:
                fd = L.openat2(self.root_fd, path or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, _IN_ROOT)
            except OSError:
                continue  # replaced later in the layer by something else
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)


def _lstat(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return None


def _remove(parent: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent)  # fd-based: never follows a symlink inside
    else:
        os.unlink(name, dir_fd=parent)


def _xattrs(member: tarfile.TarInfo) -> Iterator[tuple[str, bytes]]:
    for key, value in member.pax_headers.items():
        if key.startswith(XATTR_PAX):
            name = key[len(XATTR_PAX):]
            if not name.startswith(_PRIVATE_XATTRS):
                yield name, value.encode("utf-8", "surrogateescape")


class LayerWriter:
    """Writes one layer tar: trees walked fd by fd (never following a symlink), hard links
    kept as links, owners, modes, times and xattrs kept, and overlayfs upper layers turned
    into the image-spec's whiteouts."""

    def __init__(self, out: IO[bytes]) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self.links: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        self.tar.close()

    def add_tree(self, dir_fd: int, prefix: str, *, upper: bool = False) -> None:
        """Everything under ``dir_fd`` as ``prefix/...``; ``upper``: the tree is an overlayfs
        upper layer (0:0 character devices are whiteouts, opaque directories are marked)."""
        for name in sorted(os.listdir(dir_fd)):
            path = f"{prefix}/{name}".lstrip("/")
            st = os.lstat(name, dir_fd=dir_fd)
            if upper and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                self.add_whiteout(path)
            elif stat.S_ISDIR(st.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    self.add_dir(fd, path, st)
                    if upper and _is_opaque(fd):
                        self.add_marker(f"{path}/{OPAQUE}")
                    self.add_tree(fd, path, upper=upper)
                finally:
                    os.close(fd)
            else:
                self.add_entry(dir_fd, name, path, st)

    def add_dir(self, fd: int, path: str, st: os.stat_result) -> None:
        info = _info(path, st, tarfile.DIRTYPE)
        info.pax_headers = _read_xattrs(fd)
        self.tar.addfile(info)

    def add_entry(self, dir_fd: int, name: str, path: str, st: os.stat_result) -> None:
        """One non-directory: the first name of an inode carries it, later names link to it."""
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            info = _info(path, st, tarfile.LNKTYPE)
            info.linkname = self.links[key]
            self.tar.addfile(info)
            return
        if st.st_nlink > 1:
            self.links[key] = path
        if stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(fd)
                info = _info(path, st, tarfile.REGTYPE)
                info.size = st.st_size
                info.pax_headers = _read_xattrs(fd)
                self.tar.addfile(info, f)
            return
        if stat.S_ISLNK(st.st_mode):
            info = _info(path, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=dir_fd)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            kind = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE}
            info = _info(path, st, kind[stat.S_IFMT(st.st_mode)])
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # sockets have no place in an image
        info.pax_headers = _read_xattrs(f"{safepath.fd_path(dir_fd)}/{name}", follow=False)
        self.tar.addfile(info)

    def add_whiteout(self, path: str) -> None:
        parent, _, name = path.rpartition("/")
        self.add_marker(f"{parent}/{WHITEOUT}{name}".lstrip("/"))

    def add_marker(self, path: str) -> None:
        """An empty, root-owned file whose name is its meaning (a whiteout)."""
        info = tarfile.TarInfo(path)
        info.mode = 0o644
        self.tar.addfile(info)


def _info(path: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    return info


def _read_xattrs(target: int | str, *, follow: bool = True) -> dict[str, str]:
    """The pax headers for a file's xattrs (binary values survive as surrogate escapes)."""
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):  # symlinks on some filesystems
            return {}
        raise
    return {
        XATTR_PAX + key: os.getxattr(target, key, follow_symlinks=follow).decode("utf-8", "surrogateescape")
        for key in sorted(names)
        if not key.startswith(_PRIVATE_XATTRS)
    }


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False
