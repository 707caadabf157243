"""Where a client or a script could tell ociish from runc, it can't: each test runs the same
command under both, on the same bundle, and compares what they print and how they exit
(docs/clients.md lists the few deliberate differences)."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import Bundle, Runtime, unique_id

RUNC = shutil.which("runc") or "/usr/sbin/runc"


class Runc(Runtime):
    """runc with a private --root, called like Runtime calls ociish."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.command = [RUNC, "--root", str(root)]


@pytest.fixture
def runc(tmp_path: Path) -> Iterator[Runc]:
    if not Path(RUNC).exists():
        pytest.skip("runc is not installed (apt-get install runc)")
    rt = Runc(tmp_path / "runc-state")
    yield rt
    for container_id in rt.ids():
        rt("delete", "--force", container_id)


def both(runtime: Runtime, runc: Runc, *args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    return runtime(*args), runc(*args)


@pytest.fixture
def running(runtime: Runtime, runc: Runc, bundle: Bundle) -> str:
    """The same long-running container, under the same id, in both runtimes."""
    bundle.args("sleep", "1000")
    cid = unique_id("par")
    for rt in (runtime, runc):
        rt("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    return cid


def test_exec_passes_the_status_through_and_its_own_errors_exit_255(runtime: Runtime, runc: Runc,
                                                                     running: str) -> None:
    cases = {
        ("exec", running, "sh", "-c", "exit 7"): 7,  # and no warning: the ambient set is silently dropped
        ("exec", running, "sh", "-c", "kill -KILL $$"): 137,
        ("exec", running, "/nonexistent"): 255,
        ("exec", running, "no-such-command"): 255,
        ("exec", "--cwd", "/nonexistent", running, "true"): 255,
        ("exec", "no-such-container", "true"): 255,
        ("exec", running): 255,  # no command: the exec's own error, not a usage error
        ("exec", "--bogus-flag", running, "true"): 1,  # a usage error
    }
    for args, status in cases.items():
        ours, theirs = both(runtime, runc, *args)
        assert (ours.returncode, theirs.returncode) == (status, status), (args, ours.stderr, theirs.stderr)
        if status == 255:
            assert ours.stderr.count("\n") == 1, ours.stderr  # one line: what failed


def test_run_passes_the_status_through(runtime: Runtime, runc: Runc, bundle: Bundle) -> None:
    bundle.shell("exit 3")
    ours, theirs = both(runtime, runc, "run", "--bundle", str(bundle.path), unique_id("par"))
    assert ours.returncode == theirs.returncode == 3, (ours.stderr, theirs.stderr)


def test_kill_0_checks_that_the_container_is_alive(runtime: Runtime, runc: Runc, running: str) -> None:
    ours, theirs = both(runtime, runc, "kill", running, "0")
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert runtime.state(running)["status"] == "running"
    for rt in (runtime, runc):
        rt("kill", running, "KILL", check=True)
        rt("delete", "--force", running, check=True)  # gone: kill 0 says so
    ours, theirs = both(runtime, runc, "kill", running, "0")
    assert ours.returncode == theirs.returncode == 1, (ours.stderr, theirs.stderr)


def _normalized(text: str) -> str:
    text = re.sub(r'"pid":( ?)\d+', r'"pid":\1PID', text)
    text = re.sub(r'"created":( ?)"[^"]*"', r'"created":\1"TIME"', text)
    return re.sub(r'"ociVersion":( ?)"[^"]*"', r'"ociVersion":\1"VERSION"', text)


def test_state_and_list_print_what_runc_prints(runtime: Runtime, runc: Runc, bundle: Bundle) -> None:
    bundle.config["annotations"] = {"z.key": "é <&>", "a.key": "1"}
    bundle.args("sleep", "1000")
    cid = unique_id("par")
    for rt in (runtime, runc):
        rt("create", "--bundle", str(bundle.path), cid, check=True)
    for args in (("state", cid), ("list", "--format", "json"), ("list", "-q")):
        ours, theirs = both(runtime, runc, *args)
        assert (ours.returncode, theirs.returncode) == (0, 0), (ours.stderr, theirs.stderr)
        assert _normalized(ours.stdout) == _normalized(theirs.stdout), args
    ours, theirs = both(runtime, runc, "list")
    assert ours.stdout.splitlines()[0].split() == theirs.stdout.splitlines()[0].split()
    rows = [[[line.split()[i] for i in (0, 2, 3, 5)] for line in out.splitlines()] for out in (ours.stdout, theirs.stdout)]
    assert rows[0] == rows[1]
    for rt in (runtime, runc):
        rt("delete", "--force", cid, check=True)
    ours, theirs = both(runtime, runc, "list", "--format", "json")
    assert ours.stdout == theirs.stdout == "null\n"


@pytest.mark.parametrize("rootless", [False, True], ids=["root", "rootless"])
def test_spec_writes_what_runc_spec_writes(runc: Runc, runtime: Runtime, rootless: bool) -> None:
    """Byte for byte, but for ociVersion, the hostname (each the runtime's own) and the
    powercap mask of runc 1.2 and later (ociish.spec.defaults)."""
    flags = ["--rootless"] if rootless else []
    written = {}
    for name, rt in (("ociish", runtime), ("runc", runc)):
        directory = Path(tempfile.mkdtemp(dir=runtime.root.parent))
        rt("spec", *flags, cwd=directory, check=True)
        written[name] = (directory / "config.json").read_text()
    theirs = json.loads(written["runc"])
    ours = (written["ociish"]
            .replace('\t"ociVersion": "1.3.0",', f'\t"ociVersion": "{theirs["ociVersion"]}",')
            .replace('\t"hostname": "ociish",', f'\t"hostname": "{theirs["hostname"]}",')
            .replace(',\n\t\t\t"/sys/devices/virtual/powercap"', ""))
    assert ours == written["runc"]


SYSCALLER = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long r = syscall(atol(argv[i]), 0, 0, 0, 0, 0, 0);
        printf("%s=%d\n", argv[i], r == -1 ? errno : 0);
    }
    return 0;
}
"""


@pytest.mark.parametrize("architectures,newer", [(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], 38),
                                                  ([], 1)], ids=["listed", "unlisted"])
def test_syscalls_newer_than_the_profile_fail_with_enosys(runtime: Runtime, runc: Runc, bundle: Bundle,
                                                          tmp_path: Path, architectures: list[str],
                                                          newer: int) -> None:
    """A profile naming every syscall up to 434 but reboot (169), default EPERM: clone3 (435)
    and process_madvise (440) are newer and get ENOSYS on the architectures the profile
    lists; reboot gets the default.  Without architectures there is no stub, as with runc."""
    import pyseccomp

    if platform.machine() != "x86_64":
        pytest.skip("the syscall numbers are x86_64's")
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the syscall caller")
    source = tmp_path / "syscaller.c"
    source.write_text(SYSCALLER)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(bundle.rootfs / "syscaller"), str(source)], check=True)
    names = []
    for number in range(435):
        try:
            names.append(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, number).decode())
        except ValueError:
            continue  # a hole in the table (335-423 on x86_64)
    names.remove("reboot")
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": architectures,
                                         "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}
    bundle.args("/syscaller", "169", "435", "440")
    ours, theirs = both(runtime, runc, "run", "--bundle", str(bundle.path), unique_id("par"))
    assert ours.stdout == theirs.stdout == f"169=1\n435={newer}\n440={newer}\n", (ours.stderr, theirs.stderr)


@pytest.mark.parametrize("no_new_privileges", [True, False], ids=["nnp", "privileged"])
def test_the_start_container_hook_runs_under_the_filter(runtime: Runtime, runc: Runc, bundle: Bundle,
                                                        no_new_privileges: bool) -> None:
    """startContainer runs the image's code: the profile refusing mkdir refuses it there."""
    bundle.config["process"]["noNewPrivileges"] = no_new_privileges
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/hook 2>/dev/null; echo $? > /tmp/status"]}]}
    bundle.shell("cat /tmp/status; rm /tmp/status")
    ours, theirs = both(runtime, runc, "run", "--bundle", str(bundle.path), unique_id("par"))
    assert ours.stdout == theirs.stdout == "1\n", (ours.stderr, theirs.stderr)


def test_an_unusable_log_path_is_an_error_even_when_nothing_is_logged(runtime: Runtime, runc: Runc,
                                                                      tmp_path: Path) -> None:
    unusable = str(tmp_path / "missing" / "log.json")
    ours, theirs = both(runtime, runc, "--log", unusable, "list")
    assert ours.returncode == theirs.returncode == 1, (ours.stderr, theirs.stderr)
    assert ours.stderr == f"ociish: --log {unusable}: cannot open it: No such file or directory\n"
    ours, theirs = both(runtime, runc, "--log", str(tmp_path / "log.json"), "list")
    assert ours.returncode == theirs.returncode == 0  # opened (created) at the start, empty
