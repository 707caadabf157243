"""The lifecycle commands' options, and their common command lines parsed without argparse.

argparse is the parser of record: ociish.cli builds it, from these tables for the
options below.  But importing it and building the whole parser costs ~12 ms, more than
everything else `ociish state` does, and clients call create, start, state, kill,
delete and exec for every container.  So a command line of those commands (and run)
whose shape is known here is parsed here, into what argparse would return; anything else (help,
abbreviations, ``--``, an unknown or malformed option, a missing argument) gives None
and goes to argparse, which also words every error.  tests/unit/test_argv.py checks that
both parsers agree.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Option:
    """One option: ``kind`` is "flag" (store_true), "value" (a string), "int", or "append" /
    "append-int" (every value, in a list); a hidden one is accepted (for runc
    compatibility) but not listed in the help."""

    __slots__ = ("flags", "dest", "kind", "default", "help", "choices", "hidden")

    def __init__(self, *flags: str, kind: str = "value", default: object = None, help: str | None = None,
                 choices: tuple[str, ...] | None = None, hidden: bool = False) -> None:
        self.flags = flags
        self.dest = flags[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = False if kind == "flag" else [] if kind.startswith("append") else default
        self.help = help
        self.choices = choices
        self.hidden = hidden


class Positional:
    """A positional argument; a ``remainder`` one takes every argument after the others."""

    __slots__ = ("dest", "required", "default", "metavar", "remainder")

    def __init__(self, dest: str, *, required: bool = True, default: object = None, metavar: str | None = None,
                 remainder: bool = False) -> None:
        self.dest = dest
        self.required = required and not remainder
        self.default = [] if remainder else default
        self.metavar = metavar
        self.remainder = remainder


DEFAULT_ROOT = "/run/ociish"

GLOBAL_OPTIONS = (
    Option("--version", "-v", kind="flag", help="print the version"),
    Option("--root", help=f"state root (default {DEFAULT_ROOT}; $XDG_RUNTIME_DIR/ociish rootless)"),
    Option("--log", help="log file (JSON lines with --log-format json)"),
    Option("--log-format", default="text", choices=("text", "json")),
    Option("--debug", kind="flag", help="debug logging; tracebacks for internal errors"),
    Option("--systemd-cgroup", kind="flag", help="cgroupsPath is slice:prefix:name"),
    Option("--rootless", default="auto", help="accepted for runc compatibility"),
    Option("--criu", hidden=True),
)

CREATION_OPTIONS = (
    Option("--bundle", "-b"),
    Option("--pid-file"),
    Option("--console-socket"),
    Option("--no-pivot", kind="flag"),
    Option("--no-new-keyring", kind="flag"),
    Option("--preserve-fds", kind="int", default=0),
    Option("--pidfd-socket", hidden=True),
    Option("--dry-run", kind="flag", help="print the plan, step by step, and touch nothing"),
    Option("--format", default="text", choices=("text", "json"), help="of --dry-run"),
)
_ID_AND_BUNDLE = (Positional("id", required=False), Positional("bundle_pos", required=False, metavar="BUNDLE"))
_ID = (Positional("id"),)

# command → (help, options, positionals), in the order `ociish --help` lists them
LIFECYCLE_COMMANDS: dict[str, tuple[str, tuple[Option, ...], tuple[Positional, ...]]] = {
    "create": ("create a container (its process waits for start)", CREATION_OPTIONS, _ID_AND_BUNDLE),
    "run": ("create and start a container, wait for it, delete it", CREATION_OPTIONS + (
        Option("--detach", "-d", kind="flag"),
        Option("--keep", kind="flag", help="do not delete the container after it exits"),
        Option("--no-subreaper", kind="flag", help="accepted for runc compatibility"),
    ), _ID_AND_BUNDLE),
    "start": ("run the process of a created container", (), _ID),
    "state": ("print the state of a container as JSON", (), _ID),
    "kill": ("send a signal to the container's init (default SIGTERM)",
             (Option("--all", "-a", kind="flag", help="signal every process in the container"),),
             (Positional("id"), Positional("signal", required=False, default="SIGTERM"))),
    "delete": ("delete a stopped container (any with --force)", (Option("--force", "-f", kind="flag"),), _ID),
    "exec": ("run another process in a running container", (
        Option("--process", "-p", help="a JSON process object (process.json)"),
        Option("--detach", "-d", kind="flag"),
        Option("--tty", "-t", kind="flag"),
        Option("--console-socket"),
        Option("--pid-file"),
        Option("--cwd"),
        Option("--env", "-e", kind="append"),
        Option("--user", "-u", help="UID[:GID]"),
        Option("--additional-gids", "-g", kind="append-int"),
        Option("--cap", "-c", kind="append"),
        Option("--no-new-privs", kind="flag"),
        Option("--apparmor"),
        Option("--process-label"),
        Option("--preserve-fds", kind="int", default=0),
        Option("--ignore-paused", kind="flag"),
        Option("--cgroup", kind="append",
               help="run in this existing sub-cgroup of the container's: PATH (every hierarchy) or CONTROLLER[,...]:PATH"),
    ), (Positional("id"), Positional("argv", remainder=True, metavar="COMMAND"))),
}


class Parsed:
    """The parsed values as attributes, as argparse.Namespace holds them.  Not
    types.SimpleNamespace: importing ``types`` is ~1 M instructions, 2% of an `ociish state`."""

    def __init__(self, values: dict[str, object]) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any: ...


def parse_common(argv: list[str]) -> Parsed | None:
    """What argparse would return for ``argv``, or None when the shape is not a common one."""
    values: dict[str, object] = {o.dest: o.default for o in GLOBAL_OPTIONS}
    rest = _take_options(argv, 0, GLOBAL_OPTIONS, values)
    if rest is None or rest >= len(argv) or argv[rest] not in LIFECYCLE_COMMANDS:
        return None
    values["command"] = command = argv[rest]
    _, options, positionals = LIFECYCLE_COMMANDS[command]
    values.update({o.dest: list(o.default) if isinstance(o.default, list) else o.default for o in options})
    given: list[str] = []
    index = rest + 1
    takes_rest = positionals[-1].remainder
    split = False
    while index < len(argv):
        if takes_rest and len(given) == len(positionals) - 1:
            if "--" in argv[index:]:
                return None  # argparse drops it (or not) by rules not worth repeating here
            values[positionals[-1].dest] = argv[index:]
            break
        if argv[index].startswith("-"):
            after = _take_options(argv, index, options, values)
            if after is None:
                return None
            index = after
            split = bool(given)
        elif split:
            return None  # positionals split by options: argparse fills every slot from the first run
        else:
            given.append(argv[index])
            index += 1
    required = sum(p.required for p in positionals)
    if not required <= len(given) <= len(positionals):
        return None
    for position, positional in enumerate(positionals):
        if not positional.remainder:
            values[positional.dest] = given[position] if position < len(given) else positional.default
        else:
            values.setdefault(positional.dest, [])
    return Parsed(values)


def _take_options(argv: list[str], index: int, options: tuple[Option, ...], values: dict[str, Any]) -> int | None:
    """Consume the options from ``index`` up to the next positional into ``values``; the
    index after them, or None for anything argparse would treat differently or refuse."""
    by_flag = {flag: option for option in options for flag in option.flags}
    while index < len(argv) and argv[index].startswith("-"):
        token = argv[index]
        flag, equals, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        option = by_flag.get(flag)
        if option is None:
            return None
        if option.kind == "flag":
            if equals:
                return None
            values[option.dest] = True
            index += 1
            continue
        if equals:
            value, index = inline, index + 1
        elif index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            value, index = argv[index + 1], index + 2
        else:
            return None
        if option.choices and value not in option.choices:
            return None
        item: str | int = value
        if option.kind in ("int", "append-int"):
            if not (value.isdigit() and value.isascii()):
                return None
            item = int(value)
        if option.kind.startswith("append"):
            values[option.dest] = [*values[option.dest], item]
        else:
            values[option.dest] = item
    return index
