"""The tutorial chapter on a Debian rootfs: gcc inside an isolated container prints Hello, World!

Slow the first time on a machine (debootstrap downloads and installs gcc: about 40 s on a
good mirror); the rootfs is then cached under /var/cache/ociish/debian-rootfs/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHAPTER = Path(__file__).resolve().parents[2] / "bundles" / "debian" / "chapter.sh"


@pytest.mark.slow
def test_the_chapter_compiles_and_runs_helloworld_in_isolation() -> None:
    if os.geteuid() != 0:
        pytest.skip("the chapter runs real containers and debootstrap: needs root")
    result = subprocess.run(["sh", str(CHAPTER), f"{sys.executable} -m ociish"], capture_output=True, text=True,
                            timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "Hello, World!" in lines
    assert "I am chapter, pid 1, in /root" in lines
    for claim in ("network interfaces: lo", "/tmp is a tmpfs", "memory limit: 268435456 bytes",
                  "the host's /chapter is read-only", "the shared rootfs has no helloworld.c: it was not written to",
                  "the host's /root is as it was", "nothing of the container is mounted on the host"):
        assert claim in lines, claim
