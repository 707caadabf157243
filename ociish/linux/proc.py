"""Parsers for /proc files the runtime reads (pure where possible)."""

from __future__ import annotations


def parse_stat(text: str) -> tuple[str, int]:
    """(state letter, start time in clock ticks) from /proc/PID/stat.

    The command name may contain spaces and parentheses, so fields are counted after
    the last ')'.
    """
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def read_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of a live process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read())
    except (OSError, ValueError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    stat = read_stat(pid)
    return stat[1] if stat else None


def is_alive(pid: int, expected_start: int | None) -> bool:
    """True when ``pid`` still runs and is the same process (same start time).

    A zombie or dead process counts as gone; a different start time means the pid
    was reused by an unrelated process.
    """
    if pid <= 0:
        return False
    stat = read_stat(pid)
    if stat is None or stat[0] in ("Z", "X", "x"):
        return False
    return expected_start is None or stat[1] == expected_start
