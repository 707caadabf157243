"""Applying image layers: whiteouts, metadata, and hostile archives that try to write outside."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ociish.bundle.layers import LayerError, LayerWriter, apply_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="layers keep owners and device nodes: needs root")


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: Any) -> tuple[tarfile.TarInfo, bytes]:
    """One layer entry; ``attrs`` are TarInfo fields (linkname, mode, uid, pax_headers, ...)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_600_000_000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def layer_tar(*entries: tuple[tarfile.TarInfo, bytes], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return gzip.compress(buf.getvalue()) if compress else buf.getvalue()


def directory(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.DIRTYPE)


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.SYMTYPE, linkname=target)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("host data")
    return tmp_path / "rootfs"


@pytest.fixture
def apply(root: Path) -> Iterator[Any]:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)

    def do(*entries: tuple[tarfile.TarInfo, bytes], compress: bool = False) -> None:
        apply_layer(fd, io.BytesIO(layer_tar(*entries, compress=compress)), "layer")

    yield do
    os.close(fd)


def outside_untouched(root: Path) -> None:
    outside = root.parent / "outside"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "host data"


# --- hostile archives ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../outside/pwned", "a/../../outside/pwned", "./../pwned"])
def test_dotdot_entries_are_refused(root: Path, apply: Any, name: str) -> None:
    with pytest.raises(LayerError, match=r"a path with '\.\.' could escape"):
        apply(entry(name, data=b"x"))
    outside_untouched(root)
    assert not (root.parent / "pwned").exists()


def test_absolute_entries_land_inside_the_rootfs(root: Path, apply: Any) -> None:
    target = root.parent / "outside" / "abs"
    apply(entry(str(target), data=b"in root"))
    assert (root / str(target).lstrip("/")).read_text() == "in root"
    assert not target.exists()


@pytest.mark.parametrize(("link", "lands_in"), [("/", ""), ("../../..", ""), ("{outside}", "{outside}")])
def test_a_symlinked_parent_resolves_inside_the_rootfs(root: Path, apply: Any, link: str, lands_in: str) -> None:
    """The same layer and a later one write through a symlink that points out of the root."""
    outside = root.parent / "outside"
    apply(symlink("escape", link.format(outside=outside)), entry("escape/first", data=b"1"))
    apply(entry("escape/pwned", data=b"x"), entry("escape/secret", data=b"overwritten?"))
    outside_untouched(root)
    for climbed in (root.parent, root.parent.parent, root.parent.parent.parent):
        assert not (climbed / "pwned").exists()
    inside = root / lands_in.format(outside=outside).lstrip("/")
    assert (inside / "first").read_bytes() == b"1" and (inside / "pwned").read_bytes() == b"x"


def test_a_later_layer_replacing_a_directory_by_an_escaping_symlink(root: Path, apply: Any) -> None:
    outside = root.parent / "outside"
    apply(directory("etc"), entry("etc/passwd", data=b"root:x:0:0::/:/bin/sh\n"))
    apply(symlink("etc", str(outside)))
    apply(entry("etc/secret", data=b"overwritten?"), entry("etc/.wh.secret"))
    outside_untouched(root)
    assert (root / "etc").is_symlink()
    assert (root / str(outside).lstrip("/") / "secret").read_bytes() == b"overwritten?"


def test_an_escaping_final_symlink_is_replaced_not_followed(root: Path, apply: Any) -> None:
    apply(symlink("secret", str(root.parent / "outside" / "secret")))
    apply(entry("secret", data=b"new"))
    outside_untouched(root)
    assert (root / "secret").read_bytes() == b"new" and not (root / "secret").is_symlink()


def test_hard_links_cannot_reach_outside(root: Path, apply: Any) -> None:
    with pytest.raises(LayerError, match="escape"):
        apply(entry("stolen", tarfile.LNKTYPE, linkname="../outside/secret"))
    with pytest.raises(LayerError, match="hard link target|No such file"):
        apply(entry("stolen", tarfile.LNKTYPE, linkname=str(root.parent / "outside" / "secret")))
    apply(symlink("up", "/../.."))
    with pytest.raises(LayerError, match="No such file"):
        apply(entry("stolen", tarfile.LNKTYPE, linkname=f"up{root.parent}/outside/secret"))
    apply(symlink("link", str(root.parent / "outside" / "secret")), entry("same", tarfile.LNKTYPE, linkname="link"))
    assert (root / "same").is_symlink()  # the symlink itself is linked, never what it points at
    assert os.stat(root.parent / "outside" / "secret").st_nlink == 1
    outside_untouched(root)


def test_whiteouts_never_follow_symlinks_out(root: Path, apply: Any) -> None:
    outside = root.parent / "outside"
    apply(symlink("dir", str(outside)), symlink("file", str(outside / "secret")))
    apply(entry("dir/.wh.secret"), entry(".wh.file"), directory("dir2"), entry("dir2/.wh..wh..opq"))
    apply(symlink("opq", str(outside)))
    apply(entry("opq/.wh..wh..opq"))
    outside_untouched(root)
    assert not (root / "file").is_symlink()


@pytest.mark.parametrize("name", [".wh..", ".wh.", "a/.wh..."])
def test_malformed_whiteouts_are_refused(apply: Any, name: str) -> None:
    with pytest.raises(LayerError, match="not a valid whiteout|escape"):
        apply(entry(name))


def test_garbage_is_not_a_layer(root: Path) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(LayerError, match="not a valid tar archive"):
            apply_layer(fd, io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 1024), "layer")
    finally:
        os.close(fd)


# --- what a layer means ----------------------------------------------------------------


def test_whiteouts_remove_lower_files_and_directories(root: Path, apply: Any) -> None:
    apply(directory("etc"), entry("etc/a", data=b"a"), entry("etc/b", data=b"b"), directory("var"),
          directory("var/lib"), entry("var/lib/x", data=b"x"))
    apply(entry("etc/.wh.a"), entry(".wh.var"), entry("etc/.wh.missing"))
    assert sorted(os.listdir(root / "etc")) == ["b"]
    assert not (root / "var").exists()


def test_an_opaque_directory_keeps_only_its_own_layer(root: Path, apply: Any) -> None:
    apply(directory("d"), entry("d/lower", data=b"1"), directory("d/sub"), entry("d/sub/lower", data=b"2"))
    apply(directory("d"), entry("d/early", data=b"3"), directory("d/sub"), entry("d/.wh..wh..opq"),
          entry("d/late", data=b"4"), entry("d/sub/new", data=b"5"))
    assert sorted(os.listdir(root / "d")) == ["early", "late", "sub"]
    assert sorted(os.listdir(root / "d" / "sub")) == ["new"]


def test_a_whiteout_spares_its_own_layer(root: Path, apply: Any) -> None:
    apply(entry("f", data=b"new"), entry(".wh.f"))
    assert (root / "f").read_bytes() == b"new"


def test_modes_owners_times_xattrs_links_and_devices_are_kept(root: Path, apply: Any) -> None:
    binary = bytes(range(256))
    xattrs = {"SCHILY.xattr.user.note": binary.decode("utf-8", "surrogateescape"),
              "SCHILY.xattr.trusted.overlay.opaque": "y"}
    apply(directory("bin"),
          entry("bin/su", data=b"#!/bin/sh\n", mode=0o4755, uid=1234, gid=5678, pax_headers=xattrs),
          entry("bin/su2", tarfile.LNKTYPE, linkname="bin/su"),
          symlink("bin/link", "su"),
          entry("bin/fifo", tarfile.FIFOTYPE, mode=0o600, uid=7),
          entry("bin/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
          entry("bin/private", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000, mtime=1_500_000_000),
          entry("bin/private/file", data=b"x"))
    su = os.lstat(root / "bin" / "su")
    assert stat.S_IMODE(su.st_mode) == 0o4755 and (su.st_uid, su.st_gid) == (1234, 5678)
    assert su.st_mtime == 1_600_000_000 and su.st_nlink == 2
    assert os.lstat(root / "bin" / "su2").st_ino == su.st_ino
    assert os.getxattr(root / "bin" / "su", "user.note") == binary
    # overlayfs state never comes from an image
    assert "trusted.overlay.opaque" not in os.listxattr(root / "bin" / "su")
    assert os.readlink(root / "bin" / "link") == "su"
    assert stat.S_ISFIFO(os.lstat(root / "bin" / "fifo").st_mode) and os.lstat(root / "bin" / "fifo").st_uid == 7
    null = os.lstat(root / "bin" / "null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3) and stat.S_IMODE(null.st_mode) == 0o666
    private = os.lstat(root / "bin" / "private")
    assert stat.S_IMODE(private.st_mode) == 0o700 and private.st_uid == 1000 and private.st_mtime == 1_500_000_000


def test_types_replace_each_other_across_layers(root: Path, apply: Any) -> None:
    apply(directory("a"), entry("a/inner", data=b"x"), entry("b", data=b"file"))
    apply(entry("a", data=b"now a file"), directory("b"), entry("b/inner", data=b"y"),
          entry("./", tarfile.DIRTYPE, mode=0o711))
    assert (root / "a").read_bytes() == b"now a file"
    assert (root / "b" / "inner").read_bytes() == b"y"
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o711


def test_gzip_layers_and_implicit_parents(root: Path, apply: Any) -> None:
    apply(entry("deep/er/file", data=b"z"), compress=True)
    assert (root / "deep" / "er" / "file").read_bytes() == b"z"


def metadata(st: os.stat_result) -> tuple[int, ...]:
    return st.st_mode, st.st_uid, st.st_gid, st.st_rdev, int(st.st_mtime)


def test_written_layers_read_back_identically(root: Path, apply: Any, tmp_path: Path) -> None:
    """LayerWriter (export) and apply_layer (import) agree: a rootfs survives the round trip."""
    apply(directory("bin"), entry("bin/tool", data=b"t", mode=0o4711, uid=3, gid=4,
                                  pax_headers={"SCHILY.xattr.user.k": "v"}),
          entry("bin/tool2", tarfile.LNKTYPE, linkname="bin/tool"), symlink("sh", "bin/tool"),
          entry("null", tarfile.CHRTYPE, devmajor=1, devminor=3))
    out = io.BytesIO()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        writer = LayerWriter(out)
        writer.add_tree(fd, "")
        writer.close()
    finally:
        os.close(fd)
    copy = tmp_path / "copy"
    copy.mkdir()
    copy_fd = os.open(copy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        apply_layer(copy_fd, io.BytesIO(out.getvalue()), "round trip")
    finally:
        os.close(copy_fd)
    for name in ("bin", "bin/tool", "bin/tool2", "sh", "null"):
        a, b = os.lstat(root / name), os.lstat(copy / name)
        assert metadata(a) == metadata(b), name
    assert os.lstat(copy / "bin/tool").st_ino == os.lstat(copy / "bin/tool2").st_ino
    assert os.getxattr(copy / "bin/tool", "user.k") == b"v"
