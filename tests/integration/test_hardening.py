"""Attacks that broke real runtimes, run against ociish with crafted rootfses and configs.

Each test is named after the class of attack; docs/security.md maps them to the CVEs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from conftest import Bundle, Runtime, run_output, unique_id


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- CVE-2019-5736 class: the runtime binary behind /proc/<pid>/exe ---------------------------

def test_waiting_init_runs_from_a_sealed_memfd(runtime: Runtime, bundle: Bundle) -> None:
    """The process inside the container's namespaces is not the host interpreter, and its
    executable cannot be opened for writing."""
    bundle.args("true")
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    pid = runtime.state(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:ociish-init")
    with pytest.raises(OSError):
        os.open(f"/proc/{pid}/exe", os.O_WRONLY)
    assert Path(f"/proc/{pid}/status").read_text().count("NoNewPrivs") == 1


def test_another_container_cannot_reach_the_waiting_init(runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """A container sharing the pid namespace sees the runtime's init but cannot open its
    exe, environ or fds: the init is not dumpable.  Each report is written aside and
    renamed into place, so a report is never read half-written."""
    out = tmp_path / "out"
    out.mkdir()
    watcher = make_bundle("watcher")
    watcher.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    watcher.shell("while true; do for p in /proc/[0-9]*; do n=${p#/proc/}; [ $n = 1 ] && continue; "
                  "grep -q ociish-init $p/comm 2>/dev/null || grep -q python $p/comm 2>/dev/null || continue; "
                  "(readlink $p/exe && echo exe-readable || echo exe-denied; cat $p/environ >/dev/null 2>&1 "
                  "&& echo environ-readable || echo environ-denied; readlink $p/fd/0 >/dev/null 2>&1 && echo fd-readable "
                  "|| echo fd-denied) > /out/.$n 2>&1; mv /out/.$n /out/$n; done; sleep 0.05; done")
    a = unique_id()
    runtime("run", "--detach", "--bundle", str(watcher.path), a, check=True)
    target = make_bundle("target").args("true")
    target.config["linux"]["namespaces"] = [
        {"type": "pid", "path": f"/proc/{runtime.state(a)['pid']}/ns/pid"} if ns["type"] == "pid" else ns
        for ns in target.config["linux"]["namespaces"]]
    target.write()
    runtime("create", "--bundle", str(target.path), unique_id(), check=True)
    deadline = time.monotonic() + 10
    while not list(out.glob("[0-9]*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    reports = [p.read_text() for p in out.glob("[0-9]*")]
    assert reports, "the watcher never saw the waiting init"
    for report in reports:
        assert "exe-denied" in report and "environ-denied" in report and "fd-denied" in report, report


def test_proc_self_exe_payload_cannot_write_the_interpreter(runtime: Runtime, bundle: Bundle) -> None:
    """process.args is a `#!/proc/self/exe` script: the kernel runs the runtime's own exe
    as the container process.  With the interpreter's libraries bind-mounted read-only so
    it can actually start, the payload looks for a writable handle on it and finds none."""
    prefix = sys.base_prefix
    for directory in (prefix, "/lib/x86_64-linux-gnu", "/lib64", "/usr/lib/x86_64-linux-gnu"):
        if Path(directory).is_dir():
            bundle.config["mounts"].append({"destination": directory, "type": "bind", "source": directory,
                                            "options": ["rbind", "ro"]})
    payload = bundle.rootfs / "evil"
    payload.write_text(
        "#!/proc/self/exe\n"
        "import os\n"
        "print('exe is', os.readlink('/proc/self/exe'))\n"
        "for flags, name in ((os.O_WRONLY, 'write'), (os.O_RDWR, 'rdwr')):\n"
        "    try:\n"
        "        os.close(os.open('/proc/self/exe', flags))\n"
        "        print(name, 'OPENED')\n"
        "    except OSError as e:\n"
        "        print(name, 'refused', e.errno)\n")
    payload.chmod(0o755)
    bundle.config["process"]["env"].append(f"PYTHONHOME={prefix}")
    bundle.args("/evil")
    interpreter = os.path.realpath(sys.executable)
    before = sha256(interpreter)
    result = runtime("run", "--bundle", str(bundle.path), unique_id())
    assert sha256(interpreter) == before
    if "exe is" not in result.stdout:
        pytest.skip(f"the interpreter could not start inside the container here: {result.stderr[-300:]}")
    assert "exe is /memfd:ociish-init" in result.stdout
    assert "OPENED" not in result.stdout and result.stdout.count("refused") == 2


# --- CVE-2024-21626 class: leaked fds and process.cwd --------------------------------------

def test_cwd_through_proc_self_fd_never_reaches_the_host(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A host directory fd handed to `create` (not preserved) and process.cwd=/proc/self/fd/N
    for every small N: each create fails cleanly or the cwd is inside the container."""
    host_dir = tmp_path / "host-secret"
    host_dir.mkdir()
    (host_dir / "marker").write_text("host")
    leaked = os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY)  # inheritable only via pass_fds
    try:
        for n in range(3, 16):
            bundle.config["process"]["cwd"] = f"/proc/self/fd/{n}"
            bundle.shell("pwd; ls; cat marker 2>/dev/null && echo HOST-REACHED")
            cid = unique_id()
            result = subprocess.run([*runtime.command, "run", "--bundle", str(bundle.path), cid], pass_fds=(leaked,),
                                    capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            assert "HOST-REACHED" not in result.stdout, (n, result.stdout)
            assert "Traceback" not in result.stderr
            if result.returncode != 0:
                assert "process.cwd" in result.stderr, (n, result.stderr)
    finally:
        os.close(leaked)


def test_only_stdio_reaches_the_container(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    leaked = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        bundle.args("ls", "/proc/self/fd")
        result = subprocess.run([*runtime.command, "run", "--bundle", str(bundle.path), unique_id()],
                                pass_fds=(leaked,), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        os.close(leaked)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


# --- CVE-2021-30465 class: a mount destination swapped to a symlink during setup ----------

def test_racing_symlink_swap_never_mounts_outside_the_rootfs(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A shared volume whose directory is swapped for a symlink to a host path while
    create resolves a mount destination inside it (bounded: 15 creates)."""
    volume = tmp_path / "volume"
    volume.mkdir()
    host_target = tmp_path / "host-target"
    host_target.mkdir()
    (host_target / "keep").write_text("untouched")
    bundle.config["mounts"].append({"destination": "/vol", "type": "bind", "source": str(volume), "options": ["rbind"]})
    bundle.config["mounts"].append({"destination": "/vol/dir", "type": "tmpfs", "source": "tmpfs"})
    bundle.args("true")
    stop = threading.Event()

    def swap() -> None:
        real, link = volume / "dir", volume / "dir-link"
        while not stop.is_set():
            try:
                real.mkdir(exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(host_target)
                os.rename(link, real) if real.is_dir() and not any(real.iterdir()) else None
                time.sleep(0.001)
                if real.is_symlink():
                    real.unlink()
            except OSError:
                pass

    thread = threading.Thread(target=swap)
    thread.start()
    try:
        for _ in range(15):
            result = runtime("run", "--bundle", str(bundle.path), unique_id())
            assert "Traceback" not in result.stderr
    finally:
        stop.set()
        thread.join()
    assert [p.name for p in host_target.iterdir()] == ["keep"]
    assert str(host_target) not in Path("/proc/self/mountinfo").read_text()


# --- files the runtime writes at a path the client names ------------------------------------

HOLD = 'read go; exec "$@"'  # the runtime's pid is known (and planted) before it starts


def run_held(runtime: Runtime, tmp_path: Path, plant: Callable[[int], None], *args: str) -> tuple[int, str]:
    """Run ociish with ``args`` after ``plant(pid)`` has set traps for the pid it will run as."""
    with tempfile.TemporaryFile() as err:  # a created init keeps stderr: no pipe
        proc = subprocess.Popen(["sh", "-c", HOLD, "sh", *runtime.command, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=err)
        plant(proc.pid)
        proc.communicate(b"go\n", timeout=60)
        err.seek(0)
        return proc.returncode, err.read().decode()


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("precious")
    return path


def plant_temp_names(directory: Path, name: str, victim: Path) -> Callable[[int], None]:
    """Symlinks to the victim at every name a pid-derived temp file of ``name`` could take."""
    def plant(pid: int) -> None:
        for candidate in (f"{name}.{pid}.tmp", f".{name}.{pid}.tmp", f"{name}.tmp", f".{name}.tmp"):
            (directory / candidate).symlink_to(victim)
    return plant


@pytest.mark.parametrize("command", ["create", "exec-detached"])
def test_pid_file_is_never_written_through_a_symlink(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                     victim: Path, command: str) -> None:
    """--pid-file in a directory someone else can write: symlinks planted at the temp
    names the runtime's pid would give, and at the pid file itself, never reach the victim."""
    directory = tmp_path / "writable-by-the-container"
    directory.mkdir()
    pid_file = directory / "pidfile"
    if command == "create":
        bundle.args("true")
        args = lambda cid: ("create", "--bundle", str(bundle.path), "--pid-file", str(pid_file), cid)  # noqa: E731
    else:
        bundle.args("sleep", "1000")
        running = unique_id()
        runtime("run", "--detach", "--bundle", str(bundle.path), running, check=True)
        args = lambda cid: ("exec", "--detach", "--pid-file", str(pid_file), running, "sleep", "1000")  # noqa: E731

    cid = unique_id()
    code, err = run_held(runtime, tmp_path, plant_temp_names(directory, "pidfile", victim), *args(cid))
    assert code == 0, err
    assert victim.read_text() == "precious"
    pid = int(pid_file.read_text())
    if command == "create":
        assert pid == runtime.state(cid)["pid"]
    else:
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x001000\x00"
    assert sorted(p.name for p in directory.iterdir() if not p.is_symlink()) == ["pidfile"]  # no temp file left

    pid_file.unlink()
    pid_file.symlink_to(victim)
    before = runtime.ids()
    code, err = run_held(runtime, tmp_path, lambda pid: None, *args(unique_id()))
    failed = 255 if command.startswith("exec") else 1  # exec's own failures exit 255, as runc's
    assert code == failed and err.strip() == f"ociish: --pid-file {pid_file}: is a symlink; name the file itself", err
    assert victim.read_text() == "precious" and pid_file.is_symlink()
    assert runtime.ids() == before
    if command != "create":
        assert len(json.loads(runtime("ps", "--format", "json", running, check=True).stdout)) == 2  # init, first exec


def test_log_file_is_never_written_through_a_symlink(runtime: Runtime, bundle: Bundle, tmp_path: Path,
                                                     victim: Path) -> None:
    log_file = tmp_path / "log.json"
    log_file.symlink_to(victim)
    result = runtime("--log", str(log_file), "--log-format", "json", "create", "--bundle", str(bundle.path),
                     "no/such/id")
    assert victim.read_text() == "precious"
    assert result.returncode == 1
    assert result.stderr.strip() == f"ociish: --log {log_file}: is a symlink; name the file itself", result.stderr


# --- --no-pivot: the host's mounts stay reachable under a moved root ------------------------

def test_no_pivot_leaves_no_host_mount_in_the_container(runtime: Runtime, bundle: Bundle) -> None:
    """A fully visible host procfs hidden under the moved root would let a process that
    unshares a user namespace (and a pid namespace of its own, whose procfs it may mount)
    mount a fresh, unmasked /proc.  CAP_SETFCAP lets it map its root (Linux 5.12)."""
    caps = ["CAP_SYS_ADMIN", "CAP_SETFCAP"]
    bundle.config["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    bundle.shell("cut -d' ' -f5 /proc/self/mountinfo; mkdir -p /tmp/p; "
                 "for flags in -Urm -Urmpf; do unshare $flags mount -t proc proc /tmp/p; echo \"$flags=$?\"; done; "
                 "cat /proc/timer_list | wc -c")
    result = runtime("run", "--no-pivot", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 0, result.stderr
    assert "-Urm=1" in result.stdout and "-Urmpf=1" in result.stdout, (result.stdout, result.stderr)
    assert result.stderr.count("permission denied") == 2, result.stderr  # busybox's words for EPERM
    points = result.stdout.split("-Urm=")[0].split()
    assert "/" in points and "/proc" in points and "/tmp/p" not in points, points
    assert not [p for p in points if p.startswith(str(bundle.path))]
    assert result.stdout.split()[-1] == "0"  # the container's own masked paths still hold


# --- what the default `ociish spec` container may not do -----------------------------------

def test_default_container_is_contained(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["root"]["readonly"] = True
    bundle.shell(
        "insmod /lib/nothing.ko 2>/dev/null && echo MODULE-LOADED; "
        "mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; "
        "echo pids: $(cd /proc && echo [0-9]*); "
        "echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo SYSCTL-WRITTEN; "
        "echo c > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WRITTEN; "
        "touch /proc/acpi/x 2>/dev/null && echo MASKED-WRITTEN; "
        "echo masked: $(wc -c < /proc/timer_list); "
        "touch /rootfs-write 2>/dev/null && echo ROOT-WRITTEN; "
        "mknod /tmp/sda b 8 0 2>/dev/null && echo MKNOD; echo end")
    result = run_output(runtime, bundle)
    out = result.stdout
    for forbidden in ("MODULE-LOADED", "MOUNTED", "SYSCTL-WRITTEN", "SYSRQ-WRITTEN", "MASKED-WRITTEN", "ROOT-WRITTEN",
                      "MKNOD"):
        assert forbidden not in out, out
    pids = [int(p) for p in out.split("pids:")[1].split("\n")[0].split()]
    assert 1 in pids and max(pids) < 10, out  # only the container's own few processes
    assert "masked: 0" in out and out.strip().endswith("end"), out  # a masked file reads empty
