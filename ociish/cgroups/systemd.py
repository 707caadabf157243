"""The systemd cgroup driver: the container's cgroup is a transient scope unit.

With `--systemd-cgroup`, systemd owns the container's cgroup, as it owns every cgroup
on a host where it is PID 1: ociish asks it over D-Bus (StartTransientUnit on
org.freedesktop.systemd1) for a scope holding the init, with `Delegate=yes`, and gives
it the limits systemd knows as unit properties.  Otherwise systemd, the single writer
of its tree, would sooner or later (at the next `daemon-reload`) rewrite the files of
a cgroup it does not know to its own idea of them — a cpu.max dropped, say.  The
limits it has no property for are still written through cgroupfs, as runc does.

`unit_properties` is the pure translation of `linux.resources` (runc's table, see
docs/cgroups.md); `Systemd` is the D-Bus client (jeepney), imported only on this path.
"""

from __future__ import annotations

import os
from collections import deque

from ociish.cgroups import mapping
from ociish.errors import ConfigError, OciishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Property = tuple[str, tuple[str, Any]]  # (name, (D-Bus signature, value)): one `a(sv)` entry

SYSTEMD = "org.freedesktop.systemd1"
OBJECT = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
BOOTED = "/run/systemd/system"  # sd_booted(3): systemd is PID 1 exactly when this exists
JOB_TIMEOUT = 30.0  # runc's wait for a start or stop job
USEC_INFINITY = 2**64 - 1  # systemd's "no limit" for uint64 properties
DEFAULT_PERIOD = 100_000  # the kernel's cfs period, in µs
FIELD = "linux.resources"


# ---------------------------------------------------------------- resources → properties


def scope_properties(description: str, slice_name: str, pid: int, mode: str) -> list[Property]:
    """What every container's scope gets: its slice and init, delegation, accounting on."""
    io_accounting = "IOAccounting" if mode == "v2" else "BlockIOAccounting"
    return [
        ("Description", ("s", description)),
        ("Slice", ("s", slice_name)),
        ("PIDs", ("au", [pid])),
        ("Delegate", ("b", True)),
        ("DefaultDependencies", ("b", False)),
        ("MemoryAccounting", ("b", True)),
        ("CPUAccounting", ("b", True)),
        (io_accounting, ("b", True)),
        ("TasksAccounting", ("b", True)),
    ]


def _uint(value: int) -> int:
    return USEC_INFINITY if value < 0 else value


def cpu_quota(quota: int | None, period: int | None, version: int) -> list[Property]:
    """CPUQuotaPerSecUSec (+ CPUQuotaPeriodUSec from systemd 242): µs of CPU per second,
    rounded up to whole percents as systemd keeps it, so the cgroup's own quota fits."""
    quota, period = quota or 0, period or 0
    props: list[Property] = []
    if period and version >= 242:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = USEC_INFINITY
        if quota > 0:
            per_sec = quota * 1_000_000 // (period or DEFAULT_PERIOD)
            per_sec = -(-per_sec // 10_000) * 10_000
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props


def cpu_mask(cpus: str, field: str) -> bytes:
    """A cpuset list (`0-2,5`) as systemd's bitmask: byte i holds CPUs 8i..8i+7, lowest bit first."""
    from ociish.cpulist import parse_cpu_list

    chosen = parse_cpu_list(cpus, field)
    mask = bytearray((max(chosen) // 8 + 1) if chosen else 0)
    for cpu in chosen:
        mask[cpu // 8] |= 1 << (cpu % 8)
    return bytes(mask)


def _cpuset(cpus: str | None, mems: str | None, version: int, field: str) -> list[Property]:
    if version < 244:  # AllowedCPUs/AllowedMemoryNodes are newer; cgroupfs still gets them
        return []
    props: list[Property] = []
    if cpus:
        props.append(("AllowedCPUs", ("ay", cpu_mask(cpus, f"{field}.cpus"))))
    if mems:
        props.append(("AllowedMemoryNodes", ("ay", cpu_mask(mems, f"{field}.mems"))))
    return props


def _unified(unified: dict[str, Any], version: int) -> list[Property]:
    """The `unified` keys systemd has a property for; the rest only go to cgroupfs."""
    props: list[Property] = []
    memory = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
              "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}
    for key, raw in unified.items():
        value = str(raw).strip()
        field = f"{FIELD}.unified.{key}"
        try:
            if key in memory or key == "pids.max":
                number = USEC_INFINITY if value == "max" else int(value)
                props.append((memory.get(key, "TasksMax"), ("t", number)))
            elif key == "cpu.weight":
                props.append(("CPUWeight", ("t", int(value))))
            elif key == "cpu.max":
                words = value.split()
                if not 1 <= len(words) <= 2:
                    raise ValueError(value)
                quota = 0 if words[0] == "max" else int(words[0])
                props += cpu_quota(quota, int(words[1]) if len(words) == 2 else DEFAULT_PERIOD, version)
            elif key in ("cpuset.cpus", "cpuset.mems"):
                props += _cpuset(value if key == "cpuset.cpus" else None, value if key == "cpuset.mems" else None,
                                 version, field)
        except ValueError:
            raise ConfigError(f"{field}: {raw!r} is not a value the kernel accepts for {key}") from None
    return props


def device_properties(rules: list[dict[str, Any]] | None, groups: dict[tuple[str, int], str]) -> list[Property]:
    """DevicePolicy/DeviceAllow for the config's device rules (normalised, defaults appended).

    The same policy as the cgroup's own filter, which ociish attaches anyway: `strict` with
    the allowed devices when every one of them has a systemd name (`/dev/char/M:m`,
    `char-<group>` from /proc/devices for a whole major, `char-*`); otherwise, and for a
    deny list, systemd is told to allow everything and the filter alone decides — runc
    instead tells systemd to deny what it cannot name, which denies devices the config
    allows.
    """
    if rules is None:
        return []
    from ociish.cgroups import ebpf

    allow_all = [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    policy = ebpf.emulate_v1(rules)
    if policy.default_allow:
        return allow_all
    entries = []
    for entry in policy.exceptions:
        kind = "char" if entry.type == "c" else "block"
        if entry.major is None:
            if entry.minor is not None:
                return allow_all  # `*:n` has no systemd name
            path = f"{kind}-*"
        elif entry.minor is None:
            if (entry.type, entry.major) not in groups:
                return allow_all
            path = f"{kind}-{groups[(entry.type, entry.major)]}"
        else:
            path = f"/dev/{kind}/{entry.major}:{entry.minor}"
        entries.append((path, entry.access))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", entries))]


def device_groups(text: str) -> dict[tuple[str, int], str]:
    """/proc/devices → {("c", major): name}: systemd names a whole major by its group."""
    groups: dict[tuple[str, int], str] = {}
    kind = ""
    for line in text.splitlines():
        if line.endswith("devices:"):
            kind = "c" if line.startswith("Character") else "b"
            continue
        words = line.split()
        if kind and len(words) == 2 and words[0].isdigit():
            groups.setdefault((kind, int(words[0])), words[1])
    return groups


def unit_properties(resources: dict[str, Any], mode: str, version: int,
                    groups: dict[tuple[str, int], str] | None = None) -> list[Property]:
    """`linux.resources` as the unit properties systemd knows (runc's translation).

    Zero means unset, as everywhere in `linux.resources`; a pids limit of 0 is left to
    cgroupfs, since systemd refuses TasksMax=0.  `groups` is /proc/devices, read if needed.
    """
    mem = resources.get("memory") or {}
    cpu = resources.get("cpu") or {}
    limit, reservation, swap = mem.get("limit") or 0, mem.get("reservation") or 0, mem.get("swap")
    props: list[Property] = []
    if resources.get("devices") is not None:
        from ociish.cgroups import devices

        if groups is None:
            with open("/proc/devices", encoding="ascii") as f:
                groups = device_groups(f.read())
        props += device_properties(devices.normalize_rules(resources["devices"]), groups)
    if mode == "v2":
        if limit:
            props.append(("MemoryMax", ("t", _uint(limit))))
        if reservation:
            props.append(("MemoryLow", ("t", _uint(reservation))))
        swap_max = mapping.swap_to_v2(limit or None, swap)
        if swap_max is not None:
            props.append(("MemorySwapMax", ("t", USEC_INFINITY if swap_max == "max" else int(swap_max))))
        if cpu.get("shares"):
            props.append(("CPUWeight", ("t", mapping.cpu_shares_to_weight(cpu["shares"]))))
    else:
        if limit:
            props.append(("MemoryLimit", ("t", _uint(limit))))
        if cpu.get("shares"):
            props.append(("CPUShares", ("t", cpu["shares"])))
        weight = (resources.get("blockIO") or {}).get("weight")
        if weight:
            props.append(("BlockIOWeight", ("t", weight)))
    props += cpu_quota(cpu.get("quota"), cpu.get("period"), version)
    pids = (resources.get("pids") or {}).get("limit")
    if isinstance(pids, int) and (pids > 0 or pids < 0):
        props.append(("TasksMax", ("t", _uint(pids))))
    props += _cpuset(cpu.get("cpus"), cpu.get("mems"), version, f"{FIELD}.cpu")
    if mode == "v2" and resources.get("unified"):
        props += _unified(resources["unified"], version)
    return props


# ---------------------------------------------------------------- the D-Bus client


def bus_address(user: bool) -> str:
    """The system bus, or the calling user's bus (DBUS_SESSION_BUS_ADDRESS, else
    $XDG_RUNTIME_DIR/bus, where systemd --user's dbus listens)."""
    if not user:
        return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=/run/dbus/system_bus_socket"
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return os.environ["DBUS_SESSION_BUS_ADDRESS"]
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
    return f"unix:path={runtime_dir}/bus"


def connect(user: bool) -> Systemd:
    """The systemd manager of this host (root) or of the calling user (rootless)."""
    if not os.path.isdir(BOOTED):
        raise OciishError(f"--systemd-cgroup: systemd is not running on this host ({BOOTED} does not exist), "
                          "so it cannot manage the container's cgroup")
    from jeepney.io.blocking import open_dbus_connection

    address = bus_address(user)
    try:
        conn = open_dbus_connection(bus=address, auth_timeout=10.0)  # jeepney waits 1 s by default; a loaded host needs more
    except (OSError, RuntimeError, ValueError) as e:
        kind = "user" if user else "system"
        reason = getattr(e, "strerror", None) or e
        raise OciishError(f"--systemd-cgroup: cannot connect to the systemd {kind} bus at {address}: {reason}") from None
    return Systemd(conn)


class Systemd:
    """The calls ociish makes on systemd's Manager object, over one bus connection
    (a jeepney blocking connection, or a test's stand-in with the same four methods)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._version: int | None = None
        self._subscribed = False

    def close(self) -> None:
        self.conn.close()

    def _call(self, method: str, signature: str | None = None, body: tuple[Any, ...] = (),
              interface: str = MANAGER) -> tuple[Any, ...]:
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import unwrap_msg

        message = new_method_call(DBusAddress(OBJECT, SYSTEMD, interface), method, signature, body)
        return unwrap_msg(self.conn.send_and_get_reply(message, timeout=JOB_TIMEOUT))

    def manager_property(self, name: str) -> Any:
        """A property of the manager itself (Version, ControlGroup)."""
        return self._call("Get", "ss", (MANAGER, name), interface="org.freedesktop.DBus.Properties")[0][1]

    def version(self) -> int:
        """systemd's version number ("252.38-1~deb12u1" → 252); 0 if unreadable."""
        if self._version is None:
            text = str(self.manager_property("Version")).lstrip("v")
            digits = text[: len(text) - len(text.lstrip("0123456789"))]
            self._version = int(digits) if digits else 0
        return self._version

    def start_scope(self, unit: str, properties: list[Property]) -> None:
        """StartTransientUnit, then wait for its job to finish: only then is the init in the scope.

        A leftover unit of the same name that has failed is reset and the start retried
        once; one still active belongs to a live container, and the start is refused.
        """
        from jeepney.wrappers import DBusErrorResponse

        for attempt in (1, 2):
            try:
                self._run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", properties, []), unit)
                return
            except DBusErrorResponse as e:
                if e.name != "org.freedesktop.systemd1.UnitExists" or attempt == 2:
                    raise OciishError(f"systemd refused to start unit {unit}: {_reason(e)}") from None
                self.reset_failed(unit)

    def set_properties(self, unit: str, properties: list[Property]) -> None:
        """SetUnitProperties at runtime (not persisted: the unit is transient anyway)."""
        from jeepney.wrappers import DBusErrorResponse

        if not properties:
            return
        try:
            self._call("SetUnitProperties", "sba(sv)", (unit, True, properties))
        except DBusErrorResponse as e:
            raise OciishError(f"systemd refused the properties of unit {unit}: {_reason(e)}") from None

    def attach(self, unit: str, pid: int) -> None:
        """AttachProcessesToUnit (systemd ≥ 238): systemd moves a process into the unit's cgroup.
        A user's systemd may move a process it could not move itself: it asks the host's
        systemd, which checks that the process is the user's."""
        from jeepney.wrappers import DBusErrorResponse

        try:
            self._call("AttachProcessesToUnit", "ssau", (unit, "", [pid]))
        except DBusErrorResponse as e:
            raise OciishError(f"systemd could not move pid {pid} into unit {unit}: {_reason(e)}") from None

    def stop(self, unit: str) -> None:
        """StopUnit and wait for it; a unit systemd already dropped (its processes all
        exited) is fine."""
        from jeepney.wrappers import DBusErrorResponse

        try:
            self._run_job("StopUnit", "ss", (unit, "replace"), unit, must_succeed=False)
        except DBusErrorResponse as e:
            if e.name != "org.freedesktop.systemd1.NoSuchUnit":
                raise OciishError(f"systemd refused to stop unit {unit}: {_reason(e)}") from None

    def reset_failed(self, unit: str) -> None:
        from jeepney.wrappers import DBusErrorResponse

        try:
            self._call("ResetFailedUnit", "s", (unit,))
        except DBusErrorResponse:
            pass  # not failed, or gone: the retry says what is wrong

    def _run_job(self, method: str, signature: str, body: tuple[Any, ...], unit: str, must_succeed: bool = True) -> None:
        """Call a job-creating method and wait for the job's JobRemoved signal.

        The match is in place before the call, so a job that finishes at once is not missed.
        """
        from jeepney import MatchRule
        from jeepney.bus_messages import message_bus
        from jeepney.wrappers import unwrap_msg

        # no sender: the bus would accept the well-known name, but the local filter compares it
        # with the signal's sender, which is systemd's unique name (":1.2")
        rule = MatchRule(type="signal", interface=MANAGER, member="JobRemoved", path=OBJECT)
        if not self._subscribed:  # once per connection: systemd refuses a second Subscribe (AlreadySubscribed)
            unwrap_msg(self.conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=JOB_TIMEOUT))
            self._call("Subscribe")  # systemd sends job signals only while someone subscribes
            self._subscribed = True
        with self.conn.filter(rule, queue=deque()) as signals:
            (job,) = self._call(method, signature, body)
            while True:
                try:
                    message = self.conn.recv_until_filtered(signals, timeout=JOB_TIMEOUT)
                except TimeoutError:
                    raise OciishError(f"systemd did not finish the job for unit {unit} within {JOB_TIMEOUT:g}s") from None
                _id, removed, _unit, result = message.body
                if removed == job:
                    break
        if result != "done" and must_succeed:
            self.reset_failed(unit)
            raise OciishError(f"systemd could not start unit {unit}: the job ended with {result!r} "
                              f"(see `journalctl -u {unit}`)")


def _reason(error: Any) -> str:
    detail = error.data[0] if error.data else ""
    return f"{detail} ({error.name})" if detail else str(error.name)
