"""Signal names as kill(1) and runc accept them: 9, KILL, SIGKILL, sigkill, RTMIN+3."""

from __future__ import annotations

import signal


def parse_signal(text: str) -> int:
    """Signal number for ``text``; ValueError with a clear message when unknown."""
    raw = text.strip()
    if raw.isdigit():
        number = int(raw)
        if 0 < number <= signal.SIGRTMAX:
            return number
        raise ValueError(f"invalid signal number {raw}")
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base, anchor in (("SIGRTMIN+", signal.SIGRTMIN), ("SIGRTMAX-", signal.SIGRTMAX)):
        if name.startswith(base) and name[len(base):].isdigit():
            offset = int(name[len(base):])
            number = anchor + offset if base.endswith("+") else anchor - offset
            if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
                return number
    if name in ("SIGRTMIN", "SIGRTMAX"):
        return int(getattr(signal, name))
    member = getattr(signal.Signals, name, None) if name.isidentifier() else None
    if isinstance(member, signal.Signals):
        return int(member)
    raise ValueError(f"unknown signal {text!r}")
