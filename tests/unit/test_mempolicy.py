"""linux.memoryPolicy → set_mempolicy arguments, and the refusals checked before any process exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ociish.errors import ConfigError
from ociish.linux.mempolicy import FLAGS, MODES, parse_nodes, policy


@pytest.fixture
def nodes(tmp_path: Path) -> str:
    """A sysfs node directory of a host with memory on nodes 0-1 and 4."""
    (tmp_path / "has_memory").write_text("0-1,4\n")
    return str(tmp_path)


@pytest.mark.parametrize("text,expected", [
    ("", []), ("0", [0]), ("0-3,7", [0, 1, 2, 3, 7]), (" 1 , 2-2", [1, 2]),
])
def test_node_lists(text: str, expected: list[int]) -> None:
    assert parse_nodes(text) == expected


@pytest.mark.parametrize("text", ["a", "0-", "-1", "3-1", "0,,1", "1.5"])
def test_bad_node_lists_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"linux\.memoryPolicy\.nodes: .* is not a node list like 0-3,7"):
        parse_nodes(text)


@pytest.mark.parametrize("spec,expected", [
    ({"mode": "MPOL_DEFAULT"}, (0, [], 0)),
    ({"mode": "MPOL_LOCAL"}, (4, [], 0)),
    ({"mode": "MPOL_PREFERRED"}, (1, [], 0)),  # the local node
    ({"mode": "MPOL_PREFERRED", "nodes": "1"}, (1, [0b10], 65)),
    ({"mode": "MPOL_BIND", "nodes": "0-1,4"}, (2, [0b10011], 65)),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0,4", "flags": ["MPOL_F_STATIC_NODES"]}, (3 | 1 << 15, [0b10001], 65)),
    ({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}, (6, [1], 65)),
    ({"mode": "MPOL_PREFERRED_MANY", "nodes": "1", "flags": ["MPOL_F_NUMA_BALANCING"]}, (5 | 1 << 13, [2], 65)),
    # relative nodes are positions in the allowed set: any number goes
    ({"mode": "MPOL_BIND", "nodes": "70", "flags": ["MPOL_F_RELATIVE_NODES"]}, (2 | 1 << 14, [0, 1 << 6], 129)),
    # static nodes may name nodes still to come, as long as one is there
    ({"mode": "MPOL_BIND", "nodes": "0,9", "flags": ["MPOL_F_STATIC_NODES"]}, (2 | 1 << 15, [0b1000000001], 65)),
])
def test_set_mempolicy_arguments(nodes: str, spec: dict[str, Any], expected: tuple[int, list[int], int]) -> None:
    assert policy(spec, nodes) == expected


@pytest.mark.parametrize("spec,message", [
    ({"mode": "MPOL_DEFAULT", "nodes": "0"}, r"linux\.memoryPolicy\.nodes: '0': MPOL_DEFAULT takes no nodes"),
    ({"mode": "MPOL_LOCAL", "nodes": "0-1"}, r"linux\.memoryPolicy\.nodes: '0-1': MPOL_LOCAL takes no nodes"),
    ({"mode": "MPOL_DEFAULT", "flags": ["MPOL_F_STATIC_NODES"]}, r"linux\.memoryPolicy\.flags: MPOL_DEFAULT takes no flags"),
    ({"mode": "MPOL_BIND"}, r"linux\.memoryPolicy\.nodes: MPOL_BIND needs at least one node"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": ""}, r"linux\.memoryPolicy\.nodes: MPOL_INTERLEAVE needs at least one node"),
    ({"mode": "MPOL_PREFERRED", "flags": ["MPOL_F_STATIC_NODES"]},
     r"linux\.memoryPolicy\.nodes: MPOL_PREFERRED with MPOL_F_STATIC_NODES needs at least one node"),
    ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
     r"linux\.memoryPolicy\.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"),
    ({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]},
     r"linux\.memoryPolicy\.flags: MPOL_F_NUMA_BALANCING needs mode MPOL_BIND or MPOL_PREFERRED_MANY"),
    ({"mode": "MPOL_BIND", "nodes": "0-2"}, r"linux\.memoryPolicy\.nodes: node 2 is not a memory node of this host \(it has: 0, 1, 4;"),
    ({"mode": "MPOL_PREFERRED", "nodes": "3"}, r"linux\.memoryPolicy\.nodes: node 3 is not a memory node"),
    ({"mode": "MPOL_BIND", "nodes": "5-6", "flags": ["MPOL_F_STATIC_NODES"]}, r"node 5 is not a memory node"),
])
def test_refused_combinations_name_the_field(nodes: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        policy(spec, nodes)


def test_a_node_beyond_any_nodemask_is_refused_before_the_list_is_built() -> None:
    with pytest.raises(ConfigError, match=r"linux\.memoryPolicy\.nodes: '0-99999999999': node 99999999999 is beyond"):
        parse_nodes("0-99999999999")


def test_a_kernel_without_numa_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"linux\.memoryPolicy: this kernel has no NUMA memory policies"):
        policy({"mode": "MPOL_BIND", "nodes": "0"}, str(tmp_path / "node"))


def test_the_tables_are_the_schemas_enums() -> None:
    """Every mode and flag config.json may name maps to a set_mempolicy value."""
    import json
    import os

    from ociish.spec.validate import SCHEMA_DIR

    with open(os.path.join(SCHEMA_DIR, "config.schema.json")) as f:
        schema = json.load(f)
    properties = schema["$defs"]["linux"]["properties"]["memoryPolicy"]["properties"]
    assert sorted(MODES) == sorted(properties["mode"]["enum"])
    assert sorted(FLAGS) == sorted(properties["flags"]["items"]["enum"])
