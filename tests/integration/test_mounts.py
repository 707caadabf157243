"""config.json mounts, root.readonly and the rootfs jail, observed from inside real containers.

Each container prints its /proc/self/mountinfo, a separator, then the results of probes
("label=ok" / "label=fail" for commands whose success is the point).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import Bundle, Runtime, cgroup_dirs, expect_create_failure, unique_id

SEPARATOR = "=====probes====="


@dataclass
class MountEntry:
    """One /proc/self/mountinfo line."""

    mount_id: int
    parent_id: int
    device: str
    root: str
    point: str
    options: set[str]
    optional: list[str]
    fstype: str
    source: str
    super_options: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, line: str) -> MountEntry:
        fields = line.split()
        dash = fields.index("-")
        return cls(int(fields[0]), int(fields[1]), fields[2], fields[3], fields[4].replace("\\040", " "),
                   set(fields[5].split(",")), fields[6:dash], fields[dash + 1], fields[dash + 2],
                   set(fields[dash + 3].split(",")) if len(fields) > dash + 3 else set())


@dataclass
class Probe:
    """What a probing container reported: its mount table, key=value results, other lines."""

    mounts: list[MountEntry]
    results: dict[str, str]
    lines: list[str]

    def at(self, point: str) -> MountEntry:
        """The topmost mount at ``point`` (the last one listed there)."""
        found = [m for m in self.mounts if m.point == point]
        assert found, f"nothing mounted at {point}: {[m.point for m in self.mounts]}"
        return found[-1]


def attempt(label: str, command: str) -> str:
    """Shell snippet printing label=ok when ``command`` succeeds, label=fail otherwise."""
    return f"if {command} 2>/dev/null; then echo {label}=ok; else echo {label}=fail; fi"


def probe(runtime: Runtime, bundle: Bundle, *snippets: str, run_flags: tuple[str, ...] = ()) -> Probe:
    bundle.shell("; ".join(["cat /proc/self/mountinfo", f"echo {SEPARATOR}", *snippets]))
    result = runtime("run", *run_flags, "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 0, f"run failed ({result.returncode}): {result.stderr}"
    table, _, rest = result.stdout.partition(SEPARATOR + "\n")
    lines = rest.splitlines()
    results = dict(line.split("=", 1) for line in lines if re.match(r"[a-z_][a-z0-9_]*=", line))
    return Probe([MountEntry.parse(line) for line in table.splitlines()], results, lines)


def add_mount(bundle: Bundle, destination: str, mount_type: str | None, source: str, *options: str) -> None:
    entry: dict[str, Any] = {"destination": destination, "source": source, "options": list(options)}
    if mount_type is not None:
        entry["type"] = mount_type
    bundle.config["mounts"].append(entry)


def host_dir(tmp_path: Path, name: str, files: dict[str, str] | None = None) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    for file_name, text in (files or {"hello.txt": "from the host\n"}).items():
        (directory / file_name).write_text(text)
    return directory


def host_mounts_under(path: Path) -> list[str]:
    """Mount points of the test's (the host's) mount namespace at or below ``path``."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def cgroup_v1() -> bool:
    return Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()


@pytest.fixture
def nested_host_tree(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a tmpfs mounted on its subdirectory ``sub`` (for rbind / rro)."""
    top = host_dir(tmp_path, "tree", {"top.txt": "top\n"})
    (top / "sub").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "treesub", str(top / "sub")], check=True)
    try:
        subprocess.run(["mount", "--make-private", str(top / "sub")], check=True)
        (top / "sub" / "inner.txt").write_text("inner\n")
        yield top
    finally:
        subprocess.run(["umount", "-l", str(top / "sub")], check=True)


# --- one test per mount type -------------------------------------------------------------


def test_tmpfs_with_size_mode_and_flags(runtime: Runtime, bundle: Bundle) -> None:
    add_mount(bundle, "/scratch", "tmpfs", "tmpfs", "nosuid", "nodev", "noexec", "size=1m", "mode=1770")
    p = probe(runtime, bundle, "stat -c 'mode=%a' /scratch",
              attempt("write", "echo x > /scratch/f"),
              attempt("exec", "cp /bin/busybox /scratch/bb && /scratch/bb true"),
              attempt("overflow", "dd if=/dev/zero of=/scratch/big bs=1k count=2048"))
    entry = p.at("/scratch")
    assert entry.fstype == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= entry.options
    assert {"size=1024k", "mode=1770"} <= entry.super_options
    assert p.results == {"mode": "1770", "write": "ok", "exec": "fail", "overflow": "fail"}


def test_tmpfs_over_a_directory_takes_its_mode_unless_one_is_given(runtime: Runtime, bundle: Bundle) -> None:
    """As runc: a tmpfs without mode= on an existing directory gets that directory's mode
    (sticky bit included); mode= wins; a directory the mount creates keeps tmpfs's 1777."""
    for name, mode in (("covered", 0o710), ("sticky", 0o1730), ("given", 0o710)):
        (bundle.rootfs / name).mkdir()
        (bundle.rootfs / name).chmod(mode)
    add_mount(bundle, "/covered", "tmpfs", "tmpfs", "nosuid", "size=1m")
    add_mount(bundle, "/sticky", "tmpfs", "tmpfs")
    add_mount(bundle, "/given", "tmpfs", "tmpfs", "mode=755")
    add_mount(bundle, "/created", "tmpfs", "tmpfs")
    p = probe(runtime, bundle, "for d in covered sticky given created; do echo $d=$(stat -c %a /$d); done")
    assert p.results == {"covered": "710", "sticky": "1730", "given": "755", "created": "1777"}
    assert "mode=710" in p.at("/covered").super_options and "size=1024k" in p.at("/covered").super_options


def test_read_only_dev_is_made_read_only_after_setup(runtime: Runtime, bundle: Bundle) -> None:
    """A read-only /dev tmpfs is mounted writable, filled (devices, /dev/pts, /dev/shm, the
    symlinks) and only then made read-only, as runc does."""
    dev = next(m for m in bundle.config["mounts"] if m["destination"] == "/dev")
    dev["options"].append("ro")
    p = probe(runtime, bundle, attempt("null", "echo x > /dev/null"), attempt("pts", "test -e /dev/pts/ptmx"),
              attempt("link", "test -L /dev/stdout"), attempt("create", "touch /dev/new"),
              attempt("shm", "touch /dev/shm/file"))
    assert "ro" in p.at("/dev").options and {"nosuid"} <= p.at("/dev").options
    assert p.at("/dev/pts").fstype == "devpts"
    assert p.results == {"null": "ok", "pts": "ok", "link": "ok", "create": "fail", "shm": "ok"}


@pytest.mark.parametrize("writable", [False, True], ids=["ro", "rw"])
def test_bind_mount_of_a_host_directory(runtime: Runtime, bundle: Bundle, tmp_path: Path, writable: bool) -> None:
    source = host_dir(tmp_path, "shared")
    add_mount(bundle, "/data", "bind", str(source), "bind", "rw" if writable else "ro")
    p = probe(runtime, bundle, "echo content=$(cat /data/hello.txt)", attempt("write", "echo new > /data/new.txt"))
    assert p.results["content"] == "from the host"
    assert ("rw" if writable else "ro") in p.at("/data").options
    assert p.results["write"] == ("ok" if writable else "fail")
    assert (source / "new.txt").exists() == writable
    if writable:
        assert (source / "new.txt").read_text() == "new\n"


def with_user_namespace(bundle: Bundle) -> None:
    """Ids 0-65535 mapped onto themselves: the rootfs stays reachable, anything owned by a
    higher uid is foreign to the container's root."""
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    for kind in ("uid", "gid"):
        bundle.config["linux"][f"{kind}Mappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]


@pytest.mark.parametrize("option", ["bind", "rbind"])
def test_bind_source_the_container_root_cannot_reach(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                     option: str) -> None:
    """In a user namespace, a bind source behind a directory only the host may search (its
    owner unmapped, mode 0700) is opened by create as the host's root, as runc does; exec
    into the container works too; the flags the kernel locked on the host's mounts stay
    locked (a read-only host mount cannot be made writable from inside)."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    source = host_dir(locked, "data")
    os.chown(locked, 70000, 70000)
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(read_only)], check=True)
    try:
        with_user_namespace(bundle)
        bundle.config["process"]["capabilities"] = {kind: ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"] for kind in
                                                    ("bounding", "effective", "permitted")}
        add_mount(bundle, "/data", None, str(source), option)
        add_mount(bundle, "/host-ro", None, str(read_only), option)
        bundle.config["process"]["args"] = ["sleep", "1000"]
        bundle.write()
        cid = unique_id()
        result = runtime("run", "--detach", "--bundle", str(bundle.path), cid)
        assert result.returncode == 0, result.stderr
        assert runtime("exec", cid, "cat", "/data/hello.txt", check=True).stdout == "from the host\n"
        remount = runtime("exec", cid, "mount", "-o", "remount,bind,rw", "/host-ro")
        assert remount.returncode != 0 and "ro" in probe_options(runtime, cid, "/host-ro")
        # the container's root may remount, as far as the kernel lets it: adding ro is allowed
        runtime("exec", cid, "mount", "-o", "remount,bind,ro", "/data", check=True)
        assert "ro" in probe_options(runtime, cid, "/data")
        runtime("delete", "--force", cid, check=True)
    finally:
        subprocess.run(["umount", str(read_only)], check=True)


def probe_options(runtime: Runtime, cid: str, point: str) -> set[str]:
    """The mount options of the topmost mount at ``point`` in a running container."""
    table = runtime("exec", cid, "cat", "/proc/self/mountinfo", check=True).stdout
    return [MountEntry.parse(line) for line in table.splitlines() if line.split()[4] == point][-1].options


@pytest.mark.parametrize("option", ["bind", "rbind"])
def test_rbind_carries_submounts_and_bind_does_not(runtime: Runtime, bundle: Bundle, nested_host_tree: Path,
                                                    option: str) -> None:
    add_mount(bundle, "/tree", None, str(nested_host_tree), option)
    p = probe(runtime, bundle, "echo top=$(cat /tree/top.txt)", attempt("inner", "test -f /tree/sub/inner.txt"))
    assert p.results["top"] == "top"
    recursive = option == "rbind"
    assert p.results["inner"] == ("ok" if recursive else "fail")
    assert any(m.point == "/tree/sub" for m in p.mounts) == recursive


@pytest.mark.parametrize("option", ["ro", "rro"])
def test_rro_makes_submounts_read_only_too(runtime: Runtime, bundle: Bundle, nested_host_tree: Path, option: str) -> None:
    """`ro` on an rbind covers only the top mount; `rro` (mount_setattr) covers every submount."""
    add_mount(bundle, "/tree", None, str(nested_host_tree), "rbind", option)
    p = probe(runtime, bundle, attempt("top", "touch /tree/x"), attempt("sub", "touch /tree/sub/x"))
    assert p.results["top"] == "fail"
    assert p.results["sub"] == ("fail" if option == "rro" else "ok")
    assert ("ro" in p.at("/tree/sub").options) == (option == "rro")


def test_bind_mount_of_a_single_file(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    source = tmp_path / "injected.conf"
    source.write_text("key=value\n")
    add_mount(bundle, "/etc/injected.conf", "bind", str(source), "bind", "ro")
    p = probe(runtime, bundle, "echo content=$(cat /etc/injected.conf)", attempt("dir", "test -d /etc/injected.conf"))
    assert p.results == {"content": "key=value", "dir": "fail"}
    assert "ro" in p.at("/etc/injected.conf").options
    assert not (bundle.rootfs / "etc" / "injected.conf").read_text()  # only a mount point in the image


def test_proc_mount_with_flags(runtime: Runtime, bundle: Bundle) -> None:
    proc = next(m for m in bundle.config["mounts"] if m["destination"] == "/proc")
    proc["options"] = ["nosuid", "noexec", "nodev"]
    p = probe(runtime, bundle, "echo self=$(readlink /proc/self)", "echo pid1=$(cat /proc/1/comm)")
    entry = p.at("/proc")
    assert entry.fstype == "proc" and {"nosuid", "noexec", "nodev"} <= entry.options
    assert p.results["pid1"] == "sh" and p.results["self"].isdigit()


def test_sysfs_read_only_and_of_the_container_network(runtime: Runtime, bundle: Bundle) -> None:
    p = probe(runtime, bundle, "echo nets=$(ls /sys/class/net)", attempt("mkdir", "mkdir /sys/kernel/x"))
    entry = p.at("/sys")
    assert entry.fstype == "sysfs" and "ro" in entry.options
    assert p.results == {"nets": "lo", "mkdir": "fail"}


def test_devpts_new_instance_with_ptmxmode(runtime: Runtime, bundle: Bundle) -> None:
    pts = next(m for m in bundle.config["mounts"] if m["destination"] == "/dev/pts")
    pts["options"] = ["nosuid", "noexec", "newinstance", "ptmxmode=0640", "mode=0600", "gid=5"]
    p = probe(runtime, bundle, "echo ptmx=$(stat -c %a /dev/pts/ptmx)", "echo entries=$(ls /dev/pts | tr '\\n' ' ')")
    entry = p.at("/dev/pts")
    assert entry.fstype == "devpts"
    assert {"ptmxmode=640", "mode=600", "gid=5"} <= entry.super_options
    assert p.results["ptmx"] == "640"
    assert p.results["entries"].split() == ["ptmx"], "the host's ptys are visible: not a new instance"
    host_pts = os.stat("/dev/pts").st_dev
    assert entry.device != f"{os.major(host_pts)}:{os.minor(host_pts)}"


def test_mqueue_mount(runtime: Runtime, bundle: Bundle) -> None:
    p = probe(runtime, bundle, "echo queues=$(ls -A /dev/mqueue | wc -l)")
    entry = p.at("/dev/mqueue")
    assert entry.fstype == "mqueue" and {"nosuid", "nodev", "noexec"} <= entry.options
    assert p.results["queues"] == "0"


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "no-cgroupns"])
def test_cgroup_mount_shows_the_container_cgroup_read_only(runtime: Runtime, bundle: Bundle, cgroupns: bool) -> None:
    namespaces = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "cgroup"]
    bundle.config["linux"]["namespaces"] = namespaces + [{"type": "cgroup"}] * cgroupns
    limit = 48 * 1024 * 1024
    bundle.config["linux"]["resources"]["memory"] = {"limit": limit}
    limit_file = "/sys/fs/cgroup/memory/memory.limit_in_bytes" if cgroup_v1() else "/sys/fs/cgroup/memory.max"
    p = probe(runtime, bundle, f"echo limit=$(cat {limit_file})", attempt("mkdir", f"mkdir {os.path.dirname(limit_file)}/x"),
              "cat /proc/self/cgroup")
    assert p.results["limit"] == str(limit)
    assert p.results["mkdir"] == "fail"
    cgroup_mounts = [m for m in p.mounts if m.point.startswith("/sys/fs/cgroup")]
    assert cgroup_mounts and all("ro" in m.options for m in cgroup_mounts)
    if cgroupns:
        own = [line.split(":", 2)[2] for line in p.lines if line.count(":") >= 2]
        assert own and all(path == "/" for path in own), own


def test_overlay_mount_reads_lower_and_writes_upper(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    lower = host_dir(tmp_path, "lower", {"lower.txt": "lower layer\n"})
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    add_mount(bundle, "/merged", "overlay", "overlay", f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}")
    p = probe(runtime, bundle, "echo lower=$(cat /merged/lower.txt)", attempt("write", "echo up > /merged/new.txt"))
    assert p.at("/merged").fstype == "overlay"
    assert p.results == {"lower": "lower layer", "write": "ok"}
    assert (upper / "new.txt").read_text() == "up\n"
    assert not (lower / "new.txt").exists()


# --- ordering, paths, options ------------------------------------------------------------


def test_mounts_happen_in_listed_order(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A bind under a tmpfs listed before it stays visible: it is mounted on top, not hidden."""
    source = host_dir(tmp_path, "inner")
    add_mount(bundle, "/stack", "tmpfs", "tmpfs", "size=1m")
    add_mount(bundle, "/stack/inner", "bind", str(source), "bind")
    p = probe(runtime, bundle, "echo content=$(cat /stack/inner/hello.txt)")
    assert p.results["content"] == "from the host"
    assert p.at("/stack/inner").parent_id == p.at("/stack").mount_id


def test_relative_destination_is_relative_to_root(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    source = host_dir(tmp_path, "rel")
    add_mount(bundle, "relative/data", "bind", str(source), "bind")
    p = probe(runtime, bundle, "echo content=$(cat /relative/data/hello.txt)")
    assert p.results["content"] == "from the host"
    assert p.at("/relative/data").root.endswith("/rel")


@pytest.mark.parametrize("propagation, shared", [(["rshared"], True), (["rshared", "rprivate"], False),
                                                  (["rslave"], False)], ids=["rshared", "rshared-then-rprivate", "rslave"])
def test_propagation_options_apply_to_the_mount(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                propagation: list[str], shared: bool) -> None:
    source = host_dir(tmp_path, "prop")
    add_mount(bundle, "/prop", "bind", str(source), "rbind", *propagation)
    entry = probe(runtime, bundle).at("/prop")
    assert any(tag.startswith("shared:") for tag in entry.optional) == shared, entry.optional


@pytest.mark.parametrize("propagation, tag", [("shared", "shared:"), ("unbindable", "unbindable"), ("private", None),
                                              ("slave", None)])
def test_rootfs_propagation(runtime: Runtime, bundle: Bundle, propagation: str, tag: str | None) -> None:
    """config-linux.md rootfsPropagation: shared, slave, private or unbindable, on the container's /."""
    bundle.config["linux"]["rootfsPropagation"] = propagation
    root = probe(runtime, bundle).at("/")
    if tag is None:
        assert not any(t.startswith("shared:") or t == "unbindable" for t in root.optional), root.optional
    else:
        assert any(t.startswith(tag) for t in root.optional), root.optional


def test_bind_source_relative_to_the_bundle(runtime: Runtime, bundle: Bundle) -> None:
    """config.md: bind sources are absolute or relative to the bundle (not to the caller's cwd)."""
    host_dir(bundle.path, "bundle-data")
    add_mount(bundle, "/rel", "bind", "bundle-data", "bind")
    assert probe(runtime, bundle, "echo content=$(cat /rel/hello.txt)").results["content"] == "from the host"


# --- the rootfs jail ---------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_host_filesystem_is_not_reachable(runtime: Runtime, bundle: Bundle, tmp_path: Path, flags: tuple[str, ...]) -> None:
    marker = tmp_path / f"host-only-{uuid.uuid4().hex}"
    marker.write_text("secret\n")
    p = probe(runtime, bundle, "echo root=$(ls -A / | tr '\\n' ' ')", attempt("marker", f"test -e {marker}"),
              attempt("marker_via_proc", f"test -e /proc/1/root{marker}"), run_flags=flags)
    assert p.results["root"].split() == sorted(os.listdir(bundle.rootfs))
    assert p.results["marker"] == "fail" and p.results["marker_via_proc"] == "fail"
    allowed = [m["destination"] for m in bundle.config["mounts"]]
    allowed += bundle.config["linux"]["maskedPaths"] + bundle.config["linux"]["readonlyPaths"]
    leaked = [m.point for m in p.mounts
              if m.point != "/" and not any(m.point == a or m.point.startswith(a + "/") for a in allowed)]
    assert leaked == [], "host mounts visible in the container"
    assert [m.point for m in p.mounts].count("/") == 1


def test_readonly_root_with_a_writable_tmpfs(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["root"]["readonly"] = True
    add_mount(bundle, "/scratch", "tmpfs", "tmpfs", "size=1m")
    p = probe(runtime, bundle, attempt("root", "touch /x"), attempt("tmpfs", "touch /scratch/x"))
    assert p.results == {"root": "fail", "tmpfs": "ok"}
    assert "ro" in p.at("/").options
    assert not (bundle.rootfs / "x").exists()


def _plant_escape(kind: str, rootfs: Path, victim: Path) -> str:
    """Plant a symlink in the rootfs that, followed on the host, reaches ``victim``; the
    destination of a mount through it."""
    climb = "../" * len(rootfs.parts)
    if kind == "root":
        os.symlink("/", rootfs / "evil")
        return f"/evil{victim}/x"
    os.symlink(str(victim) if kind == "absolute" else climb + str(victim).lstrip("/"), rootfs / "mnt")
    return "/mnt/x"


@pytest.mark.parametrize("kind", ["absolute", "relative", "root"])
def test_symlinked_mount_destination_stays_inside_the_rootfs(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                               kind: str) -> None:
    """A symlink in the image pointing at a host directory: the bind lands in the rootfs's copy.

    The same path exists inside the rootfs, so a runtime resolving inside the rootfs has a
    directory to mount on; one following the link on the host would mount in ``victim``.
    """
    victim = tmp_path / "victim"
    victim.mkdir()
    twin = bundle.rootfs / str(victim).lstrip("/")
    twin.mkdir(parents=True)
    destination = _plant_escape(kind, bundle.rootfs, victim)
    source = host_dir(tmp_path, "payload")
    add_mount(bundle, destination, "bind", str(source), "bind")
    p = probe(runtime, bundle, f"echo content=$(cat {destination}/hello.txt)", f"echo inside=$(ls {victim}/x)")
    assert p.results == {"content": "from the host", "inside": "hello.txt"}
    assert list(victim.iterdir()) == [], "the mount point was created in the host directory"
    assert host_mounts_under(tmp_path) == [], "something was mounted on the host"
    assert (twin / "x").is_dir() and list((twin / "x").iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_mount_through_a_dangling_symlink_creates_its_target_inside(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                                    kind: str) -> None:
    """Images often ship /etc/resolv.conf -> ../run/...; a bind over it lands on the link's target,
    created inside the rootfs.  With an absolute link to a host path, still inside the rootfs."""
    victim = tmp_path / "victim"
    victim.mkdir()
    if kind == "file":
        (bundle.rootfs / "etc" / "resolv.conf").unlink(missing_ok=True)
        os.symlink("../run/resolve/stub-resolv.conf", bundle.rootfs / "etc" / "resolv.conf")
        source = tmp_path / "resolv.conf"
        source.write_text("nameserver 192.0.2.1\n")
        destination, landed = "/etc/resolv.conf", bundle.rootfs / "run" / "resolve" / "stub-resolv.conf"
        reader = "cat /etc/resolv.conf"
    else:
        os.symlink(str(victim), bundle.rootfs / "mnt")
        source = host_dir(tmp_path, "payload", {"hello.txt": "nameserver 192.0.2.1\n"})
        destination, landed = "/mnt/x", bundle.rootfs / str(victim).lstrip("/") / "x"
        reader = "cat /mnt/x/hello.txt"
    add_mount(bundle, destination, "bind", str(source), "bind", "ro")
    p = probe(runtime, bundle, f"echo content=$({reader})")
    assert p.results["content"] == "nameserver 192.0.2.1"
    assert landed.exists() and list(victim.iterdir()) == []


@pytest.mark.parametrize("mount_type", ["proc", "sysfs"])
def test_symlinked_proc_or_sys_is_refused(runtime: Runtime, bundle: Bundle, tmp_path: Path, mount_type: str) -> None:
    """procfs/sysfs through a symlink in the image (CVE-2019-16884 class): create fails, names the mount."""
    index = next(i for i, m in enumerate(bundle.config["mounts"]) if m["type"] == mount_type)
    destination = bundle.config["mounts"][index]["destination"]
    victim = tmp_path / "victim"
    victim.mkdir()
    (bundle.rootfs / destination.lstrip("/")).rmdir()
    os.symlink(str(victim), bundle.rootfs / destination.lstrip("/"))
    bundle.write()
    cid = unique_id()
    result = runtime("create", "--bundle", str(bundle.path), cid)
    assert result.returncode == 1
    assert f"mounts[{index}]" in result.stderr and destination in result.stderr, result.stderr
    assert runtime.ids() == [] and not cgroup_dirs(cid)
    assert host_mounts_under(tmp_path) == [] and list(victim.iterdir()) == []


def test_overlay_over_the_whole_rootfs(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """mounts[0] may put an overlay over / (lower: a shared base; upper and work relative to
    the bundle): the container sees the base, its writes land in the bundle's upper dir,
    and nothing is mounted on the host afterwards."""
    import shutil

    base = bundle.path / "base"
    shutil.move(str(bundle.rootfs), base)
    bundle.rootfs.mkdir()
    for name in ("upper", "work"):
        (bundle.path / name).mkdir()
    bundle.config["mounts"].insert(0, {"destination": "/", "type": "overlay", "source": "overlay",
                                       "options": ["lowerdir=base", "upperdir=upper", "workdir=work"]})
    bundle.shell("echo written > /root/new; rm /bin/sh.bak 2>/dev/null; cat /etc/motd")
    result = runtime("run", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 0, result.stderr
    assert "busybox rootfs" in result.stdout
    assert (bundle.path / "upper" / "root" / "new").read_text() == "written\n"
    assert not (base / "root" / "new").exists()
    assert str(bundle.path) not in Path("/proc/self/mountinfo").read_text()


def test_mount_over_root_must_come_first(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["mounts"].append({"destination": "/", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()
    result = runtime("create", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 1 and "a mount over / must be the first mount" in result.stderr


def test_tmpcopyup_fills_the_tmpfs_with_what_it_covers(runtime: Runtime, bundle: Bundle) -> None:
    """podman --read-only puts tmpcopyup tmpfs mounts on /tmp, /run and /var/tmp."""
    (bundle.rootfs / "etc" / "keep.d").mkdir()
    (bundle.rootfs / "etc" / "keep.d" / "conf").write_text("from the image\n")
    (bundle.rootfs / "etc" / "keep.d" / "link").symlink_to("/etc/passwd")
    (bundle.rootfs / "etc" / "keep.d" / "sub").mkdir(mode=0o711)
    (bundle.rootfs / "etc" / "keep.d" / "sub" / "secret").write_text("s\n")
    (bundle.rootfs / "etc" / "keep.d" / "sub" / "secret").chmod(0o640)
    os.chown(bundle.rootfs / "etc" / "keep.d" / "sub" / "secret", 123, 456)
    os.chown(bundle.rootfs / "etc" / "keep.d" / "sub", 789, 789)
    os.lchown(bundle.rootfs / "etc" / "keep.d" / "link", 321, 321)
    os.chown(bundle.rootfs / "etc" / "keep.d", 0, 66)
    add_mount(bundle, "/etc/keep.d", "tmpfs", "tmpfs", "tmpcopyup", "mode=755")
    p = probe(runtime, bundle, "echo content=$(cat /etc/keep.d/conf); echo link=$(readlink /etc/keep.d/link); "
                               "echo secret=$(stat -c %u:%g:%a /etc/keep.d/sub/secret); "
                               "echo sub=$(stat -c %u:%g:%a /etc/keep.d/sub); echo top=$(stat -c %u:%g /etc/keep.d); "
                               "echo linkowner=$(stat -c %u /etc/keep.d/link); "
                               "echo new > /etc/keep.d/added && echo writable=yes")
    assert p.results["content"] == "from the image" and p.results["link"] == "/etc/passwd"
    assert (p.results["secret"], p.results["sub"]) == ("123:456:640", "789:789:711")
    assert (p.results["top"], p.results["linkowner"]) == ("0:66", "321")
    assert p.results["writable"] == "yes" and p.at("/etc/keep.d").fstype == "tmpfs"
    assert not (bundle.rootfs / "etc" / "keep.d" / "added").exists()


# --- idmapped mounts (mounts[].uidMappings/gidMappings, idmap, ridmap) --------------------

SHIFT = [{"containerID": 5000, "hostID": 0, "size": 1}]  # stored as 5000 ↔ seen as host root


def idmapped(bundle: Bundle, destination: str, source: Path, *options: str, mappings: bool = True) -> None:
    add_mount(bundle, destination, None, str(source), *options)
    if mappings:
        bundle.config["mounts"][-1].update(uidMappings=SHIFT, gidMappings=SHIFT)


@pytest.mark.parametrize("userns", [False, True], ids=["host-ids", "userns"])
def test_idmapped_mount_shows_and_stores_the_mapped_ids(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                        userns: bool) -> None:
    """A file stored as 5000 shows as root through the mount, and one root writes there is
    stored as 5000, with or without a user namespace of the container's own."""
    source = host_dir(tmp_path, "data", {"owned": "x\n"})
    os.chown(source / "owned", 5000, 5000)
    os.chown(source, 5000, 5000)
    if userns:
        with_user_namespace(bundle)
    idmapped(bundle, "/data", source, "bind", "idmap")
    p = probe(runtime, bundle, "echo owner=$(stat -c %u:%g /data/owned)",
              attempt("write", "touch /data/written"))
    assert p.results["owner"] == "0:0" and p.results["write"] == "ok"
    written = (source / "written").stat()
    assert (written.st_uid, written.st_gid) == (5000, 5000)
    assert (source / "owned").stat().st_uid == 5000  # the files themselves are not changed


@pytest.fixture
def searchable_bundle(busybox_rootfs: Path) -> Iterator[Bundle]:
    """A bundle on a path every uid may search (pytest's own temp directories are 0700),
    so a container root that is not the host's root can reach its rootfs."""
    top = Path(tempfile.mkdtemp(prefix="ociish-idmap-"))
    try:
        top.chmod(0o711)
        yield Bundle(top / "bundle", busybox_rootfs).write()
    finally:
        shutil.rmtree(top)


def test_idmap_without_mappings_takes_the_container_user_namespace(runtime: Runtime, searchable_bundle: Bundle,
                                                                   tmp_path: Path) -> None:
    """podman's :idmap volume: a root-owned host directory is the container root's own,
    though the container's root is host uid 200000."""
    bundle = searchable_bundle
    for path in [bundle.rootfs, *bundle.rootfs.rglob("*")]:
        os.lchown(path, 200000, 200000)
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    for kind in ("uid", "gid"):
        bundle.config["linux"][f"{kind}Mappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    source = host_dir(tmp_path, "vol")
    add_mount(bundle, "/vol", None, str(source), "rbind", "idmap")
    p = probe(runtime, bundle, "echo owner=$(stat -c %u /vol/hello.txt)", attempt("write", "touch /vol/written"))
    assert p.results["owner"] == "0" and p.results["write"] == "ok"
    assert (source / "written").stat().st_uid == 0


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_ridmap_maps_the_submounts_too(runtime: Runtime, bundle: Bundle, nested_host_tree: Path, option: str) -> None:
    os.chown(nested_host_tree / "top.txt", 5000, 5000)
    os.chown(nested_host_tree / "sub" / "inner.txt", 5000, 5000)
    idmapped(bundle, "/tree", nested_host_tree, "rbind", option)
    p = probe(runtime, bundle, "echo top=$(stat -c %u /tree/top.txt); echo inner=$(stat -c %u /tree/sub/inner.txt)")
    assert p.results["top"] == "0"
    assert p.results["inner"] == ("0" if option == "ridmap" else "5000")


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(type="tmpfs", source="tmpfs", options=["idmap"]),
     "mounts[1]: only bind mounts (options bind or rbind) can be idmapped"),
    (lambda m: m.pop("uidMappings"), "mounts[1].uidMappings: missing required field"),
    (lambda m: [m.pop("uidMappings"), m.pop("gidMappings")],
     "mounts[1].options: \"idmap\" needs uidMappings and gidMappings on the mount or a user namespace"),
    (lambda m: m.update(source="/proc/sys"), "mounts[1]: cannot idmap '/proc/sys': the filesystem does not support"),
], ids=["not-bind", "uid-only", "no-mapping-no-userns", "procfs"])
def test_idmapped_mount_refusals_name_the_mount(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                change: Any, message: str) -> None:
    bundle.config["mounts"] = bundle.config["mounts"][:1]
    idmapped(bundle, "/data", host_dir(tmp_path, "data"), "bind", "idmap")
    change(bundle.config["mounts"][1])
    expect_create_failure(runtime, bundle, message)
