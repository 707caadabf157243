"""Sharing bundles as OCI images: export → import → run on ociish, and to and from podman."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runtime, unique_id

PODMAN_LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


@pytest.fixture
def changed_bundle(runtime: Runtime, tmp_path: Path, busybox_rootfs: Path) -> Path:
    """An overlay bundle whose container changed, added and deleted files of its base."""
    base = tmp_path / "base"
    shutil.copytree(busybox_rootfs, base, symlinks=True)
    (base / "srv" / "data").mkdir(parents=True)
    (base / "srv" / "data" / "old").write_text("old\n")
    (base / "etc" / "owned").write_text("owned by 1000\n")
    os.chown(base / "etc" / "owned", 1000, 1000)
    os.chmod(base / "etc" / "owned", 0o666)  # the container has no CAP_DAC_OVERRIDE
    bundle = tmp_path / "changed"
    runtime("bundle", "create", str(bundle), "--base", str(base), "--overlay", "--no-terminal", "--args", "sh", "-c",
            "echo changed > /etc/motd; rm /bin/vi; rm -r /home; mkdir -p /opt/app; echo app > /opt/app/data; "
            "ln /opt/app/data /opt/app/link; echo more >> /etc/owned; rm -r /srv/data; mkdir /srv/data; "
            "echo fresh > /srv/data/new", check=True)
    result = runtime("run", "--bundle", str(bundle), unique_id())
    assert result.returncode == 0, result.stderr
    return bundle


CHECK = ("cat /etc/motd /opt/app/data; ls -ln /opt/app/data /etc/owned | tr -s ' ' | cut -d' ' -f2-4; "
         "ls /bin/vi /home 2>&1 | grep -c 'No such file'; ls /bin/sh; ls /srv/data")


def test_an_exported_overlay_bundle_keeps_its_base_as_a_layer_and_runs_again(
        runtime: Runtime, changed_bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "changed.tar"
    runtime("bundle", "export", str(changed_bundle), str(archive), check=True)
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{manifest_digest}"))  # type: ignore[arg-type]
        diff = tar.extractfile(f"blobs/sha256/{manifest['layers'][1]['digest'].split(':')[1]}")
        names = tarfile.open(fileobj=diff).getnames()  # type: ignore[arg-type]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "localhost/changed:latest"
    assert len(manifest["layers"]) == 2  # the shared base, then the container's own changes
    assert {"bin/.wh.vi", ".wh.home", "etc/motd", "etc/owned", "opt/app/data", "srv/data/.wh..wh..opq"} <= set(names)
    assert "bin/busybox" not in names

    imported = tmp_path / "imported"
    runtime("bundle", "import", str(archive), str(imported), "--no-terminal", "--args", "sh", "-c", CHECK, check=True)
    result = runtime("run", "--bundle", str(imported), unique_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "changed\napp\n1 1000 1000\n2 0 0\n2\n/bin/sh\nnew\n", repr(result.stdout)


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    """podman with storage and state of the test's own (nothing left in the host's store), running
    containers with runc: podman's default runtime is crun where crun is installed, and Debian's crun
    refuses this host's hybrid cgroups."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("podman or runc is not installed (apt-get install podman runc)")
    runroot = tempfile.mkdtemp(prefix="ociish-podman-", dir="/tmp")  # podman wants it under 50 characters
    command = ["podman", "--runtime", "runc", "--root", str(tmp_path / "podman"), "--runroot", runroot,
               "--storage-driver", "vfs", "--events-backend", "file"]
    yield command
    # not `system reset`: that also drops podman networks, which are the host's, not this store's
    subprocess.run([*command, "rmi", "--all", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(runroot, ignore_errors=True)


def call(*command: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"
    return result


def test_podman_loads_and_runs_an_exported_bundle(runtime: Runtime, changed_bundle: Path, tmp_path: Path,
                                                  podman: list[str]) -> None:
    archive = tmp_path / "changed.tar"
    runtime("bundle", "export", str(changed_bundle), str(archive), "--ref", "localhost/ociish-test:1", check=True)
    call(*podman, "load", "-i", str(archive))
    result = call(*podman, "run", "--rm", *PODMAN_LIMITS, "--network", "none", "localhost/ociish-test:1",
                  "sh", "-c", CHECK)
    assert result.stdout == "changed\napp\n1 1000 1000\n2 0 0\n2\n/bin/sh\nnew\n", repr(result.stdout)


def test_a_podman_saved_image_imports_and_runs(runtime: Runtime, busybox_rootfs: Path, tmp_path: Path,
                                               podman: list[str]) -> None:
    rootfs_tar = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs_tar, "w") as tar:
        tar.add(busybox_rootfs, arcname=".")
    call(*podman, "import", "--change", "ENV=GREETING=from-podman", "--change", "WORKDIR=/etc",
         "--change", 'CMD ["sh", "-c", "echo $GREETING in $(pwd)"]', str(rootfs_tar), "localhost/bb:1")
    saved = tmp_path / "saved.tar"
    call(*podman, "save", "--format", "oci-archive", "-o", str(saved), "localhost/bb:1")
    bundle = tmp_path / "from-podman"
    runtime("bundle", "import", str(saved), str(bundle), "--no-terminal", check=True)
    result = runtime("run", "--bundle", str(bundle), unique_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from-podman in /etc\n"
