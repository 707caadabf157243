"""Read-only root, masked paths and read-only paths."""

from __future__ import annotations

import errno

from conformance.harness import CheckContext
from conformance.registry import check


@check("config.root.readonly")
def readonly_root(ctx: CheckContext) -> None:
    """With root.readonly, / is mounted ro and cannot be written."""
    b = ctx.bundle()
    b.config["root"]["readonly"] = True
    report = ctx.observe(b, "--access", "/")
    root = report.mount_at("/")
    ctx.expect(root is not None and "ro" in root.options, "/ is not mounted read-only")
    got = report["access"]["/"].get("write_errno")
    ctx.expect(got == errno.EROFS, f"writing / gives errno {got}, wanted EROFS")


@check("config-linux.maskedPaths")
def masked_paths(ctx: CheckContext) -> None:
    """A masked file reads as empty (or not at all); a masked directory lists nothing."""
    b = ctx.bundle()
    b.add_file("/secret/file", "x" * 100)
    for i in range(3):
        b.add_file(f"/secretdir/f{i}", "secret")
    b.linux["maskedPaths"] = ["/secret/file", "/secretdir", "/proc/kcore"]
    seen = ctx.observe(b, "--access", "/secret/file", "--access", "/secretdir",
                       "--access", "/proc/kcore")["access"]
    for path in ("/secret/file", "/proc/kcore"):
        st = seen[path]
        ctx.expect(not st.get("exists") or st.get("bytes", 0) == 0 or "read_errno" in st,
                   f"{path} is readable: {st}")
    st = seen["/secretdir"]
    ctx.expect(st.get("entries", 0) == 0 or "read_errno" in st,
               f"/secretdir still lists {st.get('entries')} entries")


@check("config-linux.readonlyPaths")
def readonly_paths(ctx: CheckContext) -> None:
    """Read-only paths still read, but writing gives EROFS."""
    b = ctx.bundle()
    b.add_file("/rodir/file", "data")
    b.linux["readonlyPaths"] = ["/rodir", "/proc/sys"]
    sysctl = "/proc/sys/kernel/domainname"  # 0644: only the mount stops writes
    seen = ctx.observe(b, "--access", "/rodir/file", "--access", sysctl)["access"]
    st = seen["/rodir/file"]
    ctx.expect(st.get("bytes") == 4, f"/rodir/file is not readable: {st}")
    for path in ("/rodir/file", sysctl):
        got = seen[path].get("write_errno")
        ctx.expect(got == errno.EROFS, f"{path}: write check gives errno {got}, wanted EROFS")
