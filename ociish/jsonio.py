"""JSON for the lifecycle commands, through the json package's C scanner and encoder.

orjson's import (dataclasses, inspect, uuid, zoneinfo: ~27 ms here) costs far more than
it saves on a 20 KB config.json, and the json package's own (re, enum: ~5 ms) is more
than `ociish state` spends on everything else; its C accelerator (``_json``) needs
neither (ociish.linux.cpython).  The json package is imported only to word an error.  orjson stays for the bulk
outputs (events, features, image manifests).
"""

from __future__ import annotations

from ociish.linux.cpython import json as _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_INT_RANGE = (-(1 << 63), (1 << 64) - 1)  # what fits an int64 or a uint64, as orjson reads them


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _refuse_type(value: object) -> None:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _bounded_int(digits: str) -> int:
    value = int(digits)
    if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise ValueError(f"number out of range: {digits[:20]}...")
    return value


class _ScannerContext:
    """What the C scanner reads its settings from (json.JSONDecoder has the same fields)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = staticmethod(_bounded_int)
    parse_constant = staticmethod(_refuse_constant)


_scan = _json.make_scanner(_ScannerContext())  # type: ignore[arg-type]  # the C scanner reads only these attributes
_encode = _json.make_encoder(None, _refuse_type, _json.encode_basestring_ascii, None, ":", ",", False, False, False)
_encode_unicode = _json.make_encoder(None, _refuse_type, _json.encode_basestring, None, ":", ",", False, False, False)
_WHITESPACE = " \t\n\r"


def loads(raw: bytes) -> Any:
    """Parse UTF-8 JSON; ValueError for anything RFC 8259 does not allow (NaN, Infinity,
    invalid UTF-8, lone surrogates), integers no 64-bit field could hold, and nesting
    past the parser's depth."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8: {e.reason}") from None
    value = loads_record(text)
    if "\\u" in text:  # an escaped lone surrogate cannot become a path or an argument
        try:
            "".join(_encode_unicode(value, 0)).encode("utf-8")
        except UnicodeError:
            raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff)") from None
    return value


def loads_record(text: str) -> Any:
    """A JSON document (state records, which dumps() wrote); ValueError for anything else."""
    try:
        value, end = _scan(text, len(text) - len(text.lstrip(_WHITESPACE)))
    except (StopIteration, SystemError):
        # a syntax error: the json package words it.  (The C scanner raises json.decoder's
        # exception, and on 3.11 fails with SystemError while that module is not imported.)
        import json

        try:
            json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
        except RecursionError:
            raise ValueError("nested too deeply") from None
        raise ValueError("not JSON") from None  # what json accepts and the scanner did not
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError("trailing data")
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (what hooks, listeners and the state file get)."""
    return "".join(_encode(value, 0)).encode()


# Go's encoding/json escapes, which runc's outputs have: control characters as \u00XX (but
# \n, \r, \t), and <, >, &, U+2028 and U+2029 as \u escapes too.
_GO_ESCAPES = {**{code: f"\\u{code:04x}" for code in range(0x20)}, **{ord(c): f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"},
               ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("\\"): "\\\\"}


def dumps_go(value: Any, indent: str | None = None) -> str:
    """JSON as runc (Go's json.Marshal, or MarshalIndent with ``indent``) writes it: keys in
    the given order, no spaces when compact, ``"key": value`` and empty containers as ``{}``
    and ``[]`` when indented, the escapes above."""
    return _go(value, indent, 0)


def _go(value: Any, indent: str | None, level: int) -> str:
    if isinstance(value, str):
        return '"' + value.translate(_GO_ESCAPES) + '"'
    if value is True or value is False or value is None:
        return "true" if value else "false" if value is False else "null"
    if isinstance(value, (int, float)):
        return "".join(_encode(value, 0))
    if isinstance(value, dict):
        items = [_go(str(k), None, 0) + (":" if indent is None else ": ") + _go(v, indent, level + 1)
                 for k, v in value.items()]
        return _go_join("{", items, "}", indent, level)
    if isinstance(value, (list, tuple)):
        return _go_join("[", [_go(v, indent, level + 1) for v in value], "]", indent, level)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _go_join(opening: str, items: list[str], closing: str, indent: str | None, level: int) -> str:
    if indent is None or not items:
        return opening + ",".join(items) + closing
    inner = "\n" + indent * (level + 1)
    return opening + inner + ("," + inner).join(items) + "\n" + indent * level + closing
