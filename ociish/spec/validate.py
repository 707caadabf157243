"""Validate OCI runtime-spec documents against schemas/ and against the spec's prose.

Every problem is reported at once, one line each, as ``<file>: <json path>: <detail>``
(e.g. ``config.json: process.user.uid: -1: expected an integer >= 0``), so a user can fix a
config.json in one pass instead of one error per run.

A document is first put to the compiled check of ociish.spec.fastcheck (about a
millisecond); only one it rejects pays for jsonschema (~60 ms to import and build), the
validator of record, which explains every error.  state, kill and delete validate nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import cache

from ociish import jsonio
from ociish.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    from ociish.spec.fastcheck import Compiler

# ociish/schemas: a link to the repository's schemas/ in a checkout, their copy in a wheel
SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")
# The $id prefix of our schemas; cross-schema $refs resolve to files in SCHEMA_DIR, never the net.
_BASE_URI = "https://ociish.invalid/schemas/"
_SUFFIX = ".schema.json"

_VALIDATORS: dict[str, Validator] = {}

PathParts = tuple[str | int, ...]
Problem = tuple[PathParts, str]

_MAX_VALUE_CHARS = 60
_TYPE_NAMES = {
    "array": "an array",
    "boolean": "a boolean",
    "integer": "an integer",
    "null": "null",
    "number": "a number",
    "object": "an object",
    "string": "a string",
}
# Keywords whose failure is better explained by the schema's own "x-expected" text than by
# a generic message (a regex, or "any of these" alternatives, means little to a user).
_CUSTOM_MESSAGE_KEYWORDS = {"pattern", "not", "anyOf", "oneOf", "maxItems"}
# config-linux.md#seccomp: only these actions take an errno.
_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")


def load_config(bundle: str) -> tuple[dict[str, Any], bytes]:
    """config.json of ``bundle``, parsed and validated; ConfigError lists every problem."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (is {bundle} an OCI bundle?)") from None
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    try:
        config = jsonio.loads(raw)
    except ValueError as e:
        raise ConfigError(f"config.json: not valid JSON: {e}") from None
    problems = validate_config(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return config, raw


def schema_errors(
    document: object, schema_name: str = "config", label: str | None = None
) -> list[str]:
    """Every way *document* breaks schemas/<schema_name>.schema.json, sorted by JSON path.

    *label* names the file in each message; it defaults to ``<schema_name>.json``.
    """
    if conforms(document, schema_name):
        return []
    problems: list[tuple[PathParts, str, str]] = []
    for error in _validator(schema_name).iter_errors(document):  # type: ignore[arg-type]  # any parsed JSON
        problems.extend(_describe(error))
    # A value of the wrong type also fails its range/enum/pattern checks: say it once.
    mistyped = {path for path, _, keyword in problems if keyword == "type"}
    unique = {
        (path, detail)
        for path, detail, keyword in problems
        if keyword == "type" or path not in mistyped
    }
    return _render(label or f"{schema_name}.json", unique)


def semantic_errors(config: dict[str, Any], label: str = "config.json") -> list[str]:
    """The spec's rules a schema cannot express, for a config that already passed the schema.

    Only what the spec makes an error is reported; checks that need the host (does a
    namespace path exist, is a cgroup controller enabled) belong to create.
    """
    linux = config.get("linux", {})
    namespaces = {ns["type"] for ns in linux.get("namespaces", [])}
    problems = [
        *_missing_for_create(config),
        *_duplicate_namespaces(linux),
        *_rlimit_problems(config.get("process", {})),
        *_mapping_problems(config, linux, namespaces),
        *_seccomp_problems(linux.get("seccomp")),
        *_sysctl_problems(linux.get("sysctl", {})),
        *_nul_bytes(config, ()),
    ]
    return _render(label, problems)


def validate_config(config: object, label: str = "config.json") -> list[str]:
    """All schema errors of a config.json, or, if there are none, its semantic errors."""
    errors = schema_errors(config, "config", label)
    if errors or not isinstance(config, dict):
        return errors
    return semantic_errors(config, label)


# --- schema loading -------------------------------------------------------------------


def conforms(document: object, schema_name: str) -> bool:
    """The fast verdict: does *document* conform to schemas/<schema_name>.schema.json?"""
    return _compiler().check(schema_name)(document)


@cache
def _compiler() -> Compiler:
    """The fast check's compiler, one per process (it keeps every schema it compiled)."""
    from ociish.spec.fastcheck import Compiler

    return Compiler(_load_schema, _SUFFIX)


@cache
def _load_schema(name: str) -> dict[str, Any]:
    path = os.path.join(SCHEMA_DIR, f"{name}{_SUFFIX}")
    try:
        with open(path, "rb") as f:
            schema: dict[str, Any] = jsonio.loads(f.read())
    except FileNotFoundError:
        raise ValueError(f"unknown schema {name!r}: {path} does not exist") from None
    return schema


def _validator(name: str) -> Validator:
    """The compiled validator for a schema, built on first use and kept for the process.

    "integer" means a number written without a fraction or exponent (1.0 is refused), as
    in the fast check: the schemas stay the spec's, the type check is ours."""
    validator = _VALIDATORS.get(name)
    if validator is None:
        from jsonschema import Draft202012Validator, validators
        from referencing import Registry, Resource
        from referencing.exceptions import NoSuchResource

        from ociish.spec.fastcheck import is_integer

        def retrieve(uri: str) -> Resource:
            if not (uri.startswith(_BASE_URI) and uri.endswith(_SUFFIX)):
                raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class mypy cannot see through
            return Resource.from_contents(_load_schema(uri[len(_BASE_URI) : -len(_SUFFIX)]))

        integer = Draft202012Validator.TYPE_CHECKER.redefine("integer", lambda _checker, instance: is_integer(instance))
        strict = validators.extend(Draft202012Validator, type_checker=integer)  # type: ignore[no-untyped-call]
        validator = strict(_load_schema(name), registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]  # attrs, as above
        _VALIDATORS[name] = validator
    return validator


# --- turning jsonschema errors into one-line messages ----------------------------------


def _describe(error: ValidationError) -> list[tuple[PathParts, str, str]]:
    """(path, detail, keyword) for one jsonschema error; a few keywords name several fields."""
    from jsonschema.exceptions import best_match

    path: PathParts = tuple(error.absolute_path)
    keyword = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}

    if keyword == "required":
        return [
            ((*path, name), "missing required field", keyword)
            for name in value
            if error.message == f"{name!r} is a required property"
        ]
    if keyword == "dependentRequired":
        return [
            ((*path, needed), f"missing required field (needed with {field})", keyword)
            for field, needs in value.items()
            for needed in needs
            if error.message == f"{needed!r} is a dependency of {field!r}"
        ]
    if keyword == "additionalProperties" and value is False:
        known = schema.get("properties", {})
        extra = [name for name in instance if name not in known]
        return [((*path, name), "unknown field", keyword) for name in extra]
    if keyword in ("anyOf", "oneOf") and "x-expected" not in schema:
        best = best_match([error])
        if best is not error:
            return _describe(best)
        alternatives = dict.fromkeys(_expected(sub) for sub in error.context or ())
        return [(path, f"{_short(instance)}: expected {' or '.join(alternatives)}", keyword)]

    detail = f"{_short(instance)}: expected {_expected(error)}"
    schema_path = list(error.absolute_schema_path)
    if len(schema_path) >= 2 and schema_path[-2] == "propertyNames":
        detail = f"key {detail}"  # the instance is a key of the object at *path*
    return [(path, detail, keyword)]


def _expected(error: ValidationError) -> str:
    """What the failed keyword wanted, in plain words."""
    keyword = error.validator
    value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if keyword in _CUSTOM_MESSAGE_KEYWORDS and "x-expected" in schema:
        return str(schema["x-expected"])
    number = "an integer" if schema.get("type") == "integer" else "a number"
    match keyword:
        case "type":
            types = [value] if isinstance(value, str) else value
            return " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        case "enum":
            names = sorted(v if isinstance(v, str) else _short(v) for v in value)
            return names[0] if len(names) == 1 else f"one of {', '.join(names)}"
        case "const":
            return _short(value)
        case "minimum":
            return f"{number} >= {value}"
        case "maximum":
            return f"{number} <= {value}"
        case "exclusiveMinimum":
            return f"{number} > {value}"
        case "exclusiveMaximum":
            return f"{number} < {value}"
        case "minItems":
            return f"at least {value} item{'' if value == 1 else 's'}"
        case "maxItems":
            return f"at most {value} item{'' if value == 1 else 's'}"
        case "minLength":
            return "a non-empty string" if value == 1 else f"at least {value} characters"
        case "pattern":
            return f"a string matching {value}"
        case "uniqueItems":
            return "no duplicate items"
    return str(error.message).replace("\n", " ")


def _short(value: object) -> str:
    """The JSON text of *value*, cut to about 60 characters."""
    import json  # (messages only: documents are loaded through ociish.jsonio)

    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _format_path(path: PathParts) -> str:
    """process.user.uid, mounts[2].destination, annotations["com.example.key"]."""
    if not path:
        return "(root)"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() and part.isascii():
            text += f".{part}" if text else part
        else:
            import json

            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


def _path_order(item: Problem) -> tuple[object, ...]:
    """Sort by path with list indexes compared as numbers (mounts[2] before mounts[10])."""
    path, detail = item
    parts = tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)
    return parts, detail


def _render(label: str, problems: Iterable[Problem]) -> list[str]:
    return [
        f"{label}: {_format_path(path)}: {detail}"
        for path, detail in sorted(problems, key=_path_order)
    ]


# --- semantic checks (each cites the spec section it enforces) --------------------------


def _nul_bytes(value: object, path: PathParts) -> Iterator[Problem]:
    """No string the kernel will see may hold a NUL byte: paths, args, env and names would
    be cut short (or refused) at the system call."""
    if isinstance(value, str):
        if "\x00" in value:
            yield path, f"{_short(value)}: expected a string without NUL bytes"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nul_bytes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_bytes(item, (*path, index))


def _missing_for_create(config: dict[str, Any]) -> Iterator[Problem]:
    # config.md#root: root is REQUIRED on Linux.
    if "root" not in config:
        yield ("root", "path"), "missing required field"
    # config.md#process is OPTIONAL until start, but runtime.md#start MUST fail without it
    # and the config cannot change after create: refuse a container that could never start.
    if "process" not in config:
        yield ("process",), "missing required field"


def _duplicate_namespaces(linux: dict[str, Any]) -> Iterator[Problem]:
    # config-linux.md#namespaces: duplicated types MUST generate an error.
    seen: set[str] = set()
    for i, namespace in enumerate(linux.get("namespaces", [])):
        kind = namespace["type"]
        if kind in seen:
            yield ("linux", "namespaces", i, "type"), f"duplicate namespace {_short(kind)}"
        seen.add(kind)


def _rlimit_problems(process: dict[str, Any]) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, rlimit in enumerate(process.get("rlimits", [])):
        kind = rlimit["type"]
        # config.md#posix-process: duplicated types MUST generate an error.
        if kind in seen:
            yield ("process", "rlimits", i, "type"), f"duplicate rlimit {_short(kind)}"
        seen.add(kind)
        # config.md#posix-process: rlim_cur MUST equal soft, and setrlimit(2) refuses a soft
        # limit above the hard one, so such an entry cannot be applied (runtime.md#create).
        if rlimit["soft"] > rlimit["hard"]:
            detail = f"{rlimit['soft']}: expected <= the hard limit {rlimit['hard']}"
            yield ("process", "rlimits", i, "soft"), detail


def _mapping_problems(
    config: dict[str, Any], linux: dict[str, Any], namespaces: set[str]
) -> Iterator[Problem]:
    # config-linux.md#user-namespace-mappings describe *the user namespace's* maps, and
    # config-linux.md#offset-for-time-namespace *the time namespace's* clocks: without that
    # namespace they cannot be applied, which runtime.md#create makes an error.
    for field, kind in (("uidMappings", "user"), ("gidMappings", "user"), ("timeOffsets", "time")):
        if linux.get(field) and kind not in namespaces:
            yield ("linux", field), f'set but linux.namespaces has no "{kind}" namespace'
    # config.md#linux-mount-options (idmap, ridmap): without mappings on the mount and
    # without a user namespace, an error MUST be returned.
    if "user" in namespaces:
        return
    for i, mount in enumerate(config.get("mounts", [])):
        for option in ("idmap", "ridmap"):
            if option in mount.get("options", []) and not mount.get("uidMappings"):
                detail = "needs uidMappings and gidMappings on the mount or a user namespace"
                yield ("mounts", i, "options"), f'"{option}" {detail}'


def _seccomp_problems(seccomp: dict[str, Any] | None) -> Iterator[Problem]:
    # config-linux.md#seccomp: an errno given with an action that takes none MUST fail.
    if not seccomp:
        return
    entries: list[tuple[PathParts, dict[str, Any], str, str]] = [
        (("linux", "seccomp"), seccomp, "defaultAction", "defaultErrnoRet")
    ]
    entries += [
        (("linux", "seccomp", "syscalls", i), rule, "action", "errnoRet")
        for i, rule in enumerate(seccomp.get("syscalls", []))
    ]
    for path, entry, action_field, errno_field in entries:
        action = entry[action_field]
        if errno_field in entry and action not in _ERRNO_ACTIONS:
            detail = (
                f"{entry[errno_field]}: expected no errno with {action_field} {action}"
                " (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)"
            )
            yield (*path, errno_field), detail


def _sysctl_problems(sysctl: dict[str, str]) -> Iterator[Problem]:
    # config-linux.md#sysctl names files under /proc/sys; a key that is not a name there is
    # an invalid value (config.md#valid-values). Whether the key exists is a create-time check.
    detail = "invalid key: expected names separated by . or / (e.g. net.ipv4.ip_forward)"
    for key in sysctl:
        if not _is_sysctl_key(key):
            yield ("linux", "sysctl", key), detail


def _is_sysctl_key(key: str) -> bool:
    """sysctl(8) keys: names separated by '.', or by '/' (then a name may contain dots)."""
    if not key or any(c.isspace() or c == "\0" for c in key):
        return False
    separator = "/" if "/" in key else "."
    return all(part not in ("", ".", "..") for part in key.split(separator))
