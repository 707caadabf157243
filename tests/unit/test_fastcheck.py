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
    {"ociVersion": "1.3.0", "process": {"user": {"uid": 1.0, "gid": 0}, "cwd": "/", "args": ["a"]}},  # 1.0 is not an integer
    {"ociVersion": "1.3.0", "process": {"user": {"uid": 0, "gid": -0.0}, "cwd": "/", "args": ["a"]}},
    {"ociVersion": "1.3.0", "process": {"user": {"uid": 1, "gid": 0}, "cwd": "/", "args": ["a"]}},
    {"ociVersion": "1.3.0", "linux": {"namespaces": [{"type": "user"}], "uidMappings": [{"containerID": 0, "hostID": 1e3, "size": 1}]}},
    {"ociVersion": "1.3.0", "process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024.0, "soft": 1024}], "cwd": "/"}},
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


def _schema_patterns() -> set[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for name in SCHEMAS:
        walk(_load_schema(name))
    return found


PATTERN_SAMPLES = ["", "\n", "/", "a/", "/a\n", "MB:", "MB", "xMB:", "rwm", "rw\n", "rwx", "r\nw", "1.0.0", "1.3.0",
                   "1.4.0", "1.0.2-dev", "1.0.0+b.1", "1.0.0-rc.1+b-2", "1.0.01", "1.0.0-", "1.0.0-a..b", "1.0.0\n",
                   "1.0.0\n\n", "1.0.0+", "1.0.0+a+b", "1.0.0--", "1.0", "1.0.", "1.0.0x", "01.0.0", "1.0.0-é",
                   "1.0.١", "2MB", "2KB\n"]


@pytest.mark.parametrize("pattern", sorted(_schema_patterns()))
def test_every_schema_pattern_is_searched_as_re_searches_it(pattern: str) -> None:
    """The patterns checked without re (literals, ^[letters]*$, the ociVersion one) agree
    with re.search, on hand-picked edges and on generated strings and matches."""
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from ociish.spec.fastcheck import _pattern_search

    ours, reference = _pattern_search(pattern), re.compile(pattern).search
    for sample in PATTERN_SAMPLES:
        assert ours(sample) == (reference(sample) is not None), (pattern, sample)

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.from_regex(pattern), st.text(alphabet="01239.-+aZ/rwm\nMB:é", max_size=14)))
    def agrees(sample: str) -> None:
        assert ours(sample) == (reference(sample) is not None), (pattern, sample)

    agrees()


@pytest.mark.parametrize("value, integer", [(1, True), (-1, True), (2 ** 64, True), (1.0, False), (-0.0, False),
                                            (1e3, False), (1.5, False), (True, False), ("1", False)])
def test_an_integer_is_a_number_written_without_fraction_or_exponent(value: object, integer: bool) -> None:
    assert Compiler(lambda name: {"type": "integer"}).check("x")(value) is integer
    assert_same_verdict({"ociVersion": "1.3.0", "process": {"user": {"uid": value, "gid": 0}, "cwd": "/"}}, "config")
