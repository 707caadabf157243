"""Path resolution inside a root: symlinks and .. never leave it (a real tmp dir, no container)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ociish import safepath


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    o = tmp_path / "outside"
    o.mkdir()
    return o


def opened(root: Path, fn, path: str) -> str:
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = fn(rfd, path)
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    finally:
        os.close(rfd)


def test_absolute_symlink_is_resolved_inside_the_root(root: Path, outside: Path) -> None:
    (root / "escape").symlink_to(outside)
    assert opened(root, safepath.mkdir_all, "/escape/sub") == str(root / outside.relative_to("/") / "sub")
    assert not (outside / "sub").exists()


def test_dotdot_cannot_climb_out(root: Path, outside: Path) -> None:
    (root / "up").symlink_to("../../outside")
    made = opened(root, safepath.mkdir_all, "/up/x")
    assert made.startswith(str(root)) and not (outside / "x").exists()


def test_dangling_symlinks_get_their_target_created_inside(root: Path, outside: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc" / "resolv.conf").symlink_to("../run/resolve/stub.conf")
    assert opened(root, safepath.ensure_file, "/etc/resolv.conf") == str(root / "run/resolve/stub.conf")
    (root / "mnt").symlink_to(str(outside / "gone"))
    assert opened(root, safepath.mkdir_all, "/mnt/x").startswith(str(root))
    assert not (outside / "gone").exists()


def test_symlink_loops_end(root: Path) -> None:
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    with pytest.raises(OSError):
        opened(root, safepath.mkdir_all, "/a/x")


def test_open_without_following_the_last_component(root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside)
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = safepath.open_in_root(rfd, "/link", follow=False)
        assert os.path.islink(f"/proc/self/fd/{fd}") and Path(os.readlink(f"/proc/self/fd/{fd}")) == root / "link"
        os.close(fd)
    finally:
        os.close(rfd)
