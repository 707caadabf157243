"""Devices: the default set, /dev links, and linux.devices entries."""

from __future__ import annotations

from conformance.harness import CheckContext
from conformance.linux import DEFAULT_DEVICES
from conformance.registry import check

DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
             "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}


@check("config-linux.devices.default", "config-linux.devices.ptmx",
       "runtime-linux.dev-symlinks")
def default_devices(ctx: CheckContext) -> None:
    """null, zero, full, random, urandom, tty, ptmx and the fd links exist."""
    report = ctx.observe(ctx.bundle())
    for name, major, minor in DEFAULT_DEVICES:
        dev = report.dev(name)
        ctx.expect((dev.get("type"), dev.get("major"), dev.get("minor")) == ("c", major, minor),
                   f"/dev/{name} is {dev or 'missing'}, wanted char {major}:{minor}",
                   "config-linux.devices.default")
    ptmx = report.dev("ptmx")
    is_link = ptmx.get("type") == "l" and ptmx.get("target") in ("pts/ptmx", "/dev/pts/ptmx")
    bind = report.mount_at("/dev/ptmx")
    is_bind = bind is not None and bind.fstype == "devpts" and bind.root == "/ptmx"
    ctx.expect(is_link or is_bind, f"/dev/ptmx is {ptmx or 'missing'}",
               "config-linux.devices.ptmx")
    for name, target in DEV_LINKS.items():
        link = report.dev(name)
        ctx.expect(link.get("type") == "l" and link.get("target") == target,
                   f"/dev/{name} is {link or 'missing'}, wanted a link to {target}",
                   "runtime-linux.dev-symlinks")


@check("config-linux.devices.create")
def configured_devices(ctx: CheckContext) -> None:
    """Char, block, fifo and unbuffered devices appear with mode and owner."""
    wanted = [
        {"path": "/dev/conf-char", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o640, "uid": 1000, "gid": 1001},
        {"path": "/dev/conf-block", "type": "b", "major": 7, "minor": 200,
         "fileMode": 0o600, "uid": 0, "gid": 6},
        {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o620, "uid": 5, "gid": 5},
        {"path": "/dev/conf-unbuffered", "type": "u", "major": 1, "minor": 5,
         "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/opt/conf-outside-dev", "type": "c", "major": 1, "minor": 7,
         "fileMode": 0o644, "uid": 0, "gid": 0},
    ]
    b = ctx.bundle()
    b.linux["devices"] = wanted
    args = [a for d in wanted for a in ("--stat", str(d["path"]))]
    seen = ctx.observe(b, *args)["stat"]
    for dev in wanted:
        st = seen.get(dev["path"], {})
        kind = "c" if dev["type"] == "u" else dev["type"]
        got = (st.get("type"), st.get("major"), st.get("minor"), st.get("mode"),
               st.get("uid"), st.get("gid"))
        want = (kind, dev.get("major"), dev.get("minor"), dev["fileMode"], dev["uid"], dev["gid"])
        ctx.expect(got == want, f"{dev['path']}: (type, major, minor, mode, uid, gid) is "
                                f"{got}, wanted {want}")


@check("config-linux.devices.conflict")
def device_over_file(ctx: CheckContext) -> None:
    """A device whose path holds a regular file makes create fail."""
    b = ctx.bundle()
    b.add_file("/opt/conflict", "not a device")
    b.linux["devices"] = [{"path": "/opt/conflict", "type": "c", "major": 1, "minor": 3}]
    rejected, detail = ctx.run_fails(b)
    ctx.expect(rejected, detail)
