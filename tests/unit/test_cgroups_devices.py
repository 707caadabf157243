"""Device rule normalisation shared by the v1 writer and the future v2 filter."""

from __future__ import annotations

import pytest

from ociish.cgroups.devices import default_device_rules, normalize_rule, normalize_rules, v1_line


@pytest.mark.parametrize(
    "rule, normalized, line",
    [
        ({"allow": False}, {"allow": False, "type": "a", "major": None, "minor": None, "access": "rwm"}, "a"),
        ({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "wr"},
         {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}, "c 1:3 rw"),
        ({"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"},
         {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"}, "b *:* m"),
        ({"allow": True, "type": "c", "major": 136, "access": ""},
         {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rwm"}, "c 136:* rwm"),
        ({"allow": False, "type": "a", "major": 1, "minor": 1, "access": "r"},
         {"allow": False, "type": "a", "major": 1, "minor": 1, "access": "r"}, "a"),
    ],
)
def test_normalize_and_format(rule, normalized, line):
    assert normalize_rule(0, rule) == normalized
    assert v1_line(normalized) == line


def test_defaults_follow_the_config_rules():
    rules = normalize_rules([{"allow": False}])
    assert rules[0]["allow"] is False
    assert rules[1:] == default_device_rules()


def test_default_rules_are_fresh_copies():
    default_device_rules()[0]["allow"] = False
    assert default_device_rules()[0]["allow"] is True
