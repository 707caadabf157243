"""The state object a runtime reports."""

from __future__ import annotations

import re

from conformance import host
from conformance.harness import CheckContext
from conformance.registry import check

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


@check("runtime.state.fields", "runtime.state.pid", "runtime.state.bundle")
def state_object(ctx: CheckContext) -> None:
    """state has typed required fields, the container pid and an absolute bundle."""
    b = ctx.bundle()
    b.process["args"] = ["/bin/sleep", "1000"]
    b.config["annotations"] = {"org.example.key": "value"}
    b.write()
    c = ctx.container(b)
    # A relative --bundle: the state must still report an absolute path.
    res = ctx.runtime.create(c.id, b.path.relative_to(ctx.dir), cwd=ctx.dir)
    ctx.require(res.ok, res.describe())
    st = ctx.need(c.state(), "state output is not a JSON object")
    for key in ("ociVersion", "id", "status", "bundle"):
        ctx.expect(isinstance(st.get(key), str), f"{key} missing or not a string: {st}",
                   "runtime.state.fields")
    ctx.expect(SEMVER.match(str(st.get("ociVersion"))), f"ociVersion {st.get('ociVersion')!r}",
               "runtime.state.fields")
    ctx.expect(st.get("id") == c.id, f"id is {st.get('id')!r}", "runtime.state.fields")
    ann = st.get("annotations", {})
    ctx.expect(isinstance(ann, dict) and all(isinstance(v, str) for v in ann.values()),
               f"annotations is not a map of strings: {ann!r}", "runtime.state.fields")
    ctx.expect(st.get("bundle") == str(b.path), f"bundle is {st.get('bundle')!r}, "
               f"expected {b.path}", "runtime.state.bundle")
    _expect_container_pid(ctx, st.get("pid"), "created")
    c.start()
    _expect_container_pid(ctx, (c.state() or {}).get("pid"), "running")


def _expect_container_pid(ctx: CheckContext, pid: object, when: str) -> None:
    """pid must be a live process inside the container's namespaces."""
    req = "runtime.state.pid"
    if not isinstance(pid, int) or pid <= 0:
        ctx.expect(False, f"pid while {when} is {pid!r}", req)
        return
    ns = host.namespaces(pid)
    ctx.expect(ns and ns.get("mount") != ctx.session.host_ns["mount"],
               f"pid {pid} while {when} is not a process in the container", req)
