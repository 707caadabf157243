"""Shared fixtures: a busybox rootfs built once, bundles per test, and the real CLI.

Integration tests run real containers as root through `python -m ociish` with a private
--root per test; every container a test leaves is force-deleted afterwards and the test
fails if anything (state, cgroup) is left behind.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_ROOTFS = REPO / "bundles" / "busybox" / "build-rootfs.sh"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "root: needs root and a real kernel (integration)")


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("integration tests run real containers and need root")
    if not Path("/bin/busybox").exists():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    rootfs = tmp_path_factory.mktemp("busybox") / "rootfs"
    subprocess.run(["sh", str(BUILD_ROOTFS), str(rootfs)], check=True, capture_output=True)
    return rootfs


def assert_same_verdict(document: object, schema_name: str, fast: bool | None = None) -> None:
    """The compiled fast check (ociish.spec.fastcheck) must give jsonschema's verdict."""
    from ociish.spec import validate

    if fast is None:
        fast = validate.conforms(document, schema_name)
    reference = validate._validator(schema_name).is_valid(document)
    assert fast == reference, f"fast check says {fast}, jsonschema {reference}, for {schema_name}: {document!r}"[:2000]


@pytest.fixture(autouse=True, scope="session")
def fast_check_agrees_with_jsonschema() -> Iterator[None]:
    """Every document validated in the test process gets both verdicts (and so does every
    config a test writes for the CLI: Bundle.write)."""
    from ociish.spec import validate

    original = validate.conforms

    def both(document: object, schema_name: str) -> bool:
        fast = original(document, schema_name)
        assert_same_verdict(document, schema_name, fast)
        return fast

    validate.conforms = both
    yield
    validate.conforms = original


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """An empty state root of its own."""
    from ociish.state.store import StateStore

    return StateStore(str(tmp_path / "root"))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process whose pid a test record can name."""
    proc = subprocess.Popen(["sleep", "100"])
    yield proc
    proc.kill()
    proc.wait()


def record(container_id: str, **fields: Any) -> dict[str, Any]:
    """A state record as create writes it, with ``fields`` changed."""
    return {"ociVersion": "1.3.0", "id": container_id, "status": "created", "pid": 0, "bundle": "/b",
            "rootfs": "/b/rootfs", "created": "", "owner": "root", "annotations": {},
            "creator": {"pid": 0, "start": None}, "init_start": None, "pid_namespace_new": True, "cgroup": None,
            "hooks": {"poststart": [], "poststop": []}, **fields}


def default_config() -> dict[str, Any]:
    from ociish.spec.defaults import default_config as make

    return make()


class Runtime:
    """Runs `ociish --root <private root> ...` as a subprocess, like a client would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.command = [sys.executable, "-m", "ociish", "--root", str(root)]

    def __call__(self, *args: str, check: bool = False, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess:
        """Output goes through temp files, not pipes: a created container keeps the
        runtime's stdout/stderr as its own, so a pipe would never reach EOF."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kwargs.setdefault("stdin", subprocess.DEVNULL)
            result = subprocess.run([*self.command, *args], timeout=timeout, stdout=out, stderr=err, **kwargs)
            out.seek(0)
            err.seek(0)
            result.stdout = out.read().decode(errors="replace")
            result.stderr = err.read().decode(errors="replace")
        if check and result.returncode != 0:
            raise AssertionError(f"ociish {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def state(self, container_id: str) -> dict[str, Any]:
        return json.loads(self("state", container_id, check=True).stdout)

    def ids(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())


class Bundle:
    """A bundle directory with its own copy of the busybox rootfs and an editable config."""

    def __init__(self, path: Path, rootfs_source: Path) -> None:
        self.path = path
        self.rootfs = path / "rootfs"
        shutil.copytree(rootfs_source, self.rootfs, symlinks=True)
        self.config = default_config()
        self.config["root"]["readonly"] = False
        self.config["process"]["terminal"] = False  # stdio stays the runtime's, tests read it

    def write(self) -> "Bundle":
        assert_same_verdict(self.config, "config")
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self

    def args(self, *argv: str) -> "Bundle":
        self.config["process"]["args"] = list(argv)
        return self.write()

    def shell(self, script: str) -> "Bundle":
        return self.args("sh", "-c", script)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "state")
    yield rt
    leftovers = rt.ids()
    for container_id in leftovers:
        rt("delete", "--force", container_id)
    assert rt.ids() == [], "delete --force left state behind"
    for container_id in leftovers:
        assert not cgroup_dirs(container_id), f"cgroups of {container_id} left behind"


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: Path) -> Bundle:
    return Bundle(tmp_path / "bundle", busybox_rootfs).write()


@pytest.fixture
def running(runtime: Runtime, bundle: Bundle) -> str:
    """A detached `sleep 1000` container of the default bundle; its id."""
    bundle.args("sleep", "1000")
    cid = unique_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    return cid


@pytest.fixture
def make_bundle(tmp_path: Path, busybox_rootfs: Path) -> Any:
    def make(name: str) -> Bundle:
        return Bundle(tmp_path / name, busybox_rootfs).write()

    return make


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_container(runtime: Runtime, bundle: Bundle, resources: dict[str, Any] | None = None,
                     script: str = "sleep 1000", start: bool = True) -> str:
    """Create (and start) a container running ``script`` with ``resources`` added; its id."""
    bundle.config["linux"]["resources"].update(resources or {})
    bundle.shell(script)
    cid = unique_id()
    runtime("create", "--bundle", str(bundle.path), cid, check=True)
    if start:
        runtime("start", cid, check=True)
    return cid


def wait_status(runtime: Runtime, cid: str, status: str, timeout: float = 30.0) -> str:
    """Poll the container's state until it is ``status`` or ``timeout`` passes; the last seen."""
    deadline = time.monotonic() + timeout
    while (current := runtime.state(cid)["status"]) != status and time.monotonic() < deadline:
        time.sleep(0.05)
    return current


def expect_create_failure(runtime: Runtime, bundle: Bundle, *fragments: str) -> None:
    """`create` exits 1 naming every fragment and leaves no state and no cgroup behind."""
    bundle.write()
    cid = unique_id()
    result = runtime("create", "--bundle", str(bundle.path), cid)
    assert result.returncode == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert runtime.ids() == [] and not cgroup_dirs(cid)


def cgroup_dirs(container_id: str) -> list[Path]:
    """Every cgroup directory on the host whose name is the container id.

    Other cgroups may come and go while this walks (other tests, other sessions)."""
    found = []
    for hierarchy in CGROUP_ROOT.iterdir():
        if hierarchy.is_dir() and not hierarchy.is_symlink():
            for directory, subdirs, _ in os.walk(hierarchy, onerror=lambda _e: None):
                found += [Path(directory, d) for d in subdirs if d == container_id]
    return found


def run_output(runtime: Runtime, bundle: Bundle, *, check: bool = True) -> subprocess.CompletedProcess:
    """`ociish run` the bundle in the foreground and return the completed process."""
    result = runtime("run", "--bundle", str(bundle.path), unique_id())
    if check and result.returncode != 0:
        raise AssertionError(f"run failed ({result.returncode}): {result.stderr}")
    return result


def copy_config(config: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(config)
