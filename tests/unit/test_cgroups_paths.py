"""linux.cgroupsPath → the container's cgroup path (ociish.cgroups.paths)."""

from __future__ import annotations

import pytest

from ociish.cgroups.paths import cgroupfs_path, clean, expand_slice, resolve, systemd_path
from ociish.errors import ConfigError


@pytest.mark.parametrize(
    "cgroups_path, expected",
    [
        (None, "/ociish/c1"),
        ("", "/ociish/c1"),
        ("/myRuntime/myContainer", "/myRuntime/myContainer"),
        ("myRuntime/myContainer", "/myRuntime/myContainer"),  # relative = from the hierarchy root
        ("/a//b/./c/", "/a/b/c"),
        ("../../x", "/x"),
        ("/a/../../../x/y", "/x/y"),
        ("//a", "/a"),
        ("/a:b:c", "/a:b:c"),  # absolute paths may contain colons
        ("/kubepods/burstable/pod1234/abcd", "/kubepods/burstable/pod1234/abcd"),
    ],
)
def test_cgroupfs(cgroups_path, expected):
    assert cgroupfs_path("c1", cgroups_path) == expected
    assert resolve("c1", cgroups_path) == expected


@pytest.mark.parametrize("cgroups_path", ["/", "/..", "..", "/./", "a/.."])
def test_cgroupfs_refuses_the_root_cgroup(cgroups_path):
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: .* names the root cgroup"):
        cgroupfs_path("c1", cgroups_path)


@pytest.mark.parametrize("cgroups_path", ["system.slice:ociish:c1", ":ociish:c1", "a:b"])
def test_cgroupfs_refuses_systemd_form(cgroups_path):
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: .* systemd 'slice:prefix:name'"):
        resolve("c1", cgroups_path, systemd=False)


@pytest.mark.parametrize("cgroups_path", [7, "/a\0b"])
def test_cgroupfs_refuses_non_paths(cgroups_path):
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath"):
        cgroupfs_path("c1", cgroups_path)


@pytest.mark.parametrize("container_id", ["a/b", ".", "..", ""])
def test_default_path_needs_a_usable_id(container_id):
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: container id"):
        cgroupfs_path(container_id, None)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/a", "/a"),
        ("a/b/../c", "/a/c"),
        ("", "/"),
        ("../..", "/"),
    ],
)
def test_clean(path, expected):
    assert clean(path) == expected


@pytest.mark.parametrize(
    "slice_name, expected",
    [
        ("system.slice", "/system.slice"),
        ("machine.slice", "/machine.slice"),
        ("a-b.slice", "/a.slice/a-b.slice"),
        ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
        ("user-1000.slice", "/user.slice/user-1000.slice"),
        ("-.slice", "/"),
        ("-", "/"),
    ],
)
def test_expand_slice(slice_name, expected):
    assert expand_slice(slice_name) == expected


@pytest.mark.parametrize("slice_name", ["foo", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", ".slice"])
def test_expand_slice_rejects_bad_names(slice_name):
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: .* is not a valid systemd slice name"):
        expand_slice(slice_name)


@pytest.mark.parametrize(
    "cgroups_path, expected",
    [
        (None, "/system.slice/ociish-c1.scope"),
        ("", "/system.slice/ociish-c1.scope"),
        ("machine.slice:libpod:abc", "/machine.slice/libpod-abc.scope"),
        (":docker:abc", "/system.slice/docker-abc.scope"),
        (
            "kubepods-burstable.slice:cri-containerd:abc",
            "/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope",
        ),
        ("-:runc:abc", "/runc-abc.scope"),
        ("system.slice::abc", "/system.slice/abc.scope"),
        ("system.slice:x:my-app.slice", "/my.slice/my-app.slice"),  # a slice unit is placed by its own name
    ],
)
def test_systemd(cgroups_path, expected):
    assert systemd_path("c1", cgroups_path) == expected
    assert resolve("c1", cgroups_path, systemd=True) == expected


@pytest.mark.parametrize(
    "cgroups_path",
    ["/a/b", "a/b", "a:b", "a:b:c:d", "system.slice:p:", "system.slice:p/q:n", "bad:p:n", "-.slice:p:-.slice"],
)
def test_systemd_refuses_other_forms(cgroups_path):
    with pytest.raises(ConfigError, match=r"^linux\.cgroupsPath: "):
        resolve("c1", cgroups_path, systemd=True)
