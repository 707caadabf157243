"""linux.netDevices: moving host interfaces into the container."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conformance.harness import CheckContext
from conformance.registry import check

# A documentation-range address: only ever assigned, never used for traffic.
ADDRESS = "198.51.100.77"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def host_interface(ctx: CheckContext, suffix: str) -> str:
    """Create a virtual (ifb) interface on the host, deleted at cleanup if still there."""
    name = f"ocf{ctx.id_stem[-7:].replace('-', '')}{suffix}"[:15]
    res = _ip("link", "add", name, "type", "ifb")
    if res.returncode != 0:
        ctx.skip(f"cannot create a virtual interface here: {res.stderr.strip()}")
    ctx.defer(lambda: _ip("link", "del", name))
    return name


def host_has(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


@check("config-linux.netDevices.move", "config-linux.netDevices.up",
       "config-linux.netDevices.addresses", "config-linux.netDevices.template",
       "config-linux.netDevices.no-move-back")
def move_interfaces(ctx: CheckContext) -> None:
    """Interfaces move in (renamed, numbered), keep addresses, come up, never come back."""
    renamed, templated = host_interface(ctx, "a"), host_interface(ctx, "b")
    _ip("addr", "add", f"{ADDRESS}/32", "dev", renamed)
    b = ctx.bundle()
    b.linux["netDevices"] = {renamed: {"name": "confnet0"}, templated: {"name": "conft%d"}}
    b.process["args"] = ["/probe"]
    b.write()
    c = ctx.container(b)
    c.create()
    c.start()
    c.wait_stopped()
    report = c.report()
    ifs = {i["name"]: i for i in report["netifs"]}
    moved = ctx.expect("confnet0" in ifs and not host_has(renamed),
                       f"{renamed} was not moved in as confnet0 (container has {sorted(ifs)})",
                       "config-linux.netDevices.move")
    ctx.expect("conft0" in ifs, f"{templated} did not become conft0 (container has "
                                f"{sorted(ifs)})", "config-linux.netDevices.template")
    ctx.expect(ifs.get("confnet0", {}).get("up"), "confnet0 is not up",
               "config-linux.netDevices.up")
    ctx.expect(f"confnet0 {ADDRESS}" in report["inet"],
               f"the address was lost: {report['inet']}", "config-linux.netDevices.addresses")
    c.delete()
    ctx.expect(moved and not host_has(renamed) and not host_has("confnet0"),
               "the interface was not moved, or came back to the host",
               "config-linux.netDevices.no-move-back")


@check("config-linux.netDevices.missing")
def missing_interface(ctx: CheckContext) -> None:
    """Naming an interface the host does not have makes create fail."""
    b = ctx.bundle()
    b.linux["netDevices"] = {"ocf-no-such-if": {}}
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)


@check("config-linux.netDevices.name-exists")
def name_taken(ctx: CheckContext) -> None:
    """Renaming onto a name the container already has (lo) fails."""
    name = host_interface(ctx, "c")
    b = ctx.bundle()
    b.linux["netDevices"] = {name: {"name": "lo"}}
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)
