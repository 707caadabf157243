"""Build the container's filesystem inside its mount namespace (runs in the container init).

Order (see docs/design.md): make the host's mounts invisible to propagation, bind the
rootfs onto itself, do config.json's mounts in order, create /dev, mask and lock paths,
then pivot_root.  Every destination is resolved inside the rootfs (safepath) and every
mount(2) targets ``/proc/self/fd/N`` of that resolved fd, never a re-resolved path.
"""

from __future__ import annotations

import errno
import os
import stat

from ociish import safepath
from ociish.errors import OciishError
from ociish.linux import libc as L
from ociish.linux import syscalls as S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ociish.process.plantypes import Device, MountStep

_LOCKED_FLAGS = L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_NOATIME | L.MS_NODIRATIME | L.MS_RELATIME
_ST_TO_MS = {  # statvfs f_flag bits → the mount flags they report
    os.ST_RDONLY: L.MS_RDONLY, os.ST_NOSUID: L.MS_NOSUID, os.ST_NODEV: L.MS_NODEV, os.ST_NOEXEC: L.MS_NOEXEC,
    os.ST_NOATIME: L.MS_NOATIME, os.ST_NODIRATIME: L.MS_NODIRATIME, os.ST_RELATIME: L.MS_RELATIME,
}


class SetupError(OciishError):
    """A setup step failed; the message names the config.json field."""


def prepare_root(rootfs: str) -> int:
    """Isolate the mount tree and return an O_PATH fd of the rootfs bind mount."""
    S.mount(None, "/", None, L.MS_SLAVE | L.MS_REC)
    _make_parent_slave(rootfs)
    S.mount(rootfs, rootfs, None, L.MS_BIND | L.MS_REC)
    return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _make_parent_slave(rootfs: str) -> None:
    """The mount holding the rootfs (the rootfs itself if it is a mount point) must not
    be shared: pivot_root refuses it, and the self-bind must not propagate out.  A slave
    (not private) keeps receiving from the host, so rootfsPropagation "slave" holds."""
    best = "/"
    target = rootfs.rstrip("/") or "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best = point
    S.mount(None, best, None, L.MS_SLAVE)


def do_mount(root_fd: int, m: MountStep, where: str, source_fd: int = -1) -> None:
    """One config.json mount, by fd, with its options applied in mount(2)'s order.

    A bind source is opened here unless ``source_fd`` (an O_PATH fd of it, or for an
    idmapped mount the detached tree create made, which this takes over) is given."""
    dest = m["destination"]
    if m["bind"]:
        src_fd = source_fd if source_fd >= 0 else os.open(m["source"], os.O_PATH | os.O_CLOEXEC)
        try:
            target = safepath.mkdir_all(root_fd, dest) if safepath.is_dir(src_fd) else safepath.ensure_file(root_fd, dest)
            try:
                if m["idmap"]:
                    S.move_mount(src_fd, target)
                else:
                    flags = L.MS_BIND | (L.MS_REC if m["rec"] else 0)
                    S.mount(safepath.fd_path(src_fd), safepath.fd_path(target), None, flags)
            finally:
                os.close(target)
        finally:
            os.close(src_fd)
        if m["flags"] & ~L.MS_REMOUNT or m["clear"]:
            _remount_bind(root_fd, dest, m["flags"])
    else:
        covered_mode = _directory_mode(root_fd, dest) if m["type"] == "tmpfs" else None
        target = _mount_target(root_fd, m, where)
        try:
            if m["type"] == "cgroup":
                _mount_cgroup(root_fd, m, target, where)
            else:
                data = _with_covered_mode(m["data"], covered_mode) if m["type"] == "tmpfs" else m["data"]
                S.mount(m["source"], safepath.fd_path(target), m["type"], m["flags"], data or None)
                if m["copy_up"]:
                    _copy_up(root_fd, target, dest)
        finally:
            os.close(target)
    _set_propagation_and_attrs(root_fd, dest, m)


def _directory_mode(root_fd: int, dest: str) -> int | None:
    """The permission bits of the directory at ``dest`` before anything is mounted on it,
    None when there is none yet."""
    try:
        fd = safepath.open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        return stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _with_covered_mode(data: str, covered_mode: int | None) -> str:
    """A tmpfs over an existing directory takes that directory's mode unless ``mode=`` is
    given, as runc does (a new directory keeps tmpfs's own 1777)."""
    if covered_mode is None or any(option.startswith("mode=") for option in data.split(",")):
        return data
    return ",".join(filter(None, [data, f"mode={covered_mode:04o}"]))


def _copy_up(root_fd: int, covered: int, dest: str) -> None:
    """tmpcopyup: fill the new tmpfs with what the directory it covers held, modes,
    owners and extended attributes kept (copytree keeps all but the owners).

    ``covered`` still refers to the directory under the mount; symlinks are copied as
    symlinks, never followed, so the image cannot make this read the host."""
    import shutil

    top = safepath.open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY)
    try:
        source, copy = safepath.fd_path(covered), safepath.fd_path(top)
        shutil.copytree(source, copy, symlinks=True, dirs_exist_ok=True)
        st = os.fstat(covered)
        os.chown(copy, st.st_uid, st.st_gid)
        for directory, dirs, files in os.walk(source):
            relative = os.path.relpath(directory, source)
            for name in [*dirs, *files]:
                st = os.lstat(os.path.join(directory, name))
                os.lchown(os.path.join(copy, relative, name), st.st_uid, st.st_gid)
    finally:
        os.close(top)


def _mount_target(root_fd: int, m: MountStep, where: str) -> int:
    dest = m["destination"]
    if m["type"] in ("proc", "sysfs"):
        # CVE-2019-16884 class: procfs/sysfs only on a real directory, never through a symlink
        try:
            fd = safepath.open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY, follow=False)
        except FileNotFoundError:
            return safepath.mkdir_all(root_fd, dest)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SetupError(f"{where}.destination: {dest} in the rootfs is not a plain directory (symlink?)") from None
            raise
        return fd
    return safepath.mkdir_all(root_fd, dest)


def _mount_flags(path: str) -> int:
    """The flags of the mount at ``path`` that a bind remount must repeat or lose."""
    reported = S.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS.items() if reported & st) & _LOCKED_FLAGS


def _remount(path: str, flags: int, keep_current: bool) -> None:
    """MS_REMOUNT|MS_BIND with ``flags``; the mount's own flags are kept when asked, and
    always when the kernel refuses to drop them (locked in a user namespace)."""
    if keep_current:
        flags |= _mount_flags(path)
    try:
        S.mount(None, path, None, L.MS_REMOUNT | L.MS_BIND | flags)
    except PermissionError:
        S.mount(None, path, None, L.MS_REMOUNT | L.MS_BIND | flags | _mount_flags(path))


def _remount_bind(root_fd: int, dest: str, flags: int, keep_current: bool = False) -> None:
    """Apply flags to a bind mount: remount the new mount itself, re-resolved in the root."""
    target = safepath.open_in_root(root_fd, dest)
    try:
        _remount(safepath.fd_path(target), flags, keep_current)
    finally:
        os.close(target)


def remount_readonly(root_fd: int, dest: str) -> None:
    """Make the mount at ``dest`` read-only, keeping its other flags."""
    _remount_bind(root_fd, dest, L.MS_RDONLY, keep_current=True)


def _set_propagation_and_attrs(root_fd: int, dest: str, m: MountStep) -> None:
    if not m["propagation"] and not (m["attr_set"] or m["attr_clr"]):
        return
    target = safepath.open_in_root(root_fd, dest)
    try:
        for flags in m["propagation"]:
            S.mount(None, safepath.fd_path(target), None, flags)
        if m["attr_set"] or m["attr_clr"]:
            S.mount_setattr(target, m["attr_set"], m["attr_clr"], recursive=True)
    finally:
        os.close(target)


def _mount_cgroup(root_fd: int, m: MountStep, target: int, where: str) -> None:
    """A `cgroup` mount shows the container's own cgroups, read-only unless asked otherwise.

    With a cgroup namespace the kernel roots each hierarchy at the container's cgroup, so
    real cgroup filesystems are mounted; without one, the container's directories are
    bind-mounted (runc does the same) so the host's tree stays hidden.  cgroup2 is
    bind-mounted too where the kernel refuses a new mount: over the root of a cgroup2
    mount already there (EBUSY: what the host's /sys brings along when it is rbind-mounted,
    as `spec --rootless` does), or without the privilege to (EPERM).  The container sees
    the same tree either way.
    """
    flags = m["flags"]
    hierarchies = m["cgroup"]  # [(name, fs options or None for cgroup2, host dir of the container's cgroup)]
    if len(hierarchies) == 1 and hierarchies[0][0] == "":
        _, _, host_dir = hierarchies[0]
        if m["cgroupns"]:
            try:
                S.mount("cgroup2", safepath.fd_path(target), "cgroup2", flags)
                return
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.EPERM):
                    raise
        S.mount(host_dir, safepath.fd_path(target), None, L.MS_BIND | L.MS_REC)
        _remount_bind(root_fd, m["destination"], flags)
        return
    S.mount("tmpfs", safepath.fd_path(target), "tmpfs", (flags & ~L.MS_RDONLY) | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC, "mode=755")
    dest = m["destination"]
    top = safepath.open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY)  # the new tmpfs, not what it covers
    try:
        for name, fs_options, host_dir in hierarchies:
            sub_path = f"{dest}/{name or 'unified'}"
            sub = safepath.mkdir_all(root_fd, sub_path)
            try:
                if m["cgroupns"]:
                    fstype = "cgroup2" if fs_options is None else "cgroup"
                    S.mount("cgroup", safepath.fd_path(sub), fstype, flags, fs_options)
                else:
                    S.mount(host_dir, safepath.fd_path(sub), None, L.MS_BIND | L.MS_REC)
            finally:
                os.close(sub)
            if not m["cgroupns"]:
                _remount_bind(root_fd, sub_path, flags)
            # co-mounted controllers ("cpu,cpuacct") are also reachable under each single name
            if "," in name:
                for alias in name.split(","):
                    try:
                        S.symlink(name, alias, dir_fd=top)
                    except FileExistsError:
                        pass
        if flags & L.MS_RDONLY:
            S.mount(None, safepath.fd_path(top), None, L.MS_REMOUNT | flags | L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
    finally:
        os.close(top)


def create_devices(root_fd: int, devices: list[Device], bind_from_host: bool) -> None:
    """mknod each device inside the root (bind the host's node instead inside a user namespace)."""
    for dev in devices:
        path = safepath.clean(dev["path"])
        parent_path, name = path.rsplit("/", 1)
        parent = safepath.mkdir_all(root_fd, parent_path or "/")
        try:
            if _keep_existing(parent, name, dev):
                continue
            if bind_from_host:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent))
                node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                try:
                    S.mount(dev["host_path"], safepath.fd_path(node), None, L.MS_BIND)
                finally:
                    os.close(node)
            else:
                kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[dev["type"]]
                S.mknod(name, kind | dev["mode"], os.makedev(dev["major"], dev["minor"]), dir_fd=parent)
                S.chmod(name, dev["mode"], dir_fd=parent, follow_symlinks=False)
                S.chown(name, dev["uid"], dev["gid"], dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)


def _keep_existing(parent: int, name: str, dev: Device) -> bool:
    """What already sits at a device's path: the same device is kept; anything else is
    replaced for a default device and refused for a configured one (config-linux.md)."""
    try:
        st = S.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return False
    kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[dev["type"]]
    same = stat.S_IFMT(st.st_mode) == kind and (kind == stat.S_IFIFO or st.st_rdev == os.makedev(dev["major"], dev["minor"]))
    if same:
        S.chmod(name, dev["mode"], dir_fd=parent, follow_symlinks=False)
        S.chown(name, dev["uid"], dev["gid"], dir_fd=parent, follow_symlinks=False)
        return True
    if dev["configured"]:
        raise SetupError(f"{dev['where']}.path: {dev['path']} already exists in the rootfs and is not that device")
    if stat.S_ISDIR(st.st_mode):
        raise SetupError(f"{dev['where']}.path: {dev['path']} is a directory in the rootfs")
    S.unlink(name, dir_fd=parent)
    return False


def create_dev_symlinks(root_fd: int, links: list[tuple[str, str]]) -> None:
    """The /dev symlinks of runtime-linux.md (/dev/fd, std streams, ptmx), unless present."""
    dev = safepath.mkdir_all(root_fd, "/dev")
    try:
        for name, target in links:
            try:
                S.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
    finally:
        os.close(dev)


def verified_dev_null(root_fd: int) -> int:
    """O_PATH fd of the container's /dev/null, checked to really be char device 1:3."""
    fd = safepath.open_in_root(root_fd, "/dev/null", follow=False)
    st = S.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise SetupError("linux.maskedPaths: /dev/null in the container is not the null device")
    return fd


def _open_listed_path(root_fd: int, path: str, where: str) -> int:
    """O_PATH fd of a masked/readonly path, -1 when absent; a symlink there is refused."""
    try:
        fd = safepath.open_in_root(root_fd, path, follow=False)
    except (FileNotFoundError, NotADirectoryError):
        return -1
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        raise SetupError(f"{where}: {path} is a symlink in the rootfs")
    return fd


def mask_paths(root_fd: int, paths: list[str]) -> None:
    """maskedPaths: files get the (verified) null device, directories an empty read-only tmpfs."""
    null_fd = -1
    try:
        for index, path in enumerate(paths):
            target = _open_listed_path(root_fd, path, f"linux.maskedPaths[{index}]")
            if target < 0:
                continue
            try:
                if safepath.is_dir(target):  # no size options: the container's mountinfo shows what runc's does
                    S.mount("tmpfs", safepath.fd_path(target), "tmpfs", L.MS_RDONLY)
                else:
                    if null_fd < 0:
                        null_fd = verified_dev_null(root_fd)
                    S.mount(safepath.fd_path(null_fd), safepath.fd_path(target), None, L.MS_BIND)
            finally:
                os.close(target)
    finally:
        if null_fd >= 0:
            os.close(null_fd)


def readonly_paths(root_fd: int, paths: list[str]) -> None:
    """readonlyPaths: bind each path onto itself, then remount it read-only (keeping its flags)."""
    for index, path in enumerate(paths):
        target = _open_listed_path(root_fd, path, f"linux.readonlyPaths[{index}]")
        if target < 0:
            continue
        try:
            S.mount(safepath.fd_path(target), safepath.fd_path(target), None, L.MS_BIND | L.MS_REC)
        finally:
            os.close(target)
        _remount_bind(root_fd, path, L.MS_RDONLY, keep_current=True)  # as runc: only ro is added


def pivot(root_fd: int) -> None:
    """pivot_root into the rootfs and detach the old root (the host) from the namespace."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        S.fchdir(root_fd)
        S.pivot_root(".", ".")
        # the old root is stacked on the new one; the kernel does not promise what "." is
        # now, so step onto the old root explicitly, and keep the detach from propagating
        S.fchdir(old_root)
        S.mount(None, ".", None, L.MS_SLAVE | L.MS_REC)
        S.umount2(".", L.MNT_DETACH)
    finally:
        os.close(old_root)
    S.chdir("/")


def move_root(rootfs: str, procfs_fd: int) -> None:
    """--no-pivot: move the rootfs mount over / and chroot into it.

    First every mount outside the rootfs (but those holding it) is detached: hidden under
    the moved root they would still count for the kernel, and a fully visible host procfs
    or sysfs lets a process that unshares a user namespace mount a fresh, unmasked one.
    One that cannot be detached (locked in a user namespace) is covered by an empty tmpfs.
    The tree is a slave already (prepare_root): nothing propagates to the host."""
    detached: list[str] = []
    for point, fstype in _mounts_outside(rootfs, procfs_fd):
        if any(point.startswith(d.rstrip("/") + "/") for d in detached):
            continue  # went with its parent
        try:
            S.umount2(point, L.MNT_DETACH)
            detached.append(point)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            if fstype in ("proc", "sysfs"):
                S.mount("tmpfs", point, "tmpfs", L.MS_RDONLY, "nr_blocks=1,nr_inodes=1")
    S.chdir(rootfs)
    S.mount(rootfs, "/", None, L.MS_MOVE)
    S.chroot(".")
    S.chdir("/")


def _mounts_outside(rootfs: str, procfs_fd: int) -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount neither inside ``rootfs`` nor holding it, parents first."""
    with open(os.open("self/mountinfo", os.O_RDONLY | os.O_CLOEXEC, dir_fd=procfs_fd)) as f:
        lines = f.read().splitlines()
    root = rootfs.rstrip("/")
    found = []
    for line in lines:
        fields, _, rest = line.partition(" - ")
        point = _unescape(fields.split()[4])
        holds = point == "/" or root.startswith(point.rstrip("/") + "/")
        if point != root and not point.startswith(root + "/") and not holds:
            found.append((point, rest.split()[0]))
    return sorted(set(found), key=lambda item: (item[0].count("/"), item[0]))


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash come as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def remount_root_readonly() -> None:
    _remount("/", L.MS_RDONLY, keep_current=False)


def write_sysctls(procfs_fd: int, sysctl: dict[str, str]) -> None:
    """Write each key through the private procfs handle (never the container's /proc)."""
    for key, value in sysctl.items():
        rel = "sys/" + key.replace(".", "/")
        try:
            fd = S.openat2(procfs_fd, rel, os.O_WRONLY, L.RESOLVE_BENEATH | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_XDEV)
        except OSError as e:
            raise SetupError(f"linux.sysctl[{key!r}]: {e.strerror}") from None
        try:
            if L.fstatfs_type(fd) != L.PROC_SUPER_MAGIC:
                raise SetupError(f"linux.sysctl[{key!r}]: not a procfs file")
            os.write(fd, value.encode())
        except OSError as e:
            raise SetupError(f"linux.sysctl[{key!r}]: cannot write {value!r}: {e.strerror}") from None
        finally:
            os.close(fd)
