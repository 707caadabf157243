"""`create --dry-run` / `run --dry-run`: the plan, step by step, with nothing touched.

The steps are those a real create takes, in its order and named as `--debug` logs them
(stage, step), so the test suite compares the two; each carries what it will do.  The
plan comes from `ops.create.prepare`, the same code a real create runs, so whatever it
refuses the dry run refuses too.
"""

from __future__ import annotations

from ociish import jsonio
from ociish.ops.create import Prepared, prepare

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ociish.process.plantypes import ContainerPlan, InitPlan

    Step = dict[str, str]  # {"stage", "step", "detail"}


def dry_run(container_id: str, bundle: str, state_dir: str, *, output_format: str, **create_options: Any) -> str:
    """The text (or JSON) `--dry-run` prints for a create of ``bundle`` recorded in ``state_dir``."""
    prepared = prepare(container_id, bundle, **create_options)
    planned = steps(prepared, state_dir)
    if output_format == "json":
        return jsonio.dumps({"id": container_id, "bundle": prepared.plan["init"]["bundle"],
                             "warnings": prepared.plan["init"]["warnings"], "steps": planned}).decode() + "\n"
    lines = [f"container {container_id}: bundle {prepared.plan['init']['bundle']}, rootfs {prepared.rootfs}"]
    lines += [f"warning: {warning}" for warning in prepared.plan["init"]["warnings"]]
    for step in planned:
        detail = f": {step['detail']}" if step["detail"] else ""
        lines.append(f"{step['stage']:>9}  {step['step']}{detail}")
    return "\n".join(lines) + "\n"


def steps(prepared: Prepared, state_dir: str) -> list[Step]:
    """Every step a create of ``prepared`` takes, in order, as --debug names them; then
    what `start` does."""
    plan = prepared.plan
    init = plan["init"]
    out: list[Step] = []

    def add(stage: str, step: str, detail: str = "") -> None:
        out.append({"stage": stage, "step": step, "detail": detail})

    add("create", "planned")
    add("create", "state", state_dir)
    add("create", "cgroup", ", ".join(sorted(set(prepared.cgroup.dirs.values()))))
    add("create", "bootstrap", "a sealed copy of the interpreter, moved into the cgroup")
    _bootstrap(init, add)
    if init["net_devices"]:
        add("create", "linux.netDevices", ", ".join(f"{host} as {inside}" for host, inside in init["net_devices"]))
    _container(plan, add)
    _process(plan, add)
    add("init", "created")
    _start(init, add)
    return out


def _bootstrap(init: InitPlan, add: Any) -> None:
    if init["oom_score_adj"] is not None:
        add("bootstrap", "process.oomScoreAdj", str(init["oom_score_adj"]))
    joined = [(kind, path) for kind, path, _ in init["ns_paths"]]
    for kind, path in sorted(joined, key=lambda item: item[0] == "user"):  # the user namespace after the others
        add("bootstrap", f"linux.namespaces ({kind} {path})", "setns")
    if init["new_userns"]:
        add("bootstrap", "linux.namespaces (user)", "unshare")
        add("create", "linux.uidMappings, linux.gidMappings", "written by create")
    if init["unshare_flags"]:
        from ociish.process.plan import NAMESPACE_FLAGS

        kinds = [kind for kind, flag in NAMESPACE_FLAGS.items() if init["unshare_flags"] & flag and kind != "user"]
        add("bootstrap", "linux.namespaces", "unshare " + ", ".join(kinds))
    if init["time_offsets"]:
        add("bootstrap", "linux.timeOffsets", init["time_offsets"].strip().replace("\n", "; "))
    add("bootstrap", "fork init", "PID 1 of the container")


def _container(plan: ContainerPlan, add: Any) -> None:
    init = plan["init"]
    if init["new_keyring"]:
        add("init", "session keyring", f"_ses.{init['id']}")
    if init["loopback_up"]:
        add("init", "linux.namespaces (network): bringing up lo")
    add("init", "root.path", init["rootfs"])
    if init["mount_ns"]:
        if init["mount_sources"]:
            add("init", "mounts (bind sources)", "opened by create: " + ", ".join(
                f"mounts[{index}]" for index in init["mount_sources"]))
        for index, m in enumerate(init["mounts"]):
            kind = "bind" if m["bind"] else m["type"] or ""
            options = ",".join(filter(None, [f"flags={m['flags']:#x}" if m["flags"] else "", m["data"],
                                             "idmapped" if m["idmap"] else ""]))
            add("init", f"mounts[{index}] ({m['destination']})", f"{kind} {m['source']}" + (f" ({options})" if options else ""))
        add("init", "linux.devices", ", ".join(
            f"{d['path']} ({d['type']} {d['major']}:{d['minor']}, {d['mode']:o})" for d in init["devices"])
            + ("; bound from the host" if init["bind_devices"] else ""))
        add("init", "process.cwd", init["process"]["cwd"])
        if init["process"]["terminal"]:
            add("init", "process.terminal", "a pty, its master to the console socket")
        if init["sysctl"]:
            add("init", "linux.sysctl", ", ".join(f"{key}={value}" for key, value in init["sysctl"].items()))
        if init["readonly_paths"]:
            add("init", "linux.readonlyPaths", ", ".join(init["readonly_paths"]))
        if init["masked_paths"]:
            add("init", "linux.maskedPaths", ", ".join(init["masked_paths"]))
        _hooks_point(plan, add)
        if init["dev_readonly"]:
            add("init", "mounts (/dev read-only)")
        add("init", "pivot_root", "MS_MOVE and chroot (--no-pivot)" if init["no_pivot"] else "")
        if init["readonly"]:
            add("init", "root.readonly")
    else:
        _hooks_point(plan, add)
    for field in ("hostname", "domainname"):
        if init[field] is not None:
            add("init", field, str(init[field]))
    if init["personality"] is not None:
        add("init", "linux.personality", f"{init['personality']:#x}")


def _hooks_point(plan: ContainerPlan, add: Any) -> None:
    """The init waits while create writes the cgroup and runs the runtime's hooks."""
    add("init", "hooks", "waits for create")
    cgroup = plan["cgroup"]
    if cgroup["properties"]:
        add("create", "systemd: properties", ", ".join(name for name, _ in cgroup["properties"]))
    for directory, write in cgroup["writes"]:
        add("create", f"{write.field}: {write.filename} = {write.value}", f"in {directory}")
    if cgroup["device_program"] is not None:
        add("create", "linux.resources.devices: device filter", f"{len(cgroup['device_program']) // 8} eBPF instructions")
    for kind in ("prestart", "createRuntime"):
        if plan["runtime_hooks"][kind]:
            add("create", f"hooks.{kind}", _hook_paths(plan["runtime_hooks"][kind]))
    if plan["init"]["hooks"].get("createContainer"):
        add("init", "hooks.createContainer", _hook_paths(plan["init"]["hooks"]["createContainer"]))


def _process(plan: ContainerPlan, add: Any) -> None:
    init = plan["init"]
    proc = init["process"]
    if init["scheduler"] is not None:
        add("init", "process.scheduler", f"policy {init['scheduler'][0]}")
    if init["memory_policy"] is not None:
        add("init", "linux.memoryPolicy", f"mode {init['memory_policy'][0]}")
    if init["io_priority"] is not None:
        add("init", "process.ioPriority", "class {}, level {}".format(*init["io_priority"]))
    add("init", "process.rlimits", "set by create")
    for index, (_, soft, hard, kind) in enumerate(plan["rlimits"]):
        add("create", f"process.rlimits[{index}] ({kind})", f"soft {soft}, hard {hard}")
    add("init", "process.user", f"uid {proc['uid']}, gid {proc['gid']}"
        + (f", groups {proc['additional_gids']}" if proc["additional_gids"] else ""))
    caps = proc["caps"]
    add("init", "process.capabilities", "as inherited" if caps is None else ", ".join(
        f"{name} {caps[name]:#x}" for name in ("bounding", "effective", "permitted", "inheritable", "ambient")))
    add("init", "process.args", " ".join(proc["args"]))
    seccomp = init["seccomp"]
    if seccomp and (not proc["no_new_privileges"] or seccomp["listener"]):
        add("init", "linux.seccomp", _seccomp_summary(init))
        if seccomp["listener"]:
            add("init", "linux.seccomp.listenerPath", "the notify fd to the listener")
        if not proc["no_new_privileges"]:
            add("init", "process.capabilities", "CAP_SYS_ADMIN dropped again")


def _start(init: InitPlan, add: Any) -> None:
    """What `start` releases: not in create's log."""
    hooks = init["hooks"].get("startContainer")
    seccomp = init["seccomp"]
    late = seccomp and init["process"]["no_new_privileges"] and not seccomp["listener"]
    if late:
        add("start", "linux.seccomp", _seccomp_summary(init))
    if hooks:
        add("start", "hooks.startContainer", _hook_paths(hooks))
    add("start", "execve", " ".join(init["process"]["args"]))


def _seccomp_summary(init: InitPlan) -> str:
    seccomp = init["seccomp"]
    assert seccomp is not None
    summary = f"{len(seccomp['bpf']) // 8} BPF instructions, flags {seccomp['flags']:#x}"
    return summary + (f"; unknown here, skipped: {', '.join(seccomp['skipped'])}" if seccomp["skipped"] else "")


def _hook_paths(hooks: list[Any]) -> str:
    return ", ".join(str(hook.get("path")) for hook in hooks)
