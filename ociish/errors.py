"""Errors a user can act on.

Every failure that is the user's (bad config, wrong state, unknown container) or the
host's (a refused syscall) is raised as an OciishError: the CLI prints its message as one
line and exits 1.  Anything else is a bug and only shows a traceback under --debug.
"""

from __future__ import annotations


class OciishError(Exception):
    """A failure reported to the user as one line, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(OciishError):
    """config.json is unreadable, invalid, or asks for something impossible."""


class NotSupportedError(ConfigError):
    """config.json asks for a feature this runtime does not implement yet."""

    def __init__(self, field: str, detail: str = "") -> None:
        msg = f"not supported yet: {field}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class ContainerNotFound(OciishError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id!r} does not exist")


class DamagedState(OciishError):
    """A container whose state cannot be read (corrupt, replaced, unreadable, missing):
    every command says so, and `delete --force` removes what can still be found."""


class WrongState(OciishError):
    """An operation that the container's current status does not allow."""
