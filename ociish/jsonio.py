"""JSON for the lifecycle commands: the stdlib parser, made as strict as the spec's JSON.

create, exec and run read config.json / process.json once per call; orjson's import
(dataclasses, inspect, uuid, zoneinfo: ~27 ms here) costs far more than it saves on a
20 KB document, so the hot paths use the stdlib module (orjson stays for the bulk
outputs: events, features, image manifests).  The stdlib parser is lenient where
orjson is not; those leniencies are refused here so the verdict stays the same.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_INT_RANGE = (-(1 << 63), (1 << 64) - 1)  # what fits an int64 or a uint64, as orjson reads them


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(digits: str) -> int:
    value = int(digits)
    if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise ValueError(f"number out of range: {digits[:20]}...")
    return value


def loads(raw: bytes) -> Any:
    """Parse UTF-8 JSON; ValueError for anything RFC 8259 does not allow (NaN, Infinity,
    invalid UTF-8, lone surrogates), integers no 64-bit field could hold, and nesting
    past the parser's depth."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
        if "\\u" in text:  # an escaped lone surrogate cannot become a path or an argument
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError as e:
        raise ValueError(f"not UTF-8: {e.reason}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (what hooks, listeners and state files get)."""
    return json.dumps(value, separators=(",", ":")).encode()
