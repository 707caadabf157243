"""ociish.jsonio: the stdlib parser refuses what orjson refused."""

from __future__ import annotations

import json

import pytest

from ociish import jsonio


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'[Infinity]', b'[-Infinity]', b'"\\ud800"', b'"\xff"',
                                 b"[18446744073709551616]", b"[-9223372036854775809]", b"[" * 100_000, b"{"])
def test_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        jsonio.loads(raw)


@pytest.mark.parametrize("raw, value", [(b'"\\ud83d\\ude00"', "\U0001f600"), (b"[18446744073709551615]", [2**64 - 1]),
                                        (b"[-9223372036854775808, 1.5]", [-(2**63), 1.5]), (b'{"a":"\xc3\xa9"}', {"a": "é"})])
def test_accepted(raw: bytes, value: object) -> None:
    assert jsonio.loads(raw) == value


def test_dumps_is_compact() -> None:
    assert jsonio.dumps({"a": [1, "b"]}) == b'{"a":[1,"b"]}'


@pytest.mark.parametrize("text", ['{"a":', "", '{"a":1} x', '{"a":NaN}', "[" * 100_000, '{"a":"\x01"}', "\x00"])
def test_a_corrupt_record_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        jsonio.loads_record(text)


def test_records_round_trip() -> None:
    record = {"id": "c", "pid": 7, "annotations": {"k": "é"}, "init_start": None, "ok": True}
    assert jsonio.loads_record(jsonio.dumps(record).decode()) == record


def test_go_json_as_runc_writes_it() -> None:
    """Go's json.Marshal/MarshalIndent: the escapes of <, >, & and controls, raw UTF-8,
    empty containers on one line, no spaces when compact."""
    document = {"id": "a&b", "pid": 7, "none": None, "ok": False, "s": "<\u00e9>\n\x01\u2028", "e": {}, "l": [],
                "n": {"k": [1, True]}}
    assert jsonio.dumps_go(document) == ('{"id":"a\\u0026b","pid":7,"none":null,"ok":false,'
                                         '"s":"\\u003c\u00e9\\u003e\\n\\u0001\\u2028","e":{},"l":[],"n":{"k":[1,true]}}')
    assert jsonio.dumps_go({"e": {}, "n": {"k": [1]}}, indent="\t") == '{\n\t"e": {},\n\t"n": {\n\t\t"k": [\n\t\t\t1\n\t\t]\n\t}\n}'
    assert json.loads(jsonio.dumps_go(document, indent="  ")) == document
