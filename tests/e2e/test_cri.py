"""containerd's CRI plugin on this host (hybrid cgroups, the cgroupfs driver), driven through
the CRI v1 gRPC API with ociish as the pod's runtime handler, the documented config.toml
block as the handler: the same pod as in the guest VM (tests/vm/test_cri.py, systemd).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from cri_pod import CGROUP2, CriDaemon, pod_lifecycle, snippet

from .conftest import OCIISH, require

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def daemon(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CriDaemon]:
    require("containerd", "ctr", "containerd-shim-runc-v2", "podman")
    if not OCIISH.exists():
        pytest.skip(f"ociish is not installed next to {OCIISH.parent}")
    home = tmp_path_factory.mktemp("cri")
    podman = ["podman", "--root", f"{home}/storage", "--runroot", f"{home}/run", "--tmpdir", f"{home}/tmp",
              "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    # the sandbox's oomScoreAdj (-998) is below this host's own, which only CAP_SYS_RESOURCE may set
    cri = CriDaemon(home, snippet("e2e: containerd-config-toml", str(OCIISH)), busybox_rootfs, podman,
                    cri_options="  restrict_oom_score_adj = true\n")
    yield cri
    cri.stop()
    shutil.rmtree(home / "storage", ignore_errors=True)


def remove_pod_cgroups(parent: str) -> list[Path]:
    """What kubelet does after a pod: remove its cgroup levels where they are empty; those removed."""
    removed = []
    for hierarchy in CGROUP2.iterdir():
        level = hierarchy / parent.lstrip("/")
        while level != hierarchy and level.is_dir() and not any(p.is_dir() for p in level.iterdir()):
            try:
                level.rmdir()
            except OSError:
                break  # another pod's, or busy
            removed.append(level)
            level = level.parent
    return removed


@pytest.mark.parametrize("handler", ["ociish", "runc"])
def test_pod_lifecycle(daemon: CriDaemon, handler: str, tmp_path: Path) -> None:
    facts = pod_lifecycle(daemon, handler, systemd=False, logs=tmp_path)
    assert facts["cgroup"] == f"{facts['parent']}/{facts['container']}"  # cgroupsPath as the shim gives it
    left = remove_pod_cgroups(facts["parent"])
    if handler == "ociish":  # it removes the parents it made once empty; runc leaves them to kubelet
        assert not left, f"ociish left the pod's cgroups: {left}"
