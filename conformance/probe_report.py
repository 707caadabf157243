"""Parsed probe output: what the container process saw."""

from __future__ import annotations

import json
from typing import Any

from conformance.linux import CAP_SET_FIELDS
from conformance.mountinfo import Mount

MARKER = "ociish-conformance"


class ProbeOutputError(ValueError):
    """The probe's report is missing, truncated or garbled."""


class ProbeReport:
    """Accessors over the probe's JSON object."""

    def __init__(self, data: dict[str, Any]):
        self.data = data

    @classmethod
    def from_output(cls, text: str) -> ProbeReport:
        """Find the probe's complete JSON object in captured output."""
        for raw in reversed(text.splitlines()):
            line = raw.strip()
            if MARKER not in line:
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ProbeOutputError(f"probe output is not valid JSON: {exc}") from exc
            if data.get("probe") == MARKER and data.get("complete") is True:
                return cls(data)
            raise ProbeOutputError("probe output is incomplete")
        tail = " ".join(text.split())[-300:]
        raise ProbeOutputError("no probe output" + (f" (got: {tail})" if tail else ""))

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def env(self) -> dict[str, str]:
        return dict(e.split("=", 1) for e in self.data["env"] if "=" in e)

    def caps(self, kind: str) -> int:
        """Capability set (bounding, effective, ...) as a bit mask."""
        return int(self.data["status"][CAP_SET_FIELDS[kind]], 16)

    def status(self, name: str) -> str:
        return str(self.data["status"].get(name, ""))

    @property
    def mounts(self) -> list[Mount]:
        return [Mount.parse(line) for line in self.data["mountinfo"]]

    def mount_at(self, point: str) -> Mount | None:
        """The topmost mount at point (the one processes see)."""
        found = [m for m in self.mounts if m.point == point]
        return found[-1] if found else None

    def dev(self, name: str) -> dict[str, Any]:
        """lstat() of /dev/name as the probe saw it ({} if absent)."""
        entry = self.data["dev"].get(name)
        return entry if isinstance(entry, dict) else {}
