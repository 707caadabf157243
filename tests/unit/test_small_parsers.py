"""Pure helpers: signal names, /proc/PID/stat, mount options, capability sets, paths."""

from __future__ import annotations

import signal

import pytest

from ociish.linux import libc as L
from ociish.linux.caps import CAP_NUMBERS
from ociish.linux.proc import parse_stat
from ociish.linux.signals import parse_signal
from ociish.process.plan import capability_sets
from ociish.rootfs.mountopts import parse_options
from ociish.safepath import clean


@pytest.mark.parametrize("text,number", [
    ("0", 0), ("9", 9), ("KILL", 9), ("SIGKILL", 9), ("sigkill", 9), ("kill", 9), ("TERM", 15), ("SIGUSR1", 10),
    ("RTMIN+3", signal.SIGRTMIN + 3), ("SIGRTMAX-1", signal.SIGRTMAX - 1), ("SIGRTMIN", signal.SIGRTMIN),
])
def test_signal_forms(text: str, number: int) -> None:
    assert parse_signal(text) == number


def test_every_signal_name_of_the_signal_module() -> None:
    for sig in signal.Signals:
        assert parse_signal(sig.name) == parse_signal(sig.name[3:].lower()) == sig.value


@pytest.mark.parametrize("text", ["999", "NOPE", "SIG", "RTMIN+99", "-9", "", "SIG_DFL", "SIG_BLOCK", "NSIG"])
def test_bad_signals(text: str) -> None:
    with pytest.raises(ValueError):
        parse_signal(text)


def test_stat_with_spaces_and_parens_in_the_name() -> None:
    fields = " ".join(str(n) for n in range(3, 30))
    assert parse_stat(f"42 (a) b) (c) S {fields}") == ("S", 21)


def test_mount_options_split_into_flags_propagation_and_data() -> None:
    opts = parse_options(["rbind", "ro", "nosuid", "rprivate", "rro", "size=1m", "mode=755"])
    assert opts["bind"] and opts["rec"]
    assert opts["flags"] == L.MS_RDONLY | L.MS_NOSUID
    assert opts["propagation"] == [L.MS_PRIVATE | L.MS_REC]
    assert opts["attr_set"] == L.MOUNT_ATTR_RDONLY
    assert opts["data"] == "size=1m,mode=755"


def test_later_options_win() -> None:
    opts = parse_options(["ro", "rw", "noexec", "exec", "nodev"])
    assert opts["flags"] == L.MS_NODEV
    assert opts["clear"] & L.MS_RDONLY and opts["clear"] & L.MS_NOEXEC


def test_ridmap_wins_over_idmap_and_neither_is_data() -> None:
    assert parse_options(["rbind", "ridmap", "idmap"])["idmap"] == "ridmap"
    assert parse_options(["bind", "idmap"]) | {"data": ""} == parse_options(["bind", "idmap"])


def test_capabilities_that_cannot_be_granted_become_warnings() -> None:
    warnings: list[str] = []
    sets = capability_sets({
        "bounding": ["CAP_KILL", "CAP_CHOWN"],
        "permitted": ["CAP_KILL"],
        "effective": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_KILL", "CAP_SYS_ADMIN"],
        "ambient": ["CAP_KILL", "CAP_NET_RAW", "CAP_BOGUS"],
    }, warnings, available=(1 << 41) - 1)
    kill, chown = 1 << CAP_NUMBERS["CAP_KILL"], 1 << CAP_NUMBERS["CAP_CHOWN"]
    assert sets["bounding"] == kill | chown
    assert sets["effective"] == kill and sets["permitted"] == kill
    assert sets["inheritable"] == kill and sets["ambient"] == kill
    assert warnings == [  # one line each; ambient's CAP_NET_RAW silent, as runc (but for --debug)
        "process.capabilities: unknown capability 'CAP_BOGUS' ignored (ambient)",
        "process.capabilities: CAP_CHOWN cannot be granted (effective: not permitted)",
        "process.capabilities: CAP_SYS_ADMIN cannot be granted (inheritable: not in the bounding set)"]


def test_a_capability_named_in_several_sets_is_one_warning() -> None:
    """As runc's "ignoring unknown or unavailable capabilities": a typo copied into every set,
    or a capability the runtime lacks, is one problem and one line, naming the sets."""
    warnings: list[str] = []
    names = ["CAP_KILL", "CAP_SYS_TIME", "CAP_TYPO"]
    capability_sets({name: names for name in ("bounding", "effective", "permitted", "inheritable")}, warnings,
                    available=1 << CAP_NUMBERS["CAP_KILL"])
    assert warnings == [
        "process.capabilities: unknown capability 'CAP_TYPO' ignored (bounding, effective, permitted, inheritable)",
        "process.capabilities: CAP_SYS_TIME cannot be granted (bounding, effective, permitted, inheritable: the "
        "runtime does not hold it)"]


@pytest.mark.parametrize("path,expected", [
    ("/a/b", "/a/b"), ("a/b", "/a/b"), ("/../../etc", "/etc"), ("/a/./b//c/", "/a/b/c"), ("", "/"), ("/a/..", "/"),
])
def test_clean_never_climbs_above_root(path: str, expected: str) -> None:
    assert clean(path) == expected


def test_capabilities_the_runtime_lacks_are_dropped_with_a_warning() -> None:
    warnings: list[str] = []
    kill, resource = 1 << CAP_NUMBERS["CAP_KILL"], 1 << CAP_NUMBERS["CAP_SYS_RESOURCE"]
    sets = capability_sets({name: ["CAP_KILL", "CAP_SYS_RESOURCE"] for name in ("bounding", "effective", "permitted")},
                           warnings, available=kill)
    assert (sets["bounding"], sets["effective"], sets["permitted"]) == (kill, kill, kill)
    assert warnings == ["process.capabilities: CAP_SYS_RESOURCE cannot be granted (bounding, effective, permitted: "
                        "the runtime does not hold it)"]
    assert not resource & sets["bounding"]


def test_sysctls_must_be_isolated_by_a_namespace_of_the_container() -> None:
    from ociish.errors import ConfigError
    from ociish.process.plan import checked_sysctls

    ns = {"network": None, "ipc": "/proc/1/ns/ipc"}
    assert checked_sysctls({"net.ipv4.ip_forward": "1", "kernel/shmmax": "1", "fs.mqueue.msg_max": "5"}, ns) == {
        "net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.msg_max": "5"}
    with pytest.raises(ConfigError, match="not isolated by any namespace"):
        checked_sysctls({"kernel.printk_ratelimit": "7"}, ns)
    with pytest.raises(ConfigError, match="needs a uts namespace"):
        checked_sysctls({"kernel.domainname": "x"}, ns)
