"""The differential run's bookkeeping: generated cases are the seed's, differences are
explained only by their entry in conformance/deliberate.py."""

from __future__ import annotations

from conformance import diff
from conformance.deliberate import explain


def test_a_seed_draws_the_same_cases() -> None:
    names = [c.name for c in diff.generated_cases(15, 4)]
    assert names == [c.name for c in diff.generated_cases(15, 4)]
    assert names != [c.name for c in diff.generated_cases(16, 4)]


def test_only_a_listed_difference_is_explained() -> None:
    values = {"runc": {"domainname": "(none)"}, "ociish": {"domainname": "d"}}
    assert explain("domainname", "container.uname", values)
    assert explain("hostname", "container.uname", values) is None
    assert explain("domainname", "container.env", values) is None


def test_mount_view_drops_ids_and_keeps_what_the_container_sees() -> None:
    line = "610 598 0:52 / /scratch rw,nosuid,relatime shared:1 - tmpfs tmpfs rw,size=1024k"
    assert diff._mount_view(line) == "/scratch rw,nosuid tmpfs rw,size=1024k"
