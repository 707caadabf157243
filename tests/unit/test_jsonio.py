"""ociish.jsonio: the stdlib parser refuses what orjson refused."""

from __future__ import annotations

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
