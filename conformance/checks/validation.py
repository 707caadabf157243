"""Configuration the runtime must reject, and extensions it must tolerate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance import host
from conformance.bundle import Bundle, setting
from conformance.harness import CheckContext
from conformance.registry import check, register

Mutation = Callable[[Bundle], None]


def _drop(key: str) -> Mutation:
    return lambda b: b.config.pop(key)


def _hook(**fields: Any) -> Mutation:
    return lambda b: b.add_hook("prestart", **{"path": "/bin/true", **fields})


def _rlimits(*types: str) -> Mutation:
    return setting("process.rlimits", [{"type": t, "soft": 100, "hard": 100} for t in types])


# name -> (requirement, mutation, runtime cwd).  Relative paths are given a
# cwd of / so that a runtime that does not validate them would succeed.
REJECTIONS: dict[str, tuple[str, Mutation, str | None]] = {
    "ociversion_not_semver": ("config.ociVersion.semver", setting("ociVersion", "one.two"), None),
    "no_root": ("config.root.required", _drop("root"), None),
    "root_missing": ("config.root.path-exists", setting("root.path", "no-such-rootfs"), None),
    "root_is_file": ("config.root.path-exists", setting("root.path", "config.json"), None),
    "cwd_relative": ("config.process.cwd-absolute", setting("process.cwd", "bin"), None),
    "args_empty": ("config.process.args-required", setting("process.args", []), None),
    "rlimit_unknown": ("config.process.rlimits-invalid", _rlimits("RLIMIT_CONFORMANCE"), None),
    "rlimit_twice": ("config.process.rlimits-duplicate",
                     _rlimits("RLIMIT_NOFILE", "RLIMIT_NOFILE"), None),
    "hook_relative": ("config.hooks.path-absolute", _hook(path="bin/true"), "/"),
    "hook_timeout_zero": ("config.hooks.timeout-positive", _hook(timeout=0), None),
    "annotation_empty_key": ("config.annotations.empty-key",
                             setting("annotations", {"": "value"}), None),
    "annotation_not_string": ("config.annotations.string-values",
                              setting("annotations", {"org.example.n": 1}), None),
    "namespace_type_unknown": ("config.valid-values",
                               lambda b: b.linux["namespaces"].append({"type": "conformance"}),
                               None),
    "device_type_unknown": ("config.valid-values",
                            setting("linux.devices", [{"path": "/dev/x", "type": "x",
                                                    "major": 1, "minor": 3}]), None),
    "seccomp_action_unknown": ("config.valid-values",
                               setting("linux.seccomp", {"defaultAction": "SCMP_ACT_CONFORMANCE"}),
                               None),
    "weight_device_without_weight": (
        "config-linux.blockIO.weightDevice-entry",
        setting("linux.resources", {"blockIO": {"weightDevice": [{"major": 1, "minor": 3}]}}),
        None),
    "masked_path_relative": ("config-linux.maskedPaths.absolute",
                             setting("linux.maskedPaths", ["etc/motd"]), None),
    "readonly_path_relative": ("config-linux.readonlyPaths.absolute",
                               setting("linux.readonlyPaths", ["etc"]), None),
}


def _rejection_check(mutation: Mutation, cwd: str | None) -> Callable[[CheckContext], None]:
    def run(ctx: CheckContext) -> None:
        b = ctx.bundle()
        mutation(b)
        rejected, detail = ctx.run_fails(b, cwd=Path(cwd) if cwd else None)
        ctx.expect(rejected, detail)

    return run


for _name, (_req, _mutation, _cwd) in REJECTIONS.items():
    register(f"validation.reject_{_name}", "validation", (_req,),
             _rejection_check(_mutation, _cwd), f"Rejects config: {_name.replace('_', ' ')}.")


@check("runtime.create.cannot-apply", "runtime.errors.no-side-effects")
def failed_create_leaves_nothing(ctx: CheckContext) -> None:
    """A bind mount of a missing source fails create without leaving traces."""
    b = ctx.bundle("broken")
    b.add_mount("/data", "none", str(ctx.dir / "no-such-source"), ["bind"])
    b.write()
    c = ctx.container(b)
    res = c.create(check=False)
    ctx.expect(not res.ok, "create succeeded with a missing bind source",
               "runtime.create.cannot-apply")
    ctx.expect(c.state() is None, "a container was left after the failed create",
               "runtime.errors.no-side-effects")
    left = host.find_cgroups(c.id)
    ctx.expect(not left, f"cgroups left behind: {left}", "runtime.errors.no-side-effects")
    good = ctx.bundle("good")
    good.write()
    res = ctx.container(good, c.id).create(check=False)
    ctx.expect(res.ok, f"the ID is not free again: {res.describe()}",
               "runtime.errors.no-side-effects")


@check("config.extensibility.unknown-properties", "config.annotations.unknown")
def unknown_properties(ctx: CheckContext) -> None:
    """Unknown properties and annotation keys are ignored."""
    b = ctx.bundle()
    b.config["org.example.extension"] = {"nested": [1, 2]}
    b.process["org.example.flag"] = True
    b.linux["org.example.setting"] = "x"
    b.config["mounts"][0]["org.example.mountExtra"] = 1
    b.config["annotations"] = {"org.example.unknown-annotation": "value"}
    ctx.observe(b)
