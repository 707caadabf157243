"""Configs drawn from schemas/config.schema.json, for hypothesis: instances of any part of
the schema (hypothesis-jsonschema does not work with current hypothesis), junk values for
mutations, and a base config with one section replaced by a schema instance.  The
reliability tests feed them to create; the differential run (conformance/diff.py) runs
them under each runtime.  hypothesis is imported only by whoever imports this module."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SCHEMA: dict[str, Any] = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "config.schema.json")
                                    .read_text())

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # NUL bytes included
ABSURD_PATHS = ("", "/", ".", "..", "//", "../../../../etc", "/a/../../b", "/dev/null", "/proc/self/fd/999",
                "relative/path", "/x y", "/tmp/\n", "/\u202eevil", "~", "-", "a" * 5000, "/" + "a/" * 1500,
                "/" + "b" * 255 + "c")
HUGE_NUMBERS = (-1, -2 ** 31, 2 ** 31, 2 ** 32, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, -2 ** 63,
                -2 ** 63 - 1, 2 ** 64, 10 ** 30, 1e308, -0.5, 1.5, 0.0, -0.0, 1024.0, 1e3)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE_NUMBERS), st.floats(allow_nan=False),
                    TEXT, st.sampled_from(ABSURD_PATHS))
JUNK = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)


class SchemaStrategy:
    """A hypothesis strategy for instances of (a part of) the config schema: the
    keywords config.schema.json uses, with small sizes.  `not`, `if` and the cross-field
    rules are not honoured, so some instances are invalid: they must fail cleanly too."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.defs = schema.get("$defs", {})
        self.cache: dict[str, st.SearchStrategy] = {}

    def of(self, node: Any) -> st.SearchStrategy:
        if node is True or node == {}:
            return JUNK
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in self.cache:
                self.cache[name] = st.deferred(lambda: self.of(self.defs[name]))
            return self.cache[name]
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            return st.sampled_from(node["enum"])
        kinds = node.get("type")
        if isinstance(kinds, list):
            return st.one_of([self.of({**node, "type": kind}) for kind in kinds])
        if kinds == "object" or "properties" in node:
            return self._object(node)
        if kinds == "array":
            items = self.of(node.get("items", {}))
            return st.lists(items, min_size=node.get("minItems", 0), max_size=max(node.get("minItems", 0), 3))
        if kinds == "string":
            if "pattern" in node and not node["pattern"].startswith("\n"):
                return st.from_regex(node["pattern"], fullmatch=node["pattern"].endswith("$")).filter(
                    lambda s: len(s) < 200)
            return TEXT.filter(lambda s: len(s) >= node.get("minLength", 0)) | st.sampled_from(ABSURD_PATHS[1:])
        if kinds == "integer":
            low = node.get("minimum", node.get("exclusiveMinimum", -2 ** 63 - 1) + 1)
            integers = st.integers(low, node.get("maximum", 2 ** 64))
            return st.one_of(integers, integers, integers, integers.map(float))  # 1.0 is no integer
        if kinds == "number":
            return st.floats(allow_nan=False, allow_infinity=False)
        if kinds == "boolean":
            return st.booleans()
        if kinds == "null":
            return st.none()
        return JUNK

    def _object(self, node: dict[str, Any]) -> st.SearchStrategy:
        properties = node.get("properties", {})
        required = set(node.get("required", ()))
        base = st.fixed_dictionaries({k: self.of(v) for k, v in properties.items() if k in required},
                                     optional={k: self.of(v) for k, v in properties.items() if k not in required})
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and not properties:
            keys = self.of({"type": "string", **node.get("propertyNames", {})})
            return st.dictionaries(keys, self.of(extra), max_size=3)
        return base




SCHEMA_STRATEGY = SchemaStrategy(SCHEMA)


def sections(excluded: Collection[str] = ()) -> list[str]:
    """The config's top-level members and linux's, as `process` and `linux.resources`."""
    names = sorted(SCHEMA["properties"]) + [f"linux.{k}" for k in sorted(SCHEMA_STRATEGY.defs["linux"]["properties"])]
    return [name for name in names if name not in excluded and name != "root"]


def section_values(names: Collection[str]) -> st.SearchStrategy:
    """A schema instance for each named section, as {section: value}."""
    return st.fixed_dictionaries({name: SCHEMA_STRATEGY.of(_section_schema(name)) for name in names})


def _section_schema(name: str) -> Any:
    if name.startswith("linux."):
        return SCHEMA_STRATEGY.defs["linux"]["properties"][name.split(".", 1)[1]]
    return SCHEMA["properties"][name]


def grafted(base: Callable[[], dict[str, Any]], excluded: Collection[str] = ()) -> st.SearchStrategy:
    """``base()`` with one section (one of ``sections(excluded)``) replaced by a schema
    instance: valid more often than a whole generated config, so a runtime gets past its
    first check.  Draws (the section's name, the config)."""

    @st.composite
    def draw_one(draw: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
        config = base()
        section = draw(st.sampled_from(sections(excluded)))
        value = draw(SCHEMA_STRATEGY.of(_section_schema(section)))
        if section.startswith("linux."):
            config["linux"][section.split(".", 1)[1]] = value
        else:
            config[section] = value
        return section, config

    return draw_one()
