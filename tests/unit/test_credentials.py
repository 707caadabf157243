"""Dropping to the configured user and capabilities, through the syscall seam, without root.

The init's `_prepare_process` runs against the recording fake: every prctl, set*id and
capset is logged instead of done, and the channel to `create` logs into the same list, so
the tests see the whole order, including where stage 0 applies the rlimits.
"""

from __future__ import annotations

import copy
import errno
from pathlib import Path
from typing import Any

import pytest
from syscall_fake import SyscallFake, syscalls_fake  # noqa: F401 - the fixture

from ociish.linux import libc as L
from ociish.process import credentials, init
from ociish.process.plan import build_plan
from ociish.spec.defaults import default_config

CHOWN, KILL, SETUID, SYS_ADMIN = 0, 5, 7, 21
STEPS = ("prctl", "setgroups", "setresgid", "setresuid", "chdir", "getcwd", "capset", "capget", "seccomp_load",
         "chan")


class Channel:
    """The init's end of the channel to `create`: messages go into the fake's log."""

    def __init__(self, fake: SyscallFake) -> None:
        self.log = fake.log

    def send(self, *message: Any) -> None:
        self.log.append(("chan", "send", *message))

    def expect(self, kind: str) -> None:
        self.log.append(("chan", "expect", kind))


# a plan's sets that drop nothing from the bounding set (every process plan has its sets)
NO_DROP = {"bounding": (1 << 8) - 1, "effective": 0, "permitted": 0, "inheritable": 0, "ambient": 0, "last": 7}


def make_plan(tmp_path: Path, uid: int = 0, **process: Any) -> dict[str, Any]:
    config = copy.deepcopy(default_config())
    config["process"].update(terminal=False, cwd="/work", user={"uid": uid, "gid": 100, "additionalGids": [5, 6]},
                             env=["PATH=/bin:/usr/bin", "HOME=/root"], **process)
    plan = build_plan(config, container_id="c", bundle=str(tmp_path), rootfs=str(tmp_path / "rootfs"),
                      options={}, cgroup_mounts=[])
    # capability masks of a known kernel (the planner's depend on the host's)
    plan["process"]["caps"] = {"bounding": 1 << CHOWN | 1 << KILL | 1 << SETUID, "effective": 1 << KILL,
                               "permitted": 1 << KILL | 1 << SETUID, "inheritable": 1 << KILL,
                               "ambient": 1 << KILL, "last": 7}
    return plan


def prepare(plan: dict[str, Any], fake: SyscallFake) -> init.Run:
    """The init's `_prepare_process`; its Run (what it learnt) is returned."""
    run = init.Run("init", None, plan)
    init._prepare_process(plan, Channel(fake), run)
    return run


def test_the_bounding_set_groups_gid_uid_then_capabilities(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    run = prepare(make_plan(tmp_path), syscalls_fake)
    assert syscalls_fake.calls(*STEPS) == [
        ("prctl", L.PR_SET_NO_NEW_PRIVS, 1),
        ("chan", "send", "ready"),  # stage 0 sets the rlimits now, from outside any user namespace
        ("chan", "expect", "ok"),
        ("chdir", "/work"),  # tried while still root (the user may not reach it)
        # the bounding set loses what the config leaves out, while CAP_SETPCAP is held
        *[("prctl", L.PR_CAPBSET_DROP, number) for number in (1, 2, 3, 4, 6)],
        ("prctl", L.PR_SET_KEEPCAPS, 1),  # the permitted set survives the uid change
        ("setgroups", [5, 6]),
        ("setresgid", 100, 100, 100),
        ("setresuid", 0, 0, 0),
        ("prctl", L.PR_SET_KEEPCAPS, 0),
        ("getcwd",),  # the cwd must be inside the container
        ("capset", 1 << KILL, 1 << KILL | 1 << SETUID, 1 << KILL),
        ("prctl", L.PR_CAP_AMBIENT, L.PR_CAP_AMBIENT_CLEAR_ALL),
        ("prctl", L.PR_CAP_AMBIENT, L.PR_CAP_AMBIENT_RAISE, KILL),
    ]
    assert run.executable in ("/bin/sh", "/usr/bin/sh")  # looked up once the ids are final


def test_a_filter_without_no_new_privileges_keeps_sys_admin_for_its_load_only(syscalls_fake: SyscallFake,
                                                                             tmp_path: Path) -> None:
    plan = make_plan(tmp_path, noNewPrivileges=False)
    plan["seccomp"] = {"bpf": b"\x06\x00\x00\x00\x00\x00\xff\x7f", "flags": 0, "listener": False}
    syscalls_fake.caps = (0, 1 << SYS_ADMIN, 0)  # still permitted after the uid change
    prepare(plan, syscalls_fake)
    final = (1 << KILL, 1 << KILL | 1 << SETUID, 1 << KILL)
    sys_admin = 1 << SYS_ADMIN
    assert syscalls_fake.calls("capset", "capget", "seccomp_load", "setresuid") == [
        ("setresuid", 0, 0, 0),
        ("capget",),
        ("capset", final[0] | sys_admin, final[1] | sys_admin, final[2]),
        ("seccomp_load", plan["seccomp"]["bpf"], 0),
        ("capset", *final),
    ]
    assert ("prctl", L.PR_SET_NO_NEW_PRIVS, 1) not in syscalls_fake.log


def test_a_user_namespace_without_setgroups_keeps_the_groups(syscalls_fake: SyscallFake) -> None:
    proc = {"cwd": "/", "caps": NO_DROP, "additional_gids": [5], "gid": 1, "uid": 1}
    credentials.switch_user(proc, setgroups_allowed=False)
    assert syscalls_fake.calls("prctl", "setgroups", "setresgid", "setresuid") == [
        ("prctl", L.PR_SET_KEEPCAPS, 1), ("setresgid", 1, 1, 1), ("setresuid", 1, 1, 1),
        ("prctl", L.PR_SET_KEEPCAPS, 0)]


def test_a_cwd_only_the_user_can_enter_is_entered_after_the_uid_change(syscalls_fake: SyscallFake) -> None:
    syscalls_fake.fail("chdir", errno.EACCES)
    credentials.switch_user({"cwd": "/home/u", "caps": NO_DROP, "additional_gids": [], "gid": 1, "uid": 1}, True)
    assert syscalls_fake.calls("chdir", "setresuid") == [
        ("chdir", "/home/u"), ("setresuid", 1, 1, 1), ("chdir", "/home/u")]


@pytest.mark.parametrize(("fail", "message"), [
    ("chdir", "process.cwd: cannot change to /nowhere: No such file or directory"),
    ("getcwd", "process.cwd: /nowhere is outside the container"),
])
def test_a_cwd_that_cannot_be_entered_or_is_outside_is_refused(syscalls_fake: SyscallFake, fail: str,
                                                               message: str) -> None:
    syscalls_fake.fail(fail, errno.ENOENT)
    if fail == "chdir":
        syscalls_fake.fail("chdir", errno.ENOENT)  # before and after the uid change
    with pytest.raises(credentials.CredentialsError, match=f"^{message}$"):
        credentials.switch_user({"cwd": "/nowhere", "caps": NO_DROP, "additional_gids": [], "gid": 1, "uid": 1}, True)


def test_a_failing_setresuid_stops_before_any_capability_change(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    syscalls_fake.fail("setresuid", errno.EPERM)
    with pytest.raises(PermissionError):
        prepare(make_plan(tmp_path), syscalls_fake)
    assert syscalls_fake.log[-1] == ("setresuid", 0, 0, 0)


def test_an_ambient_capability_the_kernel_refuses_is_a_warning(syscalls_fake: SyscallFake, tmp_path: Path) -> None:
    syscalls_fake.fail("prctl", errno.EPERM, lambda *args: args[:2] == (L.PR_CAP_AMBIENT, L.PR_CAP_AMBIENT_RAISE))
    prepare(make_plan(tmp_path), syscalls_fake)
    assert syscalls_fake.log[-1] == (
        "chan", "send", "warn", "process.capabilities: cannot raise CAP_KILL (ambient: Operation not permitted)")
