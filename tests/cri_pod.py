"""containerd's CRI plugin driven as kubelet drives it, over the CRI v1 gRPC API, with ociish
as a runtime handler: one pod with one container, from RunPodSandbox to RemovePodSandbox.

Shared by the guest suite (tests/vm/test_cri.py: cgroup v2, `SystemdCgroup = true`) and the
host's (tests/e2e/test_cri.py: this host's hybrid cgroups, the cgroupfs driver).  The CRI
client is the `container-runtime-interface-api` binding (the test extra); the images are the
busybox rootfs imported with podman and handed to containerd as OCI archives (no registry).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "clients.md"
DOCUMENTED_OCIISH_PATH = "/usr/local/bin/ociish"
NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace
IMAGE = "localhost/busybox:cri"
PAUSE_IMAGE = "localhost/ociish-pause:cri"  # the sandbox image: the busybox rootfs, waiting
PAUSE = 'trap "exit 0" TERM; while :; do sleep 1; done'
MiB = 1 << 20
CGROUP2 = Path("/sys/fs/cgroup")


def snippet(marker: str, ociish: str) -> str:
    """The fenced block after ``<!-- MARKER -->`` in docs/clients.md, with ociish's real path."""
    match = re.search(rf"<!-- {re.escape(marker)} -->\s*```[a-z]*\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert match, f"docs/clients.md has no block marked <!-- {marker} -->"
    return match.group(1).replace(DOCUMENTED_OCIISH_PATH, ociish)


def run(*argv: str, timeout: float = 300) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{' '.join(argv)} -> {result.returncode}\n{result.stderr}"
    return result.stdout


class CriDaemon:
    """containerd with the CRI plugin in a directory of its own, the documented handler
    config appended (so the docs' snippet is the tested one), and the two images."""

    def __init__(self, home: Path, handlers_toml: str, rootfs: Path, podman: list[str], cri_options: str = "") -> None:
        self.home = home
        self.socket = home / "containerd.sock"
        config = home / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{home}/root"\nstate = "{home}/state"\n'
            f'[grpc]\n  address = "{self.socket}"\n[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{home}/opt"\n'
            f'[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "{PAUSE_IMAGE}"\n{cri_options}'
            f'  [plugins."io.containerd.grpc.v1.cri".cni]\n    bin_dir = "{home}/cni"\n    conf_dir = "{home}/cni"\n\n'
            + handlers_toml)
        self.log = home / "containerd.log"
        with open(self.log, "wb") as log:
            self.daemon = subprocess.Popen(["containerd", "--config", str(config)], stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=log, start_new_session=True)
        self.import_images(rootfs, podman)
        import grpc
        from cri_api.v1 import api_pb2_grpc

        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.version()
                break
            except grpc.RpcError:
                if self.daemon.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"containerd's CRI did not start:\n{self.log.read_text()[-3000:]}") from None
                time.sleep(0.5)

    def ctr(self, *args: str) -> str:
        return run("ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args)

    def import_images(self, rootfs: Path, podman: list[str]) -> None:
        archive = self.home / "rootfs.tar"
        run("tar", "-C", str(rootfs), "-cf", str(archive), ".")
        deadline = time.monotonic() + 120
        while subprocess.run(["ctr", "--address", str(self.socket), "version"], capture_output=True).returncode:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        path = ["--change", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin"]  # runc finds `sh` through the image's PATH only
        for image, change in ((IMAGE, path), (PAUSE_IMAGE, [*path, "--change", f"CMD [\"sh\", \"-c\", {json.dumps(PAUSE)}]"])):
            run(*podman, "import", *change, str(archive), image)
            oci = self.home / f"{image.rsplit(':', 1)[0].rsplit('/', 1)[1]}.tar"
            run(*podman, "save", "--format", "oci-archive", "--output", str(oci), image)
            run(*podman, "rmi", image)
            self.ctr("images", "import", str(oci))

    def version(self) -> Any:
        from cri_api.v1 import api_pb2 as cri

        return self.runtime.Version(cri.VersionRequest(), timeout=30)

    def stop(self) -> None:
        self.channel.close()
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(10)


def cgroup_of(pid: int) -> str:
    """The process's cgroup2 path (its `0::` line), or its memory cgroup on v1/hybrid."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    unified = [line[3:] for line in lines if line.startswith("0::")]
    memory = [line.split(":", 2)[2] for line in lines if line.split(":")[1] == "memory"]
    return memory[0] if memory else unified[0]


def memory_limit_file(cgroup: str) -> Path:
    if (CGROUP2 / "cgroup.controllers").exists():
        return CGROUP2 / cgroup.lstrip("/") / "memory.max"
    return CGROUP2 / "memory" / cgroup.lstrip("/") / "memory.limit_in_bytes"


def pod_lifecycle(daemon: CriDaemon, handler: str, systemd: bool, logs: Path) -> dict[str, Any]:
    """RunPodSandbox → CreateContainer → StartContainer → ExecSync → ContainerStats → the log
    file → StopContainer → RemoveContainer → StopPodSandbox → RemovePodSandbox, asserting each
    answer; returns what the caller checks for its host (cgroups, units)."""
    from cri_api.v1 import api_pb2 as cri

    rt = daemon.runtime
    assert daemon.version().runtime_api_version == "v1"
    uid = uuid.uuid4().hex
    parent = f"kubepods-besteffort-pod{uid}.slice" if systemd else f"/kubepods/besteffort/pod{uid}"
    node = cri.NamespaceOption(network=cri.NODE)  # host network: no CNI needed
    sandbox_config = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name="ociish-pod", uid=uid, namespace="default", attempt=0),
        log_directory=str(logs),  # no hostname: kubelet sets none for a host-network pod
        linux=cri.LinuxPodSandboxConfig(cgroup_parent=parent,
                                        security_context=cri.LinuxSandboxSecurityContext(namespace_options=node)))
    pod = rt.RunPodSandbox(cri.RunPodSandboxRequest(config=sandbox_config, runtime_handler=handler),
                           timeout=300).pod_sandbox_id
    facts: dict[str, Any] = {"parent": parent}
    try:
        status = rt.PodSandboxStatus(cri.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True), timeout=60)
        assert status.status.state == cri.SANDBOX_READY
        assert json.loads(status.info["info"])["runtimeHandler"] == handler
        resources = cri.LinuxContainerResources(memory_limit_in_bytes=64 * MiB, cpu_period=100000, cpu_quota=20000)
        container_config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="app", attempt=0), image=cri.ImageSpec(image=IMAGE),
            command=["sh", "-c", 'echo hello-cri; trap "exit 0" TERM; while :; do sleep 0.2; done'],
            log_path="app.log",
            linux=cri.LinuxContainerConfig(resources=resources,
                                           security_context=cri.LinuxContainerSecurityContext(namespace_options=node)))
        cid = rt.CreateContainer(cri.CreateContainerRequest(pod_sandbox_id=pod, config=container_config,
                                                            sandbox_config=sandbox_config), timeout=300).container_id
        rt.StartContainer(cri.StartContainerRequest(container_id=cid), timeout=300)
        info = json.loads(rt.ContainerStatus(cri.ContainerStatusRequest(container_id=cid, verbose=True),
                                             timeout=60).info["info"])
        pid = info["pid"]
        facts.update(container=cid, pid=pid, cgroup=cgroup_of(pid), sandbox_pid=json.loads(status.info["info"])["pid"])
        assert memory_limit_file(facts["cgroup"]).read_text().strip() == str(64 * MiB)
        executed = rt.ExecSync(cri.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo in-$((40 + 2)); exit 3"],
                                                   timeout=60), timeout=120)
        assert (executed.stdout, executed.exit_code) == (b"in-42\n", 3)
        stats = rt.ContainerStats(cri.ContainerStatsRequest(container_id=cid), timeout=60).stats
        assert stats.attributes.id == cid and stats.memory.working_set_bytes.value > 0
        assert stats.cpu.usage_core_nano_seconds.value > 0
        deadline = time.monotonic() + 60
        log_file = logs / "app.log"
        while not (log_file.exists() and "hello-cri" in log_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        first = log_file.read_text().splitlines()[0].split(" ", 3)
        assert first[1:] == ["stdout", "F", "hello-cri"], first  # the CRI log format: time stream tag text
        rt.StopContainer(cri.StopContainerRequest(container_id=cid, timeout=20), timeout=120)
        state = rt.ContainerStatus(cri.ContainerStatusRequest(container_id=cid), timeout=60).status
        assert state.state == cri.CONTAINER_EXITED and state.exit_code == 0  # its TERM trap ran
        rt.RemoveContainer(cri.RemoveContainerRequest(container_id=cid), timeout=120)
    finally:
        rt.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=120)
        rt.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=120)
    assert not rt.ListPodSandbox(cri.ListPodSandboxRequest(), timeout=60).items
    return facts
