"""linux.memoryPolicy, seen from inside: the task policy numa_maps shows, on this host's node 0.

/proc/self/numa_maps prints the policy each mapping allocates under (the task's, for
mappings without one of their own); Mems_allowed_list is the cpuset's, which a memory
policy narrows within but never changes.
"""

from __future__ import annotations

import json

import pytest

from conftest import Bundle, Runtime, run_output, unique_id
from test_errors import assert_clean_failure

SHOW = "head -1 /proc/self/numa_maps | cut -d' ' -f2; grep Mems_allowed_list /proc/self/status | cut -f2"


@pytest.mark.parametrize("spec,shown", [
    ({"mode": "MPOL_DEFAULT"}, "default"),
    ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
    ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "interleave=static:0"),
    ({"mode": "MPOL_LOCAL"}, "local"),
])
def test_the_container_runs_under_the_policy(runtime: Runtime, bundle: Bundle, spec: dict, shown: str) -> None:
    bundle.config["linux"]["memoryPolicy"] = spec
    bundle.shell(SHOW)
    assert run_output(runtime, bundle).stdout.split() == [shown, "0"]


def test_exec_runs_under_the_containers_policy(runtime: Runtime, bundle: Bundle) -> None:
    """The policy is the container's: a process `exec` starts gets it too."""
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    bundle.args("sleep", "30")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    try:
        assert runtime("exec", cid, "sh", "-c", SHOW, check=True).stdout.split() == ["bind:0", "0"]
    finally:
        runtime("delete", "--force", cid, check=True)


def test_a_node_the_host_lacks_is_refused(runtime: Runtime, bundle: Bundle) -> None:
    """The kernel would drop node 1 from "0-1" without a word, and refuse "1" with a bare EINVAL."""
    with open("/sys/devices/system/node/has_memory") as f:
        if f.read().strip() != "0":
            pytest.skip("node 1 is a memory node of this host")
    for nodes in ("1", "0-1"):
        bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": nodes}
        bundle.write()
        err = assert_clean_failure(runtime, bundle, "config.json: linux.memoryPolicy.nodes: node 1 is not a memory "
                                   "node of this host (it has: 0;")
        assert len(err.strip().splitlines()) == 1


def test_nodes_with_mpol_default_are_refused(runtime: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_DEFAULT", "nodes": "0"}
    bundle.write()
    assert_clean_failure(runtime, bundle, "config.json: linux.memoryPolicy.nodes: '0': MPOL_DEFAULT takes no nodes")


def test_features_lists_the_modes(runtime: Runtime) -> None:
    policy = json.loads(runtime("features", check=True).stdout)["linux"]["memoryPolicy"]
    assert "MPOL_BIND" in policy["modes"] and "MPOL_F_STATIC_NODES" in policy["flags"]
