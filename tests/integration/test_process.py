"""config.json `process` and the process-related linux fields, observed by the container process
itself: args, env, cwd, user, umask, capabilities, noNewPrivileges, rlimits, oomScoreAdj,
sysctl, masked and read-only paths, stdio and inherited file descriptors."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, expect_create_failure, run_output, unique_id

# linux/capability.h numbers, independent of the runtime's own table
CAP = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
       "CAP_SYS_RESOURCE": 24, "CAP_AUDIT_WRITE": 29}
CAP_SETS = {"bounding": "CapBnd", "effective": "CapEff", "permitted": "CapPrm", "inheritable": "CapInh",
            "ambient": "CapAmb"}


def output_of(runtime: Runtime, bundle: Bundle, script: str) -> str:
    bundle.shell(script)
    return run_output(runtime, bundle).stdout


def status_fields(runtime: Runtime, bundle: Bundle, *names: str) -> dict[str, str]:
    """Fields of the container process's own /proc/self/status."""
    bundle.args("cat", "/proc/self/status")
    fields = dict(line.split(":", 1) for line in run_output(runtime, bundle).stdout.splitlines())
    return {name: " ".join(fields[name].split()) for name in names}


def mask(names: list[str]) -> int:
    return sum(1 << CAP[name] for name in names)


def has_capability(number: int) -> bool:
    with open("/proc/self/status") as f:
        effective = next(line for line in f if line.startswith("CapEff:"))
    return bool(int(effective.split()[1], 16) >> number & 1)


def run_with_fd3(runtime: Runtime, bundle: Bundle, fd3: Path, *flags: str) -> subprocess.CompletedProcess:
    """`ociish run` with ``fd3`` open as the runtime's fd 3, as a client passing a socket would."""
    argv = ["sh", "-c", 'exec 3<"$0"; exec "$@"', str(fd3), *runtime.command, "run", *flags,
            "--bundle", str(bundle.path), unique_id()]
    return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


# --- args, env, cwd, user, umask ---------------------------------------------------------


def test_args_are_passed_verbatim(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("sh", "-c", 'printf "%s|" "$0" "$@"', "zero", "one two", "", "*")
    assert run_output(runtime, bundle).stdout == "zero|one two||*|"


def test_env_is_exactly_the_configured_one(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin", "GREETING=hello world", "EMPTY="]
    bundle.args("env")  # env itself, not a shell that would add PWD/SHLVL
    assert sorted(run_output(runtime, bundle).stdout.splitlines()) == ["EMPTY=", "GREETING=hello world",
                                                                      "HOME=/root", "PATH=/bin:/usr/bin"]


@pytest.mark.parametrize("uid, home", [(0, "/root"), (1, "/usr/sbin"), (4321, "/")])
def test_home_comes_from_the_containers_passwd(runtime: Runtime, bundle: Bundle, uid: int, home: str) -> None:
    """process.env without HOME (or with an empty one): the user's home from the container's
    /etc/passwd, "/" without an entry, as runc; for exec'd processes too.  A HOME given wins."""
    bundle.config["process"]["user"] = {"uid": uid, "gid": uid}
    bundle.config["process"]["env"].append("HOME=")
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    assert runtime("exec", cid, "sh", "-c", "echo $HOME; tr '\\0' '\\n' < /proc/1/environ | grep ^HOME=",
                   check=True).stdout.split() == [home, f"HOME={home}"]
    assert runtime("exec", "--env", "HOME=/given", cid, "sh", "-c", "echo $HOME", check=True).stdout.strip() == "/given"
    runtime("delete", "--force", cid, check=True)


def test_home_lookup_stays_inside_the_rootfs(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """The container's /etc/passwd is read inside its root: a symlink to a host path finds
    nothing there (HOME "/"), and a fifo in its place does not block the create."""
    host_passwd = tmp_path / "host-passwd"
    host_passwd.write_text("someone:x:4321:4321::/host-home:/bin/sh\n")
    passwd = bundle.rootfs / "etc" / "passwd"
    passwd.unlink()
    passwd.symlink_to(host_passwd)
    bundle.config["process"]["user"] = {"uid": 4321, "gid": 4321}
    assert output_of(runtime, bundle, "echo $HOME").strip() == "/"
    passwd.unlink()
    os.mkfifo(passwd)
    assert output_of(runtime, bundle, "echo $HOME").strip() == "/"


def test_cwd_is_the_working_directory(runtime: Runtime, bundle: Bundle) -> None:
    (bundle.rootfs / "work" / "dir").mkdir(parents=True)
    bundle.config["process"]["cwd"] = "/work/dir"
    assert output_of(runtime, bundle, "pwd; pwd -P").split() == ["/work/dir", "/work/dir"]


def test_user_uid_gid_and_additional_gids(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 100, 1001]}
    out = output_of(runtime, bundle, "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    ids, status = out.splitlines()[:3], out.splitlines()[3:]
    assert ids == ["1000", "1001", "1001 5 100"]
    assert [" ".join(line.split()) for line in status] == ["Uid: 1000 1000 1000 1000", "Gid: 1001 1001 1001 1001",
                                                           "Groups: 5 100 1001"]


def test_callers_supplementary_groups_do_not_leak(runtime: Runtime, bundle: Bundle) -> None:
    bundle.args("grep", "Groups", "/proc/self/status")
    result = runtime("run", "--bundle", str(bundle.path), unique_id(), preexec_fn=lambda: os.setgroups([4242, 77]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Groups:"]


def test_umask_is_applied(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["user"]["umask"] = 0o027
    assert output_of(runtime, bundle, "umask; touch /tmp/f; stat -c %a /tmp/f").split() == ["0027", "640"]


def test_unset_umask_is_the_callers(runtime: Runtime, bundle: Bundle) -> None:
    """config.md: if unspecified, the umask should not be changed from the calling process' umask."""
    bundle.config["process"]["user"].pop("umask", None)
    bundle.shell("umask")
    result = runtime("run", "--bundle", str(bundle.path), unique_id(), preexec_fn=lambda: os.umask(0o077))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0077"


# --- capabilities and privileges ---------------------------------------------------------

BOUNDING = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
CAPABILITY_CASES = {
    # root: exec re-grants permitted = bounding | inheritable, so a consistent config keeps them equal
    "root-with-ambient": ({"uid": 0, "gid": 0}, {
        "bounding": BOUNDING, "effective": BOUNDING, "permitted": BOUNDING,
        "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]}),
    # non-root: only ambient capabilities survive exec, so permitted = effective = ambient
    "user-with-ambient": ({"uid": 1000, "gid": 1000}, {
        "bounding": BOUNDING, "effective": ["CAP_KILL", "CAP_NET_RAW"], "permitted": ["CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"], "ambient": ["CAP_KILL", "CAP_NET_RAW"]}),
    "spec-default": ({"uid": 0, "gid": 0}, {
        "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]}),
}


@pytest.mark.parametrize("case", list(CAPABILITY_CASES))
def test_capability_sets_are_exactly_the_configured_masks(runtime: Runtime, bundle: Bundle, case: str) -> None:
    user, caps = CAPABILITY_CASES[case]
    bundle.config["process"]["user"] = user
    bundle.config["process"]["capabilities"] = caps
    fields = status_fields(runtime, bundle, *CAP_SETS.values())
    seen = {name: int(fields[field], 16) for name, field in CAP_SETS.items()}
    assert seen == {name: mask(caps.get(name, [])) for name in CAP_SETS}


def test_dropped_capability_is_really_missing(runtime: Runtime, bundle: Bundle) -> None:
    """Without CAP_CHOWN even root cannot chown a file it owns to another user."""
    bundle.shell("touch /tmp/f; chown 1 /tmp/f 2>/dev/null && echo chowned || echo refused")
    assert run_output(runtime, bundle).stdout.strip() == "refused"
    bundle.config["process"]["capabilities"] = {k: ["CAP_CHOWN"] for k in ("bounding", "effective", "permitted")}
    assert run_output(runtime, bundle.write()).stdout.strip() == "chowned"


def test_no_capabilities_member_is_no_capabilities(runtime: Runtime, bundle: Bundle) -> None:
    """As runc and crun: a process without `capabilities` gets none, for run and exec,
    never all of the runtime's."""
    del bundle.config["process"]["capabilities"]
    bundle.shell("grep -E '^Cap(Prm|Eff|Bnd):' /proc/self/status; sleep 1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    try:
        caps = runtime("exec", cid, "grep", "-E", "^Cap(Prm|Eff|Bnd):", "/proc/self/status", check=True).stdout
        assert caps.split() == ["CapPrm:", "0" * 16, "CapEff:", "0" * 16, "CapBnd:", "0" * 16], caps
    finally:
        runtime("delete", "--force", cid, check=True)


def test_unknown_capability_is_a_warning(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["capabilities"] = {k: ["CAP_KILL", "CAP_NOT_A_CAPABILITY"]
                                                for k in ("bounding", "effective", "permitted")}
    bundle.args("grep", "CapEff", "/proc/self/status")
    result = run_output(runtime, bundle)
    assert int(result.stdout.split()[1], 16) == mask(["CAP_KILL"])
    assert "warning" in result.stderr and "CAP_NOT_A_CAPABILITY" in result.stderr


def test_capability_the_runtime_lacks_is_a_warning(runtime: Runtime, bundle: Bundle) -> None:
    if has_capability(CAP["CAP_SYS_RESOURCE"]):
        pytest.skip("the runtime holds CAP_SYS_RESOURCE here, so it can be granted")
    bundle.config["process"]["capabilities"] = {k: ["CAP_KILL", "CAP_SYS_RESOURCE"]
                                                for k in ("bounding", "effective", "permitted")}
    bundle.args("grep", "CapEff", "/proc/self/status")
    result = run_output(runtime, bundle)
    assert int(result.stdout.split()[1], 16) == mask(["CAP_KILL"])
    assert "warning" in result.stderr and "CAP_SYS_RESOURCE" in result.stderr


@pytest.mark.parametrize("enabled", [True, False])
def test_no_new_privileges(runtime: Runtime, bundle: Bundle, enabled: bool) -> None:
    bundle.config["process"]["noNewPrivileges"] = enabled
    assert status_fields(runtime, bundle, "NoNewPrivs") == {"NoNewPrivs": "1" if enabled else "0"}


# --- rlimits and oomScoreAdj -------------------------------------------------------------


def test_rlimits_are_set(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
                                           {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}]
    lines = output_of(runtime, bundle, "ulimit -n; ulimit -Hn; grep -E '^Max (open files|core)' /proc/self/limits")
    first, second, *limits = lines.splitlines()
    assert (first, second) == ("512", "2048")
    assert sorted(" ".join(line.split()[-3:-1]) for line in limits) == ["0 4096", "512 2048"]


def test_rlimit_above_the_runtimes_hard_limit_fails_cleanly(runtime: Runtime, bundle: Bundle) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or has_capability(CAP["CAP_SYS_RESOURCE"]):
        pytest.skip("this host may raise RLIMIT_NOFILE freely (unlimited hard limit or CAP_SYS_RESOURCE)")
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]
    expect_create_failure(runtime, bundle, "process.rlimits[0]", "RLIMIT_NOFILE")


def test_oom_score_adj_is_set(runtime: Runtime, bundle: Bundle) -> None:
    current = int(Path("/proc/self/oom_score_adj").read_text())
    bundle.config["process"]["oomScoreAdj"] = min(current + 123, 1000)
    assert output_of(runtime, bundle, "cat /proc/self/oom_score_adj").strip() == str(min(current + 123, 1000))


def test_unset_oom_score_adj_is_inherited_unchanged(runtime: Runtime, bundle: Bundle) -> None:
    """config.md: without oomScoreAdj the runtime MUST NOT change oom_score_adj."""
    bundle.config["process"].pop("oomScoreAdj", None)
    bundle.shell("cat /proc/self/oom_score_adj")
    caller = min(int(Path("/proc/self/oom_score_adj").read_text()) + 77, 1000)

    def raise_own_score() -> None:  # raising one's own score needs no privilege
        Path("/proc/self/oom_score_adj").write_text(str(caller))

    result = runtime("run", "--bundle", str(bundle.path), unique_id(), preexec_fn=raise_own_score)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(caller)


def test_lowering_oom_score_adj_without_privilege_fails_cleanly(runtime: Runtime, bundle: Bundle) -> None:
    current = int(Path("/proc/self/oom_score_adj").read_text())
    if has_capability(CAP["CAP_SYS_RESOURCE"]):
        pytest.skip("the runtime has CAP_SYS_RESOURCE here: lowering oom_score_adj is allowed")
    if current <= -1000:
        pytest.skip("oom_score_adj is already at its minimum")
    bundle.config["process"]["oomScoreAdj"] = current - 1
    expect_create_failure(runtime, bundle, "process.oomScoreAdj")


# --- sysctl, masked and read-only paths --------------------------------------------------


def test_sysctl_is_set_in_the_containers_namespaces_only(runtime: Runtime, bundle: Bundle) -> None:
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    host_msgmax = Path("/proc/sys/kernel/msgmax").read_text()
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}
    out = output_of(runtime, bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax")
    assert out.split() == ["1", "12345"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward
    assert Path("/proc/sys/kernel/msgmax").read_text() == host_msgmax


def test_unknown_sysctl_fails_cleanly(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    expect_create_failure(runtime, bundle, "linux.sysctl", "net.ipv4.no_such_knob")


@pytest.mark.parametrize("key, unshared", [("kernel.printk_ratelimit", None), ("net.ipv4.tcp_keepalive_probes", "network")])
def test_sysctl_outside_the_containers_namespaces_is_refused(runtime: Runtime, bundle: Bundle, key: str,
                                                              unshared: str | None) -> None:
    """A global sysctl, or a net.* one without a new network namespace, would change the host."""
    if unshared:
        bundle.config["linux"]["namespaces"].remove({"type": unshared})
    host_file = Path("/proc/sys", *key.split("."))
    before = host_file.read_text()
    bundle.config["linux"]["sysctl"] = {key: str(int(before) + 1)}
    try:
        expect_create_failure(runtime, bundle, "linux.sysctl", key)
    finally:  # put the host back first, and report a changed host above anything else
        after = host_file.read_text()
        if after != before:
            host_file.write_text(before)
        assert after == before, f"the container changed the host's {key} ({before.strip()} -> {after.strip()})"


def test_masked_paths_read_empty(runtime: Runtime, bundle: Bundle) -> None:
    assert Path("/proc/timer_list").read_text(), "the host's /proc/timer_list is expected to have content"
    secret = bundle.rootfs / "secret"
    secret.mkdir()
    (secret / "key").write_text("hunter2\n")
    bundle.config["linux"]["maskedPaths"] = ["/proc/timer_list", "/secret", "/etc/motd", "/does/not/exist"]
    out = output_of(runtime, bundle, "wc -c < /proc/timer_list; wc -c < /etc/motd; ls -A /secret | wc -l; "
                                     "touch /secret/new 2>/dev/null && echo writable || echo read-only")
    assert out.split() == ["0", "0", "0", "read-only"]
    assert (secret / "key").read_text() == "hunter2\n"


def test_readonly_paths_cannot_be_written(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["readonlyPaths"] = ["/proc/sys", "/etc"]
    out = output_of(runtime, bundle, "grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6; "
                                     "for p in /etc/new /tmp/new; do touch $p 2>/dev/null && echo $p=rw || echo $p=ro; done; "
                                     "echo 1 2>/dev/null > /proc/sys/kernel/domainname && echo sys=rw || echo sys=ro")
    options, *writes = out.split()
    assert "ro" in options.split(",")
    assert writes == ["/etc/new=ro", "/tmp/new=rw", "sys=ro"]


# --- the executable ----------------------------------------------------------------------


@pytest.mark.parametrize("arg0, message", [("no-such-command", "executable file not found"),
                                           ("/bin/no-such-file", "no such file")])
def test_missing_executable_fails_create_cleanly(runtime: Runtime, bundle: Bundle, arg0: str, message: str) -> None:
    bundle.config["process"]["args"] = [arg0]
    expect_create_failure(runtime, bundle, "process.args[0]", arg0, message)


# --- stdio and file descriptors ----------------------------------------------------------


def test_stdio_is_the_runtimes_when_terminal_is_false(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    stdin = tmp_path / "stdin.txt"
    stdin.write_text("line one\nline two\n")
    bundle.shell("cat; echo to-stderr >&2; test -t 0 || echo not-a-tty")
    with open(stdin) as f:
        result = runtime("run", "--bundle", str(bundle.path), unique_id(), stdin=f)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "line one\nline two\nnot-a-tty\n"
    assert result.stderr == "to-stderr\n"


def test_only_stdio_fds_reach_the_process(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """Even with an extra fd open in the runtime, the shell (not `ls`) sees exactly 0, 1 and 2."""
    extra = tmp_path / "extra.txt"
    extra.write_text("passed\n")
    bundle.shell("ls /proc/$$/fd; true")  # not the last command: sh would exec ls and list ls's own fds
    result = run_with_fd3(runtime, bundle, extra)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "2"]


def test_preserve_fds_passes_fd_3(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("passed\n")
    bundle.shell("ls /proc/$$/fd; cat <&3")
    result = run_with_fd3(runtime, bundle, extra, "--preserve-fds", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "2", "3", "passed"]


def test_missing_cwd_is_created_inside_the_rootfs(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["cwd"] = "/work/dir"
    assert output_of(runtime, bundle, "pwd").strip() == "/work/dir"
    assert (bundle.rootfs / "work" / "dir").is_dir()
