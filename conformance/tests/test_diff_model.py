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


def test_a_json_shape_keeps_members_and_types_not_values() -> None:
    from conformance.commands import shape

    assert shape({"b": [1, 2], "a": {"x": "s"}, "e": []}) == {"a": {"x": "str"}, "b": ["int"], "e": []}
    assert shape({"pids": [3]}) == shape({"pids": [4, 5]})


def test_delete_of_a_created_container_is_the_only_delete_difference_explained() -> None:
    values = {"runc": 0, "ociish": 1}
    assert explain("command.delete", "created.status", values)
    assert explain("command.delete", "running.status", values) is None
    assert explain("command.delete", "created.status", {"runc": 0, "ociish": 0, "crun": 1}) is None
