"""process.scheduler, process.ioPriority, linux.personality and LSM labels, seen from inside."""

from __future__ import annotations

import json
import os

import pytest

from conftest import Bundle, Runtime, run_output, unique_id


def test_scheduler_policy_and_nice(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    bundle.shell("cut -d' ' -f19,41 /proc/self/stat")
    assert run_output(runtime, bundle).stdout.split() == ["7", "3"]  # nice 7, policy 3 = SCHED_BATCH


def test_realtime_scheduler(runtime: Runtime, bundle: Bundle) -> None:
    """A realtime policy needs realtime budget in the container's cpu cgroup (v1 RT group scheduling)."""
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
    bundle.config["linux"]["resources"]["cpu"] = {"realtimeRuntime": 10000, "realtimePeriod": 1000000}
    bundle.shell("cut -d' ' -f40,41 /proc/self/stat")
    assert run_output(runtime, bundle).stdout.split() == ["10", "1"]  # rt_priority 10, policy 1 = SCHED_FIFO


def test_io_priority(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    bundle.args("ionice")
    assert run_output(runtime, bundle).stdout.strip() == "idle"


def test_io_priority_class_alone_is_level_0(runtime: Runtime, bundle: Bundle, tmp_path) -> None:
    """The spec's schema requires only ioPriority.class (runc then uses level 0), for the
    init and for an exec'd process alike."""
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE"}
    bundle.args("sleep", "30")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    assert runtime("exec", cid, "ionice", "-p", "1", check=True).stdout.strip() == "best-effort: prio 0"
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["ionice"], "cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_IDLE"}}))
    assert runtime("exec", "--process", str(process), cid, check=True).stdout.strip() == "idle"
    runtime("delete", "--force", cid, check=True)


def test_personality_linux32(runtime: Runtime, bundle: Bundle) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("LINUX32 is checked through uname -m on x86_64")
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    bundle.args("uname", "-m")
    assert run_output(runtime, bundle).stdout.strip() == "i686"


def test_apparmor_profile_without_apparmor_is_a_clear_error(runtime: Runtime, bundle: Bundle) -> None:
    if os.path.exists("/sys/module/apparmor/parameters/enabled"):
        pytest.skip("AppArmor is enabled here; the profile would be applied")
    bundle.config["process"]["apparmorProfile"] = "docker-default"
    bundle.write()
    result = runtime("create", "--bundle", str(bundle.path), unique_id())
    assert result.returncode == 1 and "AppArmor is not enabled on this host" in result.stderr
    assert runtime.ids() == []
