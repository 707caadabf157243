"""Differences from runc that ociish keeps on purpose, each with its reason (docs/clients.md
has the spec lines).  `explain` gives the reason of a difference, or None when it is not
one of these."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

# (case glob, observable glob, which runtimes' values differ from runc's, reason)
DELIBERATE: list[tuple[str, str, set[str], str]] = [
    ("*domainname*", "container.uname", {"ociish", "crun"},
     "domainname is applied (config.md: it \"specifies the container's domainname as seen by processes "
     "running inside the container\"); runc 1.1.5 ignores it, runc 1.2 and crun set it"),
    ("*mounts.tmpfs*", "container.mounts", {"ociish", "crun"},
     "a tmpfs over an existing directory gets that directory's mode as the mode= mount option, where runc "
     "chmods the mounted root; the directory's mode is the same, and mountinfo shows ociish's mode="),
]


def explain(case: str, observable: str, values: dict[str, Any]) -> str | None:
    baseline = next(iter(values.values()))
    differing = {name for name, value in values.items() if value != baseline}
    for case_glob, observable_glob, runtimes, reason in DELIBERATE:
        if fnmatchcase(case, case_glob) and fnmatchcase(observable, observable_glob) and differing <= runtimes:
            return reason
    return None
