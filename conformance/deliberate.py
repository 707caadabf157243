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
    ("process.capabilities.effective-not-permitted", "*", {"ociish", "crun"},
     "capabilities that cannot be granted are dropped with a one-line warning and the container runs (config.md "
     "\"capabilities\": \"Runtimes SHOULD NOT fail if the container configuration requests capabilities that "
     "cannot be granted\"); runc and crun fail at capset"),
    ("*unknown-key*", "create.stderr", {"ociish"},
     "an unknown key is ignored, as config.md \"Extensibility\" demands (\"MUST ignore unknown properties\"), "
     "with one warning line naming the key meant (linux.namespace for linux.namespaces silently gives no "
     "namespaces); runc is silent"),
    ("*linux.memoryPolicy*", "*", {"ociish", "crun"},
     "linux.memoryPolicy (runtime-spec 1.3, config-linux.md \"Memory policy\") is applied, its kernel rules checked "
     "at create (set_mempolicy(2): MPOL_DEFAULT takes no flags, nodes only where the mode uses them); runc 1.1.5 and "
     "Debian's crun predate it and ignore it"),
    ("*linux.intelRdt*", "*", {"ociish", "crun"},
     "linux.intelRdt set, even empty, needs a resctrl filesystem, which this host lacks (config-linux.md \"IntelRdt\": "
     "\"If no mounted resctrl pseudo-filesystem is available in the runtime mount namespace, the runtime MUST "
     "generate an error\"); runc 1.1.5 and crun ignore an intelRdt without schemata"),
    # drawn from the schema with seed 15 (`schema_cases`)
    ("schema-15-14:linux.devices", "*", {"ociish", "crun"},
     "a device at / is refused (config-linux.md \"Devices\": \"If a file already exists at path that does not "
     "match the requested device, the runtime MUST generate an error\"); runc 1.1.5 creates the container"),
    ("command.delete", "created.*", {"ociish"},
     "delete of a created container without --force fails (runtime.md \"delete\": \"Attempting to delete a "
     "container that is not stopped MUST have no effect on the container and MUST generate an error\"); runc and "
     "crun delete it"),
    ("command.exec", "--process.no-path.*", {"ociish"},
     "a process.env without PATH is searched with the default path, as execvp does (config.md \"args\": the first "
     "entry \"is used with the same semantics as IEEE Std 1003.1-2008 execvp's file\"); runc and crun find nothing"),
    ("command.events", "--stats.stdout", {"ociish", "crun"},
     "hugetlb statistics come from the cgroup2 tree where a hybrid host keeps that controller; runc 1.1.5 reads "
     "only the v1 hierarchies there and reports none"),
]


def explain(case: str, observable: str, values: dict[str, Any]) -> str | None:
    baseline = next(iter(values.values()))
    differing = {name for name, value in values.items() if value != baseline}
    for case_glob, observable_glob, runtimes, reason in DELIBERATE:
        if fnmatchcase(case, case_glob) and fnmatchcase(observable, observable_glob) and differing <= runtimes:
            return reason
    return None
