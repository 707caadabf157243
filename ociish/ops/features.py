"""`ociish features`: the Features structure (features.md, features-linux.md) of this runtime.

Callers (containerd, CRI-O, tools checking a runtime before they hand it a config) read
this to learn what a config.json may ask for.  So every list is taken from the table the
runtime itself works from — the mount options `rootfs.mountopts` parses, the capability
names `linux.caps` knows, the namespace types the planner accepts, the seccomp actions,
operators and flags the compiler maps — and the document can never claim more, or less,
than the code does.

The spec wants the document fixed at build time and independent of the host.  A Python
runtime has no build step, so "built with" means "installed with": seccomp is enabled
when pyseccomp can load libseccomp, and its architectures are those libseccomp can put
in a filter for this machine's byte order.  Only `seccomp.supportedFlags` depends on the
running kernel, as features-linux.md says it may.
"""

from __future__ import annotations

import ctypes
import errno

from ociish import OCI_VERSION, __version__
from ociish.linux.caps import CAPABILITIES
from ociish.linux.mempolicy import FLAGS, MODES
from ociish.process.plan import NAMESPACE_FLAGS
from ociish.rootfs.mountopts import MOUNT_OPTIONS
from ociish.security.seccomp import ACTIONS, FLAG_BITS, FLAG_NEW_LISTENER, OPERATORS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The oldest config.json ociVersion the schema accepts (1.0.x; see schemas/config.schema.json).
OCI_VERSION_MIN = "1.0.0"
# Every hook kind of config.md: create runs prestart and createRuntime, the init runs
# createContainer and startContainer, start runs poststart and delete runs poststop.
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# Prefix of the annotations this runtime describes itself with.
ANNOTATION_PREFIX = "ociish."

_SECCOMP_SET_MODE_FILTER = 1


def features() -> dict[str, Any]:
    """The Features structure, valid against schemas/features.schema.json."""
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": _linux(),
        "annotations": {ANNOTATION_PREFIX + "version": __version__},
        # ociish reads no config.json annotation: none of them changes what it does.
        "potentiallyUnsafeConfigAnnotations": [],
    }


def _linux() -> dict[str, Any]:
    return {
        "namespaces": sorted(NAMESPACE_FLAGS),
        "capabilities": list(CAPABILITIES),
        # v1, v2 and hybrid drivers, rdma.max included; --systemd-cgroup asks systemd (the
        # host's, or rootless the user's, on cgroup v2) for a scope unit over D-Bus.
        "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True, "rdma": True},
        "seccomp": seccomp_features(),
        # process.apparmorProfile and process.selinuxLabel become the exec label; a host
        # without that LSM gets a clear refusal at create, not a silent unconfined process.
        "apparmor": {"enabled": True},
        "selinux": {"enabled": True},
        # every mode and flag set_mempolicy(2) has; a kernel older than one refuses it at create
        "memoryPolicy": {"modes": list(MODES), "flags": list(FLAGS)},
        # resctrl groups, schemata lines and MON groups (ociish/resctrl.py); whether this host
        # has RDT is create's question, not this document's (features-linux.md)
        "intelRdt": {"enabled": True, "schemata": True, "monitoring": True},
        # bind mounts only, made by create as the host's root (rootfs/idmap.py)
        "mountExtensions": {"idmap": {"enabled": True}},
        # moved by create through rtnetlink, with their addresses (linux/netdev.py)
        "netDevices": {"enabled": True},
    }


def seccomp_features() -> dict[str, Any]:
    """What linux.seccomp may use; disabled when libseccomp cannot be loaded, since
    `create` then refuses every seccomp profile."""
    try:
        import pyseccomp
    except (ImportError, RuntimeError):
        return {"enabled": False}
    return {
        "enabled": True,
        "actions": sorted(ACTIONS),
        "operators": sorted(OPERATORS),
        "archs": _usable_archs(pyseccomp),
        "knownFlags": sorted(FLAG_BITS),
        "supportedFlags": sorted(name for name, bit in FLAG_BITS.items()
                                 if _kernel_accepts_filter_flags(pyseccomp, bit)),
    }


def _usable_archs(pyseccomp: Any) -> list[str]:
    """The architectures libseccomp can add to a filter for this machine.

    A filter only holds architectures of the native byte order (libseccomp refuses the
    others with EDOM), so a big-endian name on a little-endian host is not offered.
    """
    usable = []
    for name, token in vars(pyseccomp.Arch).items():
        if not isinstance(token, int) or token == pyseccomp.Arch.NATIVE:
            continue
        probe = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        try:
            if not probe.exist_arch(token):
                probe.add_arch(token)
        except OSError:
            continue
        usable.append("SCMP_ARCH_" + name)
    return sorted(usable)


def _kernel_accepts_filter_flags(pyseccomp: Any, flag: int) -> bool:
    """Whether seccomp(SECCOMP_SET_MODE_FILTER) takes ``flag``, asked without installing anything.

    The kernel validates the flags before it reads the filter, so a NULL filter fails
    with EFAULT when the flags are known and EINVAL when they are not.  WAIT_KILLABLE_RECV
    is only valid together with NEW_LISTENER (ociish adds that for SCMP_ACT_NOTIFY).
    """
    if flag & FLAG_BITS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
        flag |= FLAG_NEW_LISTENER
    number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "seccomp")
    syscall = ctypes.CDLL(None, use_errno=True).syscall
    syscall.restype = ctypes.c_long
    result = syscall(ctypes.c_long(number), _SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flag), None)
    return result < 0 and ctypes.get_errno() == errno.EFAULT
