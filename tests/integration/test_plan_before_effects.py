"""The plan of a create, through the CLI: what cannot be planned is refused before anything
exists, and `--debug` records each step of the real create in --log as it happens."""

from __future__ import annotations

import json
import os
from pathlib import Path
import pytest

from conftest import Bundle, Runtime, cgroup_dirs, unique_id

MiB = 1 << 20

# linux.resources the kernel would refuse, known before the first side effect
REFUSED = {
    "swap below the memory limit": ({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}},
                                    "linux.resources.memory.swap: memory+swap (33554432) must be >= memory.limit"),
    "a quota below 1 ms": ({"cpu": {"quota": 500}}, "linux.resources.cpu.quota: must be at least 1000 µs"),
    "a period above 1 s": ({"cpu": {"quota": 50000, "period": 2_000_000}},
                           "linux.resources.cpu.period: must be between 1000 and 1000000 µs"),
    "a cpu the host lacks": ({"cpu": {"cpus": "0-4095"}}, "linux.resources.cpu.cpus: '0-4095' names cpu"),
    "a malformed cpu list": ({"cpu": {"cpus": "0-one"}}, "linux.resources.cpu.cpus: '0-one' is not a cpu list"),
    "a memory node the host lacks": ({"cpu": {"mems": "0,63"}}, "linux.resources.cpu.mems: '0,63' names memory node 63"),
}


def debug_steps(log: Path) -> list[tuple[str, str]]:
    """(stage, step) of every step line of a --log-format json file, in order."""
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [(line["stage"], line["step"]) for line in lines if "step" in line]


@pytest.mark.parametrize("case", REFUSED)
def test_a_resource_the_kernel_would_refuse_fails_before_anything_exists(runtime: Runtime, bundle: Bundle,
                                                                         tmp_path: Path, case: str) -> None:
    resources, message = REFUSED[case]
    ran = tmp_path / "hook-ran"
    bundle.config["linux"]["resources"].update(resources)
    # a rollback after the init had started would run poststop (runtime.md step 12)
    bundle.config["hooks"] = {kind: [{"path": "/bin/touch", "args": ["touch", str(ran)]}]
                              for kind in ("createRuntime", "poststop")}
    bundle.args("true")
    cid = unique_id()
    log = tmp_path / "debug.log"
    result = runtime("--debug", "--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle.path), cid)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [result.stderr.strip()] and result.stderr.startswith(f"ociish: {message}"), \
        result.stderr
    assert not ran.exists(), "the init was started"
    assert debug_steps(log) == [], "create took a step"
    assert not runtime.root.exists() or not any(runtime.root.iterdir()), "create recorded the container"
    assert not cgroup_dirs(cid)


def test_debug_writes_each_setup_step_to_the_log(runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.config["linux"]["resources"].update({"pids": {"limit": 64}, "memory": {"limit": 64 * MiB}})
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    bundle.args("true")
    log = tmp_path / "debug.log"
    cid = unique_id()
    runtime("--debug", "--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle.path), cid,
            check=True)
    steps = debug_steps(log)
    mounts = [("init", f"mounts[{i}] ({m['destination']})") for i, m in enumerate(bundle.config["mounts"])]
    expected = [
        ("create", "planned"), ("create", "state"), ("create", "cgroup"), ("create", "bootstrap"),
        ("bootstrap", "linux.namespaces"), ("bootstrap", "fork init"),
        ("init", "root.path"), *mounts, ("init", "linux.devices"), ("init", "hooks"),
        ("create", "linux.resources.memory.limit: memory.limit_in_bytes = 67108864"),
        ("create", "linux.resources.pids.limit: pids.max = 64"), ("create", "hooks.prestart"),
        ("init", "pivot_root"), ("init", "process.rlimits"), ("create", "process.rlimits[0] (RLIMIT_NOFILE)"),
        ("init", "process.capabilities"), ("init", "created"),
    ]
    at = 0
    for step in expected:  # in this order, among the others
        assert step in steps[at:], (step, steps)
        at = steps.index(step, at) + 1
    # without --debug, none
    quiet = tmp_path / "quiet.log"
    runtime("--log", str(quiet), "--log-format", "json", "create", "--bundle", str(bundle.path), unique_id(),
            check=True)
    assert debug_steps(quiet) == []


def test_a_failing_step_is_named_by_the_error_and_last_in_the_debug_log(runtime: Runtime, bundle: Bundle,
                                                                        tmp_path: Path) -> None:
    bundle.config["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "none"})
    bundle.args("true")
    log = tmp_path / "debug.log"
    result = runtime("--debug", "--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle.path),
                     unique_id())
    assert result.returncode == 1
    step = f"mounts[{len(bundle.config['mounts']) - 1}] (/mnt)"
    assert result.stderr.startswith(f"ociish: {step}: "), result.stderr
    assert debug_steps(log)[-1] == ("init", step)


def host_snapshot(runtime: Runtime, bundle: Bundle, cid: str) -> dict[str, object]:
    """What a create would change on the host, as far as this bundle is concerned: the state
    root, the container's cgroups, the mounts naming the bundle, the processes rooted in it."""
    rooted = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/root").startswith(str(bundle.path)):
                rooted.append(pid)
        except OSError:
            continue
    mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(bundle.path) in line]
    state = sorted(str(p) for p in runtime.root.rglob("*")) if runtime.root.exists() else None
    return {"state": state, "cgroups": cgroup_dirs(cid), "mounts": mounts, "processes": rooted}


def dry_run_steps(runtime: Runtime, bundle: Bundle, cid: str, *flags: str) -> list[dict[str, str]]:
    result = runtime("create", "--dry-run", "--format", "json", *flags, "--bundle", str(bundle.path), cid, check=True)
    return json.loads(result.stdout)["steps"]


CONFIGS = {
    "default": lambda c: None,
    "limits, rlimits, hooks, sysctl": lambda c: (
        c["linux"]["resources"].update({"memory": {"limit": 64 * MiB, "swap": 128 * MiB}, "pids": {"limit": 99},
                                        "cpu": {"shares": 512, "quota": 20000, "period": 100000}}),
        c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
                                     {"type": "RLIMIT_NPROC", "soft": 100, "hard": 100}], oomScoreAdj=100),
        c.update(hooks={"prestart": [{"path": "/bin/true"}], "createRuntime": [{"path": "/bin/true"}],
                        "createContainer": [{"path": "/bin/true"}], "startContainer": [{"path": "/bin/true"}]}),
        c["linux"].update(sysctl={"net.ipv4.ip_forward": "1"})),
    "a user namespace and seccomp": lambda c: (
        c["linux"]["namespaces"].append({"type": "user"}),
        c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 0, "size": 65536}],
                          gidMappings=[{"containerID": 0, "hostID": 0, "size": 65536}],
                          seccomp={"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mknod"], "action": "SCMP_ACT_ERRNO"}]}),
        c["process"].update(noNewPrivileges=False)),
}


@pytest.mark.parametrize("case", CONFIGS)
def test_dry_run_touches_nothing_and_names_the_steps_create_then_takes(runtime: Runtime, bundle: Bundle,
                                                                       tmp_path: Path, case: str) -> None:
    CONFIGS[case](bundle.config)
    bundle.args("true")
    cid = unique_id()
    before = host_snapshot(runtime, bundle, cid)
    planned = dry_run_steps(runtime, bundle, cid)
    text = runtime("create", "--dry-run", "--bundle", str(bundle.path), cid, check=True).stdout
    assert host_snapshot(runtime, bundle, cid) == before
    assert planned[1] == {"stage": "create", "step": "state", "detail": str(runtime.root / cid)}
    assert [line.split(None, 1)[1].split(": ")[0] for line in text.splitlines()[1:]] \
        == [step["step"].split(": ")[0] for step in planned]  # the same steps, readable
    log = tmp_path / "debug.log"
    runtime("--debug", "--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle.path), cid,
            check=True)
    assert debug_steps(log) == [(s["stage"], s["step"]) for s in planned if s["stage"] != "start"]
    assert host_snapshot(runtime, bundle, cid) != before  # the real one did change the host


def test_run_dry_run_refuses_what_create_refuses_and_touches_nothing(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["resources"].update({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}})
    bundle.args("true")
    cid = unique_id()
    before = host_snapshot(runtime, bundle, cid)
    result = runtime("run", "--dry-run", "--bundle", str(bundle.path), cid)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("ociish: linux.resources.memory.swap:"), result.stderr
    assert host_snapshot(runtime, bundle, cid) == before
