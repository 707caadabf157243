"""Device access rules (`linux.resources.devices`) in the cgroup v1 text form.

The rules are validated and normalised here so that the v1 writer and the later
cgroup v2 eBPF generator read the same shape: a dict with `allow`, `type`
(`a`, `b` or `c`), `major` / `minor` (`None` for the `*` wildcard) and `access`.
"""

from __future__ import annotations


from ociish.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FIELD = "linux.resources.devices"

# runc's and crun's always-allowed devices, appended after the config's rules so a
# container keeps working even under a deny-all config: mknod of anything, then the
# character devices every process expects to exist (null zero full random urandom
# tty console ptmx pts/* and net/tun for Docker compatibility).
_DEFAULT_RULES: tuple[tuple[str, int | None, int | None, str], ...] = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 5, 1, "rwm"),
    ("c", 5, 2, "rwm"),
    ("c", 136, None, "rwm"),
    ("c", 10, 200, "rwm"),
)


def default_device_rules() -> list[dict[str, Any]]:
    """The rules the runtime appends after the config's own (normalised form)."""
    return [
        {"allow": True, "type": t, "major": major, "minor": minor, "access": access}
        for t, major, minor, access in _DEFAULT_RULES
    ]


def _number(field: str, value: Any) -> int | None:
    """A major/minor number; unset and -1 both mean the `*` wildcard."""
    if value is None or value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{field}: expected a device number >= 0 or -1, got {value!r}")
    return value


def normalize_rule(index: int, rule: Any) -> dict[str, Any]:
    """Validate one config rule and fill in the spec's defaults (all types, all numbers, rwm)."""
    field = f"{FIELD}[{index}]"
    if not isinstance(rule, dict):
        raise ConfigError(f"{field}: expected an object, got {rule!r}")
    allow = rule.get("allow")
    if not isinstance(allow, bool):
        raise ConfigError(f"{field}.allow: required boolean, got {allow!r}")
    dev_type = rule.get("type") or "a"
    if dev_type not in ("a", "b", "c"):
        raise ConfigError(f"{field}.type: expected 'a', 'b' or 'c', got {dev_type!r}")
    access = rule.get("access") or "rwm"
    if not isinstance(access, str) or not set(access) <= set("rwm"):
        raise ConfigError(f"{field}.access: expected a combination of 'r', 'w', 'm', got {access!r}")
    return {
        "allow": allow,
        "type": dev_type,
        "major": _number(f"{field}.major", rule.get("major")),
        "minor": _number(f"{field}.minor", rule.get("minor")),
        "access": "".join(c for c in "rwm" if c in access),
    }


def normalize_rules(rules: Any) -> list[dict[str, Any]]:
    """The config's rules in order, followed by the runtime defaults."""
    if not isinstance(rules, list):
        raise ConfigError(f"{FIELD}: expected an array, got {rules!r}")
    return [normalize_rule(i, r) for i, r in enumerate(rules)] + default_device_rules()


def v1_line(rule: dict[str, Any]) -> str:
    """`devices.allow`/`devices.deny` syntax; type `a` always means every device to the kernel."""
    if rule["type"] == "a":
        return "a"
    major = "*" if rule["major"] is None else str(rule["major"])
    minor = "*" if rule["minor"] is None else str(rule["minor"])
    return f"{rule['type']} {major}:{minor} {rule['access']}"
