"""JSON for the lifecycle commands, through the json package's C scanner and encoder.

orjson's import (dataclasses, inspect, uuid, zoneinfo: ~27 ms here) costs far more than
it saves on a 20 KB config.json, and the json package's own (re, enum: ~5 ms) is more
than `ociish state` spends on everything else; its C accelerator (``_json``) needs
neither.  The json package is imported only to word an error.  orjson stays for the bulk
outputs (events, features, image manifests).
"""

from __future__ import annotations

import _json

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


_scan = _json.make_scanner(_ScannerContext())
_encode = _json.make_encoder(None, _refuse_type, _json.encode_basestring_ascii, None, ":", ",", False, False, False)
_encode_spaced = _json.make_encoder(None, _refuse_type, _json.encode_basestring_ascii, None, ": ", ", ",
                                    False, False, False)
_encode_unicode = _json.make_encoder(None, _refuse_type, _json.encode_basestring, None, ":", ",", False, False, False)
_WHITESPACE = " \t\n\r"


def loads(raw: bytes) -> Any:
    """Parse UTF-8 JSON; ValueError for anything RFC 8259 does not allow (NaN, Infinity,
    invalid UTF-8, lone surrogates), integers no 64-bit field could hold, and nesting
    past the parser's depth."""
    try:
        text = raw.decode("utf-8")
    except UnicodeError as e:
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


def dumps_readable(document: dict[str, Any]) -> str:
    """An object with one member a line, as `runc state` prints it (values stay compact)."""
    members = (f'  {"".join(_encode_spaced(key, 0))}: {"".join(_encode_spaced(value, 0))}'
               for key, value in document.items())
    return "{\n" + ",\n".join(members) + "\n}"
