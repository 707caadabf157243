"""Keys of a config.json that no schema in schemas/ knows: likely typos, so warnings.

config.md#extensibility makes a runtime ignore unknown properties, never refuse them;
but `linux.namespace` for `linux.namespaces` silently gives a container none of the
namespaces its author asked for.  The known keys at each level are those the schema
lists there (through `$ref`, `allOf`/`anyOf`/`oneOf` and `if`/`then`/`else`); a map the
schema opens with `additionalProperties` (annotations, sysctl, ...) takes any key.  Only
the keys a document has are walked, so a create pays for its own config only; difflib
is imported only when there is an unknown key to suggest a name for.
"""

from __future__ import annotations

from ociish.spec.validate import _format_path, _load_schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator

    from ociish.spec.validate import PathParts


def unknown_key_warnings(document: Any, schema_name: str = "config") -> list[str]:
    """One line per unknown key, with the known key it most likely meant when one is close."""
    root = _load_schema(schema_name)
    found: list[tuple[PathParts, list[str]]] = []
    _walk(document, [root], root, (), found)
    if not found:
        return []
    from difflib import get_close_matches

    lines = []
    for path, known in found:
        line = f"{_format_path(path)}: unknown key"
        close = get_close_matches(str(path[-1]), known, n=1)
        if close:
            line += f"; did you mean {_format_path((*path[:-1], close[0]))}?"
        lines.append(line)
    return lines


_RESOLVED: dict[str, Any] = {}
_LEVELS: dict[tuple[int, ...], tuple[dict[str, list[Any]], list[Any], list[Any]]] = {}


def _level(schemas: list[Any], root: dict[str, Any]) -> tuple[dict[str, list[Any]], list[Any], list[Any]]:
    """(known key -> its subschemas, additionalProperties schemas, items schemas) of the
    value these schemas apply to; worked out once per set of schemas (mounts[], syscalls[]
    and namespaces[] share theirs)."""
    key = tuple(map(id, schemas))
    level = _LEVELS.get(key)
    if level is None:
        known: dict[str, list[Any]] = {}
        open_to: list[Any] = []
        items: list[Any] = []
        for branch in (b for s in schemas for b in _branches(s, root)):
            for name, sub in (branch.get("properties") or {}).items():
                known.setdefault(name, []).append(sub)
            if isinstance(branch.get("additionalProperties"), dict):
                open_to.append(branch["additionalProperties"])
            if isinstance(branch.get("items"), dict):
                items.append(branch["items"])
        level = _LEVELS[key] = (known, open_to, items)
    return level


def _branches(schema: Any, root: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The schema and every subschema that applies to the same value."""
    stack = [schema]
    while stack:
        current = stack.pop()
        if not isinstance(current, dict):
            continue
        yield current
        ref = current.get("$ref")
        if isinstance(ref, str):
            stack.append(_resolve(ref, root))
        for keyword in ("allOf", "anyOf", "oneOf"):
            stack.extend(current.get(keyword) or ())
        stack.extend(current[keyword] for keyword in ("then", "else") if keyword in current)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    """A local ``#/$defs/name`` or another file's ``name.schema.json#/...``."""
    document, _, pointer = ref.partition("#")
    cache_key = ref if document else f"{id(root)}{ref}"
    if cache_key in _RESOLVED:
        return _RESOLVED[cache_key]
    target: Any = _load_schema(document.rsplit("/", 1)[-1].removesuffix(".schema.json")) if document else root
    for part in filter(None, pointer.split("/")):
        target = target.get(part) if isinstance(target, dict) else None
    _RESOLVED[cache_key] = target
    return target


def _walk(value: Any, schemas: list[Any], root: dict[str, Any], path: PathParts,
          found: list[tuple[PathParts, list[str]]]) -> None:
    if isinstance(value, dict):
        known, open_to, _ = _level(schemas, root)
        if not known and not open_to:
            return  # an object the schemas say nothing about
        for key, item in value.items():
            subschemas = known.get(key) or open_to
            if subschemas:
                if isinstance(item, (dict, list)):
                    _walk(item, subschemas, root, (*path, key), found)
            else:
                found.append(((*path, key), sorted(known)))
    elif isinstance(value, list):
        items = _level(schemas, root)[2]
        if items:
            for index, item in enumerate(value):
                if isinstance(item, (dict, list)):
                    _walk(item, items, root, (*path, index), found)
