"""Logging for the CLI: human text on stderr, JSON lines (or logfmt) in --log.

structlog does the rendering, but it is imported only when something is actually logged
(an error, a warning, --debug): a successful `state` or `start` never pays for it.
conmon and containerd parse the --log file on failure: one object per line with level,
msg and an RFC 3339 time; podman shows `msg` only when the file holds exactly one line.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

_settings: dict[str, Any] = {"file": None, "format": "text", "debug": False}
_loggers: dict[str, Any] = {}


def configure(log_file: str | None, log_format: str, debug: bool) -> None:
    _settings.update(file=log_file, format=log_format, debug=debug)
    _loggers.clear()


def debug_enabled() -> bool:
    return bool(_settings["debug"])


def _build() -> None:
    import structlog

    processors: list[Any] = [structlog.processors.add_log_level,
                             structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
                             structlog.processors.EventRenamer("msg")]
    stderr = structlog.wrap_logger(structlog.PrintLogger(sys.stderr), processors=[_render_human])
    _loggers["stderr"] = stderr
    path = _settings["file"]
    if path:
        stream: TextIO = open(path, "a", buffering=1)
        renderer = (structlog.processors.JSONRenderer() if _settings["format"] == "json"
                    else structlog.processors.LogfmtRenderer(key_order=["time", "level", "msg"]))
        _loggers["file"] = structlog.wrap_logger(structlog.PrintLogger(stream), processors=[*processors, renderer])


def _render_human(_logger: Any, method: str, event: dict[str, Any]) -> str:
    prefix = "ociish: " if method == "error" else f"ociish: {method}: "
    return prefix + str(event["event"])


def _loggers_ready() -> dict[str, Any]:
    if not _loggers:
        _build()
    return _loggers


def _to_stderr(level: str, msg: str) -> None:
    for line in msg.splitlines() or [""]:
        getattr(_loggers_ready()["stderr"], level)(line)


def error(msg: str) -> None:
    """Always on stderr (clients relay it) and, as exactly one line, in --log."""
    file_logger = _loggers_ready().get("file")
    if file_logger is not None:
        file_logger.error(msg.replace("\n", "; "))
    _to_stderr("error", msg)


def _note(level: str, msg: str) -> None:
    """Warnings and debug lines go to --log when given, else to stderr."""
    file_logger = _loggers_ready().get("file")
    if file_logger is not None:
        getattr(file_logger, level)(msg)
    else:
        _to_stderr(level, msg)


def warning(msg: str) -> None:
    _note("warning", msg)


def debug(msg: str) -> None:
    if _settings["debug"]:
        _note("debug", msg)
