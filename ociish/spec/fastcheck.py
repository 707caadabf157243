"""A compiled yes/no check of a document against schemas/, for the commands on the hot path.

jsonschema is the validator of record: it finds and explains every error.  Importing it
and building its validator cost ~60 ms, paid by every `create` for a config that is
almost always valid.  This module compiles the same schemas, once per process, into
nested closures (about a millisecond) that only answer "conforms or not"; a document
they reject goes to jsonschema for the messages (ociish.spec.validate).

It implements exactly the keywords schemas/ uses, with jsonschema's Draft 2020-12
semantics but for one thing, "integer" (see ``is_integer``: ociish.spec.validate gives
jsonschema the same type check), and refuses to compile any other keyword, so a schema
cannot outgrow it silently.  The test suite checks that its verdict equals jsonschema's on every document
it validates (tests/conftest.py).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    Check = Callable[[Any], bool]

# Keywords that never change the verdict.
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples",
                          "x-expected"})


# The ociVersion pattern of config.schema.json, matched without re (see _pattern_search).
OCI_VERSION_PATTERN = (r"^1\.[0-3]\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
                       r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
_REGEX_SYNTAX = frozenset("\\.^$*+?{}[]|()")
_DIGITS = frozenset("0123456789")
_IDENTIFIER_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


def _pattern_search(regex: str) -> Callable[[str], bool]:
    """Whether ``regex`` is found in a string (re.search), without importing re for the
    patterns every config meets: re and the enum it imports are a quarter of the CPU of a
    `create`.  A literal, or a literal anchored with ^, is a str method, ^[letters]*$ a set;
    the ociVersion pattern is matched by hand (tests/unit/test_fastcheck.py checks it against re); any
    other pattern is compiled by re when first used."""
    if not _REGEX_SYNTAX.intersection(regex):
        return lambda v: regex in v
    if regex.startswith("^") and not _REGEX_SYNTAX.intersection(regex[1:]):
        prefix = regex[1:]
        return lambda v: v.startswith(prefix)
    if regex == OCI_VERSION_PATTERN:
        return is_oci_version
    inner = regex[2:-3]
    if regex.startswith("^[") and regex.endswith("]*$") and inner.isalnum() and inner.isascii():
        allowed = frozenset(inner)  # ^[rwm]*$: the devices' access
        return lambda v: allowed.issuperset(v[:-1] if v.endswith("\n") else v)
    compiled: list[Callable[[str], object]] = []

    def search(v: str) -> bool:
        if not compiled:
            import re

            compiled.append(re.compile(regex).search)
        return compiled[0](v) is not None

    return search


def is_oci_version(v: str) -> bool:
    """OCI_VERSION_PATTERN: 1.0 to 1.3, a patch number, optional -pre-release and +build."""
    if v.endswith("\n"):
        v = v[:-1]  # re's $ also matches before a final newline
    if v[:2] != "1." or v[2:3] not in ("0", "1", "2", "3") or v[3:4] != ".":
        return False
    end = 4
    while end < len(v) and v[end] in _DIGITS:
        end += 1
    patch, rest = v[4:end], v[end:]
    if not patch or (patch[0] == "0" and len(patch) > 1):
        return False
    pre, build = "", None
    if rest.startswith("-"):
        pre, plus, after = rest[1:].partition("+")
        build = after if plus else None
        if not _identifiers(pre):
            return False
    elif rest.startswith("+"):
        build = rest[1:]
    elif rest:
        return False
    return build is None or _identifiers(build)


def _identifiers(text: str) -> bool:
    """Dot-separated, non-empty, of [0-9A-Za-z-]."""
    return all(part and _IDENTIFIER_CHARS.issuperset(part) for part in text.split("."))


def is_integer(value: object) -> bool:
    """A JSON number written without a fraction or an exponent (the loader makes those
    ints, everything else a float).  Stricter than JSON Schema, for which 1.0 is an
    integer: the Go runtimes refuse ``"uid": 1.0``, and the runtime would otherwise meet a
    float where the kernel takes an integer."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _equal(one: object, two: object) -> bool:
    """JSON equality as jsonschema's enum/const use it: true is not 1, 1.0 is 1."""
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, (list, dict)) or isinstance(two, (list, dict)):
        return False
    return one == two


class UnsupportedSchema(ValueError):
    """A schema uses a keyword this module does not implement."""


class Compiler:
    """Compiles schemas by name (``load(name)`` gives the parsed schemas/<name>.schema.json);
    cross-file ``$ref``s name the file, as in ``config.schema.json#/$defs/process``."""

    def __init__(self, load: Callable[[str], dict[str, Any]], suffix: str = ".schema.json") -> None:
        self._load = load
        self._suffix = suffix
        self._refs: dict[tuple[str, str], Check] = {}

    def check(self, name: str) -> Check:
        return self._ref(name, "")

    def _ref(self, name: str, pointer: str) -> Check:
        """The check of the subschema at ``pointer`` in schema ``name``, compiled once;
        a reference cycle resolves through the cache on first call."""
        key = (name, pointer)
        if key not in self._refs:
            self._refs[key] = lambda v: self._refs[key](v)  # placeholder while compiling
            node: Any = self._load(name)
            for part in filter(None, pointer.split("/")):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            self._refs[key] = self._compile(node, name)
        return self._refs[key]

    def _compile(self, schema: Any, name: str) -> Check:
        if schema is True or schema == {}:
            return lambda v: True
        if schema is False:
            return lambda v: False
        keywords = [self._keyword(key, value, schema, name) for key, value in schema.items() if key not in _ANNOTATIONS]
        checks = [c for c in keywords if c is not None]
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)

    def _keyword(self, key: str, value: Any, schema: dict[str, Any], name: str) -> Check | None:
        def sub(s: Any) -> Check:
            return self._compile(s, name)

        if key == "type":
            kinds = [_TYPES[t] for t in ([value] if isinstance(value, str) else value)]
            return lambda v: any(k(v) for k in kinds)
        if key == "$ref":
            target, _, pointer = value.partition("#")
            return self._ref(target[: -len(self._suffix)] if target else name, pointer)
        if key == "properties":
            props = [(prop, sub(s)) for prop, s in value.items()]
            return lambda v: not isinstance(v, dict) or all(p not in v or c(v[p]) for p, c in props)
        if key == "additionalProperties":
            known = frozenset(schema.get("properties", ()))
            extra = sub(value)
            return lambda v: not isinstance(v, dict) or all(k in known or extra(x) for k, x in v.items())
        if key == "required":
            return lambda v: not isinstance(v, dict) or all(r in v for r in value)
        if key == "dependentRequired":
            pairs = list(value.items())
            return lambda v: not isinstance(v, dict) or all(k not in v or all(r in v for r in rs) for k, rs in pairs)
        if key == "propertyNames":
            names = sub(value)
            return lambda v: not isinstance(v, dict) or all(names(k) for k in v)
        if key == "items":
            item = sub(value)
            return lambda v: not isinstance(v, list) or all(item(x) for x in v)
        if key == "minItems":
            return lambda v: not isinstance(v, list) or len(v) >= value
        if key == "maxItems":
            return lambda v: not isinstance(v, list) or len(v) <= value
        if key == "minLength":
            return lambda v: not isinstance(v, str) or len(v) >= value
        if key == "pattern":
            search = _pattern_search(value)
            return lambda v: not isinstance(v, str) or search(v)
        if key == "minimum":
            return lambda v: not _is_number(v) or v >= value
        if key == "maximum":
            return lambda v: not _is_number(v) or v <= value
        if key == "exclusiveMinimum":
            return lambda v: not _is_number(v) or v > value
        if key == "enum":
            return lambda v: any(_equal(v, e) for e in value)
        if key == "const":
            return lambda v: _equal(v, value)
        if key == "anyOf":
            alternatives = [sub(s) for s in value]
            return lambda v: any(a(v) for a in alternatives)
        if key == "not":
            negated = sub(value)
            return lambda v: not negated(v)
        if key == "if":
            condition = sub(value)
            then = sub(schema.get("then", True))
            otherwise = sub(schema.get("else", True))
            return lambda v: then(v) if condition(v) else otherwise(v)
        if key in ("then", "else"):
            return None  # compiled with "if"
        raise UnsupportedSchema(f"schemas/{name}{self._suffix}: keyword {key!r} is not supported by the fast check")
