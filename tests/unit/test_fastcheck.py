"""ociish.spec.fastcheck: the compiled yes/no check gives jsonschema's verdict.

Every document the suite validates in-process (test_schemas, test_validate and the
hypothesis-generated configs of test_reliability_input) and every config a test writes
is checked against jsonschema by tests/conftest.py; these are the edge cases of the
keywords' semantics, and the guard that keeps the schemas within what it implements.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import assert_same_verdict
from ociish.spec.fastcheck import Compiler, UnsupportedSchema
from ociish.spec.validate import SCHEMA_DIR, _load_schema

SCHEMAS = sorted(p.name.removesuffix(".schema.json") for p in Path(SCHEMA_DIR).glob("*.schema.json"))


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_compiles(name: str) -> None:
    assert Compiler(_load_schema).check(name)({}) in (True, False)


def test_a_keyword_it_does_not_implement_is_refused() -> None:
    with pytest.raises(UnsupportedSchema, match="'uniqueItems'"):
        Compiler(lambda name: {"type": "array", "uniqueItems": True}).check("x")


EDGES = [
    {"ociVersion": "1.3.0", "process": {"user": {"uid": 1.0, "gid": 0}, "cwd": "/", "args": ["a"]}},  # 1.0 is an integer
    {"ociVersion": "1.3.0", "process": {"user": {"uid": True, "gid": 0}, "cwd": "/"}},  # true is not
    {"ociVersion": "1.3.0", "process": {"user": {"uid": 1.5, "gid": 0}, "cwd": "/"}},
    {"ociVersion": "1.3.0", "root": {"path": "r", "readonly": 1}},
    {"ociVersion": "1.3.0", "linux": {"namespaces": [{"type": "pid"}, {"type": 1}]}},
    {"ociVersion": "1.3.0", "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}}},
    {"ociVersion": "1.3.0", "linux": {"uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}},
    {"ociVersion": "1.3.0", "linux": {"resources": {"memory": {"limit": -1, "swap": 2 ** 64}}}},
    {"ociVersion": "1.3.0", "hooks": {"prestart": [{"path": "relative"}]}},
    {"ociVersion": "1.3.0", "annotations": {"a": 1}},
    {"ociVersion": "1.3.0", "mounts": [{"destination": "/x", "type": "bind", "options": ["rbind", 3]}]},
    {"ociVersion": "v1.3.0"},
    [],
    None,
]


@pytest.mark.parametrize("document", EDGES)
def test_edge_cases_get_jsonschemas_verdict(document: object) -> None:
    assert_same_verdict(document, "config")
