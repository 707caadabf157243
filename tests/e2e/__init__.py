"""End-to-end tests: real podman and containerd driving ociish (and runc, as the control).

A package, so that its conftest is imported as ``e2e.conftest`` and does not take the
place of ``tests/conftest.py``, which other test modules import as ``conftest``.
"""
