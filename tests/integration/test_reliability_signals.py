"""`ociish run` in the foreground: the signals it receives reach the container process, and
it exits with that process's status (128+N when signal N killed it), as runc does.
Nothing is left afterwards: no container, no process, no zombie."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Bundle, Runtime, unique_id

TRAPPED = ("INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "ALRM", "WINCH")
DEADLY = ("INT", "TERM", "HUP", "USR1", "USR2", "ALRM")  # default action: terminate (QUIT would dump core)


def start_run(runtime: Runtime, bundle: Bundle, out: Path) -> tuple[subprocess.Popen, str]:
    """`ociish run` in the background; returns once the container printed "ready"."""
    cid = unique_id("sig")
    with open(out, "wb") as stdout:
        proc = subprocess.Popen([*runtime.command, "run", "--bundle", str(bundle.path), cid],
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while b"ready\n" not in out.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the container did not start: {out.read_text()}")
        time.sleep(0.01)
    return proc, cid


@pytest.mark.parametrize("name", TRAPPED)
def test_run_forwards_the_signal_and_exits_with_the_process_status(runtime: Runtime, bundle: Bundle, host,
                                                                    tmp_path: Path, name: str) -> None:
    number = signal.Signals[f"SIG{name}"].value
    bundle.shell(f"trap 'echo got {name}; exit {100 + number}' {name}; echo ready; "
                 "while true; do sleep 0.02; done")
    out = tmp_path / "out"
    proc, cid = start_run(runtime, bundle, out)
    proc.send_signal(number)
    assert proc.wait(timeout=20) == 100 + number
    assert out.read_text() == f"ready\ngot {name}\n"
    host.assert_clean([cid], [runtime.root])


@pytest.mark.parametrize("name", DEADLY)
def test_run_exits_128_plus_n_when_the_signal_kills_the_process(runtime: Runtime, bundle: Bundle, host,
                                                                 tmp_path: Path, name: str) -> None:
    """Without a pid namespace of its own the process is not an init, so the signal's
    default action applies to it."""
    number = signal.Signals[f"SIG{name}"].value
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    bundle.shell("echo ready; exec sleep 1000")
    out = tmp_path / "out"
    proc, cid = start_run(runtime, bundle, out)
    proc.send_signal(number)  # to sh before its exec, or to sleep after: the same death
    assert proc.wait(timeout=20) == 128 + number
    host.assert_clean([cid], [runtime.root])


@pytest.mark.parametrize("name", DEADLY)
def test_run_ends_an_init_without_a_handler_as_the_signal_would(runtime: Runtime, bundle: Bundle, host,
                                                                tmp_path: Path, name: str) -> None:
    """The init of a pid namespace never gets a signal it has no handler for (the kernel
    drops it): `run` carries out the default action instead and exits 128+N."""
    number = signal.Signals[f"SIG{name}"].value
    bundle.shell("echo ready; exec sleep 1000")
    out = tmp_path / "out"
    proc, cid = start_run(runtime, bundle, out)
    proc.send_signal(number)
    assert proc.wait(timeout=20) == 128 + number
    host.assert_clean([cid], [runtime.root])
