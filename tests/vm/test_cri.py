"""containerd's CRI plugin on a systemd + cgroup v2 host, as a Kubernetes node runs it
(`SystemdCgroup = true`, the handler of docs/clients.md), driven through the CRI v1 gRPC
API with ociish as the pod's runtime handler: every container is a systemd scope in the
pod's nested slice, with its limits, and nothing is left once the pod is removed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from cri_pod import CGROUP2, MiB, CriDaemon, pod_lifecycle, snippet

OCIISH = "/usr/local/bin/ociish"


def show(unit: str, name: str) -> str:
    return subprocess.run(["systemctl", "show", unit, f"--property={name}", "--value"], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def daemon(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CriDaemon]:
    home = tmp_path_factory.mktemp("containerd")
    cri = CriDaemon(home, snippet("vm: containerd-config-toml-systemd", OCIISH), busybox_rootfs, ["podman"])
    yield cri
    cri.stop()


def test_pod_lifecycle_in_systemd_scopes(daemon: CriDaemon, tmp_path: Path) -> None:
    seen: dict[str, str] = {}
    real = daemon.runtime.ExecSync

    def exec_and_look(request, **kwargs):  # the container runs while ExecSync is served: look at its unit
        unit = f"cri-containerd-{request.container_id}.scope"
        seen.update({name: show(unit, name) for name in ("MemoryMax", "CPUQuotaPerSecUSec", "Delegate", "Slice")})
        return real(request, **kwargs)

    daemon.runtime.ExecSync = exec_and_look
    try:
        facts = pod_lifecycle(daemon, "ociish", systemd=True, logs=tmp_path)
    finally:
        daemon.runtime.ExecSync = real
        subprocess.run(["systemctl", "stop", "kubepods.slice"], check=False)
    pod_slice = facts["parent"]
    scope = f"cri-containerd-{facts['container']}.scope"
    assert facts["cgroup"] == f"/kubepods.slice/kubepods-besteffort.slice/{pod_slice}/{scope}"  # nested slices
    assert seen == {"MemoryMax": str(64 * MiB), "CPUQuotaPerSecUSec": "200ms", "Delegate": "yes", "Slice": pod_slice}
    # gone with the pod: the container's scope and the sandbox's
    assert show(scope, "LoadState") == "not-found"
    assert not (CGROUP2 / facts["cgroup"].lstrip("/")).exists()
