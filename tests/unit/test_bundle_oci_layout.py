"""`bundle import`/`export` with OCI image layouts made here (tarfile + json + sha256, no podman)."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from test_bundle_layers import directory, entry, layer_tar

from ociish.bundle import export_image, import_image
from ociish.bundle.image import MEDIA_INDEX, MEDIA_LAYER, MEDIA_MANIFEST, host_architecture
from ociish.cli import main
from ociish.errors import OciishError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="importing keeps owners: needs root")

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100:Bob:/home/bob:/bin/sh\n"
GROUP = b"root:x:0:\nusers:x:100:\naudio:x:29:bob,alice\nstaff:x:50:\n"
BASE = layer_tar(directory("etc"), entry("etc/passwd", data=PASSWD), entry("etc/group", data=GROUP),
                 directory("srv"), entry("srv/old", data=b"old"), entry("srv/keep", data=b"keep"))
TOP = layer_tar(entry("srv/.wh.old"), entry("srv/new", data=b"new"))


def write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def image(layout: Path, layers: list[bytes], config: dict[str, Any], media_type: str = MEDIA_LAYER) -> dict[str, Any]:
    """Blobs of one image; returns its manifest descriptor."""
    layer_descs = [{"mediaType": media_type, **write_blob(layout, data)} for data in layers]
    diff_ids = [desc["digest"] for desc in layer_descs]
    image_config = {"architecture": host_architecture(), "os": "linux", "config": config,
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **write_blob(layout, json.dumps(image_config).encode())},
                "layers": layer_descs}
    return {"mediaType": MEDIA_MANIFEST, **write_blob(layout, json.dumps(manifest).encode())}


def make_layout(path: Path, manifests: list[dict[str, Any]] | None = None, **config: Any) -> Path:
    path.mkdir(exist_ok=True)
    if manifests is None:
        manifests = [{**image(path, [BASE, TOP], config), "annotations": {"org.opencontainers.image.ref.name": "t:1"}}]
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return path


def archive_of(layout: Path) -> Path:
    archive = layout.with_suffix(".tar")
    with tarfile.open(archive, "w") as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(layout / name, arcname=name)
    return archive


def config_of(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "config.json").read_text())


@pytest.mark.parametrize("packed", [False, True], ids=["layout-dir", "archive"])
def test_layers_in_order_and_the_image_config_become_the_bundle(tmp_path: Path, packed: bool) -> None:
    layout = make_layout(tmp_path / "img", Entrypoint=["/bin/app"], Cmd=["--serve"], WorkingDir="/srv",
                         Env=["PATH=/opt/bin:/bin", "MODE=prod"], User="bob", Labels={"org.example/team": "x"},
                         StopSignal="SIGINT")
    bundle = import_image(str(archive_of(layout) if packed else layout), tmp_path / "bundle").path
    rootfs = bundle / "rootfs"
    assert sorted(os.listdir(rootfs / "srv")) == ["keep", "new"]
    process = config_of(bundle)["process"]
    assert process["args"] == ["/bin/app", "--serve"] and process["cwd"] == "/srv"
    assert "PATH=/opt/bin:/bin" in process["env"] and "MODE=prod" in process["env"]
    assert process["user"] == {"uid": 1000, "gid": 100, "additionalGids": [29]}
    assert config_of(bundle)["annotations"] == {"org.example/team": "x",
                                                "org.opencontainers.image.stopSignal": "SIGINT"}
    assert config_of(bundle)["root"] == {"path": "rootfs", "readonly": False}


@pytest.mark.parametrize(("user", "expected"), [
    ("1000", {"uid": 1000, "gid": 100, "additionalGids": [29]}),
    ("4242", {"uid": 4242, "gid": 0}),
    ("bob:staff", {"uid": 1000, "gid": 50}),
    ("0:29", {"uid": 0, "gid": 29}),
])
def test_image_users_are_resolved_in_the_images_own_files(tmp_path: Path, user: str, expected: dict[str, Any]) -> None:
    bundle = import_image(str(make_layout(tmp_path / "img", User=user)), tmp_path / "bundle").path
    assert config_of(bundle)["process"]["user"] == expected


def test_the_callers_options_win_over_the_image(tmp_path: Path) -> None:
    layout = make_layout(tmp_path / "img", Cmd=["serve"], Env=["MODE=prod"])
    bundle = import_image(str(layout), tmp_path / "bundle",
                          customize=lambda c: c.args("sh").env("MODE", "test").terminal(False)).path
    process = config_of(bundle)["process"]
    assert process["args"] == ["sh"] and "MODE=test" in process["env"] and process["terminal"] is False


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda p: (p / "oci-layout").unlink(), "not an OCI image layout"),
    (lambda p: ((p / "oci-layout").unlink(), (p / "manifest.json").write_text("[]")),
     "save it with --format oci-archive"),
    (lambda p: _tamper(p, b"srv/new"), "does not match its digest"),
    (lambda p: (p / "index.json").write_text("{nope"), "index.json: not valid JSON"),
    (lambda p: (p / "index.json").write_text('{"manifests": []}'), "lists no image"),
])
def test_broken_or_tampered_layouts_are_refused_and_leave_nothing(tmp_path: Path, break_it: Any, message: str) -> None:
    layout = make_layout(tmp_path / "img", User="nobody-here")
    break_it(layout)
    with pytest.raises(OciishError, match=message):
        import_image(str(layout), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def _tamper(layout: Path, needle: bytes) -> None:
    for blob in (layout / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        if needle in data:
            blob.write_bytes(data.replace(b"new", b"NEW"))


def test_an_unknown_user_fails_after_the_layers_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OciishError, match="no 'nobody-here' in the image's /etc/passwd"):
        import_image(str(make_layout(tmp_path / "img", User="nobody-here")), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_blobs_are_read_beneath_the_layout_only(tmp_path: Path) -> None:
    layout = make_layout(tmp_path / "img")
    manifest_blob = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    target = layout / "blobs" / "sha256" / manifest_blob
    (tmp_path / "moved").write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(tmp_path / "moved")
    with pytest.raises(OciishError, match="is missing"):
        import_image(str(layout), tmp_path / "bundle")


def test_several_images_need_a_ref_and_indexes_are_resolved_by_platform(tmp_path: Path) -> None:
    layout = tmp_path / "img"
    layout.mkdir()
    one = image(layout, [BASE], {"Cmd": ["one"]})
    two = image(layout, [BASE], {"Cmd": ["two"]})
    other_arch = image(layout, [BASE], {"Cmd": ["wrong"]})
    nested = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
        {**other_arch, "platform": {"os": "linux", "architecture": "not-this-one"}},
        {**two, "platform": {"os": "linux", "architecture": host_architecture()}}]}
    index_desc = {"mediaType": MEDIA_INDEX, **write_blob(layout, json.dumps(nested).encode())}
    make_layout(layout, [{**one, "annotations": {"org.opencontainers.image.ref.name": "one"}},
                         {**index_desc, "annotations": {"org.opencontainers.image.ref.name": "multi"}}])
    with pytest.raises(OciishError, match=r"holds 2 images; choose one with --ref \(one, multi\)"):
        import_image(str(layout), tmp_path / "b0")
    with pytest.raises(OciishError, match="no image named 'three'"):
        import_image(str(layout), tmp_path / "b0", ref="three")
    assert config_of(import_image(str(layout), tmp_path / "b1", ref="one").path)["process"]["args"] == ["one"]
    assert config_of(import_image(str(layout), tmp_path / "b2", ref="multi").path)["process"]["args"] == ["two"]


def test_zstd_layers_are_refused_by_media_type(tmp_path: Path) -> None:
    layout = tmp_path / "img"
    layout.mkdir()
    desc = image(layout, [BASE], {}, media_type=MEDIA_LAYER + "+zstd")
    make_layout(layout, [desc])
    with pytest.raises(OciishError, match=r"layer 1: unsupported media type '.*\+zstd'"):
        import_image(str(layout), tmp_path / "bundle")


def test_export_then_import_gives_back_the_rootfs_and_process(tmp_path: Path) -> None:
    source = import_image(str(make_layout(tmp_path / "img", Cmd=["/bin/app"], User="bob", WorkingDir="/srv",
                                          Labels={"team": "x"})), tmp_path / "bundle").path
    archive = tmp_path / "out.tar"
    export_image(source, archive, ref="localhost/app:1")
    back = import_image(str(archive), tmp_path / "again", ref="localhost/app:1").path
    assert sorted(os.listdir(back / "rootfs" / "srv")) == ["keep", "new"]
    assert (back / "rootfs" / "etc" / "passwd").read_bytes() == PASSWD
    process = config_of(back)["process"]
    assert process["args"] == ["/bin/app"] and process["cwd"] == "/srv"
    assert process["user"] == {"uid": 1000, "gid": 100}  # an image's User has no supplementary groups
    assert config_of(back)["annotations"] == {"team": "x"}


def test_import_needs_a_new_directory(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    with pytest.raises(OciishError, match="already exists"):
        import_image(str(make_layout(tmp_path / "img")), tmp_path / "bundle")
    assert os.listdir(tmp_path / "bundle") == []


def test_the_cli_names_a_bad_source_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("not a tar")
    for source, message in ((tmp_path / "missing", "No such file or directory"),
                            (tmp_path / "file", "neither an OCI image layout directory nor a tar archive of one"),
                            (tmp_path, "not an OCI image layout (no oci-layout file)")):
        assert main(["bundle", "import", str(source), str(tmp_path / "dest")]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["bundle"]) == 1 and "required: ACTION" in capsys.readouterr().err


@pytest.mark.parametrize(("field", "value", "message"), [
    ("Cmd", "sh -c true", "Cmd: expected a list of strings"),
    ("Env", [1], "Env: expected a list of strings"),
    ("Labels", {"a": 1}, "Labels: expected a dict of strings"),
    ("User", 0, "User: expected a string"),
])
def test_an_image_config_of_the_wrong_shape_is_refused(tmp_path: Path, field: str, value: Any, message: str) -> None:
    with pytest.raises(OciishError, match=message):
        import_image(str(make_layout(tmp_path / "img", **{field: value})), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
