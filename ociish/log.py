"""Logging for the CLI: human text on stderr, JSON lines (or logfmt) in --log.

A line on stderr is plain text written directly: a warning or an error costs microseconds,
not the ~60 ms of importing structlog (which imports asyncio, ssl and logging).  structlog
renders only what goes to a --log file, and even then only its processors module is loaded,
not the package's __init__ (which imports its dev console and stdlib integration).
conmon and containerd parse the --log file on failure: one object per line with level,
msg and an RFC 3339 time; podman shows `msg` only when the file holds exactly one line.
"""

from __future__ import annotations

import sys

from ociish import hostfile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

_settings: dict[str, Any] = {"file": None, "format": "text", "debug": False}
_file: dict[str, Any] = {}  # "stream" and "processors" once the --log file is opened


def configure(log_file: str | None, log_format: str, debug: bool) -> None:
    _settings.update(file=log_file, format=log_format, debug=debug)
    _file.clear()


def debug_enabled() -> bool:
    return bool(_settings["debug"])


def _structlog_processors() -> Any:
    """structlog.processors without running structlog/__init__.py.

    The package's __init__ imports every submodule (asyncio through structlog.dev and
    structlog.stdlib); the renderers need none of them.  The package is stood in for only
    while its processors module loads, so a later `import structlog` gets the real package
    (which then reuses the loaded submodules).
    """
    if "structlog" in sys.modules:
        return sys.modules["structlog"].processors
    import types
    from importlib.machinery import PathFinder  # importlib.util would import contextlib

    spec = PathFinder.find_spec("structlog")
    assert spec is not None and spec.submodule_search_locations is not None
    package = types.ModuleType("structlog")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["structlog"] = package
    try:
        import structlog.processors as processors
    finally:
        del sys.modules["structlog"]
    return processors


def open_file() -> None:
    """Open --log at the start of the command, as runc does: a path that cannot be written
    is the command's error (exit 1) before anything runs, never ignored later."""
    if _settings["file"] and "stream" not in _file:
        try:
            _file["stream"] = _open_stream()
        except OSError as e:
            path, _settings["file"] = _settings["file"], None
            from ociish.errors import OciishError

            raise OciishError(f"--log {path}: cannot open it: {e.strerror}") from None


def _open_stream() -> TextIO:
    return open(hostfile.open_append(_settings["file"]), "a", buffering=1)


def _file_log() -> dict[str, Any]:
    """The --log file and its processor chain, built on the first line written to it."""
    if "processors" not in _file:
        p = _structlog_processors()
        renderer = (p.JSONRenderer() if _settings["format"] == "json"
                    else p.LogfmtRenderer(key_order=["time", "level", "msg"]))
        _file["processors"] = [
            p.add_log_level, p.TimeStamper(fmt="iso", utc=True, key="time"), p.EventRenamer("msg"), renderer]
    if "stream" not in _file:
        _file["stream"] = _open_stream()
    return _file


def _file_ready() -> bool:
    """Whether there is a --log file to write to; one that cannot be opened (or is a
    symlink by now) is reported once on stderr, and lines go there instead."""
    if not _settings["file"]:
        return False
    try:
        _file_log()
    except OSError as e:
        _to_stderr("error", f"--log {_settings['file']}: cannot open it: {e.strerror}")
        _settings["file"] = None
        return False
    return True


def _to_file(level: str, msg: str, fields: dict[str, str]) -> None:
    log = _file_log()
    event: Any = {"event": msg, **fields}
    for processor in log["processors"]:
        event = processor(None, level, event)
    log["stream"].write(event + "\n")


def _to_stderr(level: str, msg: str) -> None:
    prefix = "ociish: " if level == "error" else f"ociish: {level}: "
    sys.stderr.write("".join(prefix + line + "\n" for line in msg.splitlines() or [""]))
    sys.stderr.flush()


def error(msg: str) -> None:
    """Always on stderr (clients relay it) and, as exactly one line, in --log."""
    if _file_ready():
        _to_file("error", msg.replace("\n", "; "), {})
    _to_stderr("error", msg)


def _note(level: str, msg: str, fields: dict[str, str] | None = None) -> None:
    """Warnings and debug lines go to --log when given, else to stderr."""
    if _file_ready():
        _to_file(level, msg, fields or {})
    else:
        _to_stderr(level, msg)


def warning(msg: str) -> None:
    _note("warning", msg)


def debug(msg: str) -> None:
    if _settings["debug"]:
        _note("debug", msg)


def step(stage: str, name: str) -> None:
    """With --debug, one line per setup step as it begins (its stage and step as fields of
    their own in --log), the record `create --dry-run` is checked against."""
    if _settings["debug"]:
        _note("debug", f"{stage}: {name}", {"stage": stage, "step": name})
