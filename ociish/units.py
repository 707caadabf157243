"""Sizes as people and runc write them: `1048576`, `512m`, `64M`, `1.5GiB`, `2gb`."""

from __future__ import annotations

import re

_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp]?)i?b?", re.IGNORECASE)
_BINARY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """A byte count (units are powers of 1024); ValueError when ``text`` is no size."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r}")
    number, unit = match[1], _BINARY_UNITS[match[2].lower()]
    return int(number) * unit if "." not in number else int(float(number) * unit)
