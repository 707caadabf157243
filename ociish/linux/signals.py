"""Signal names as kill(1) and runc accept them: 9, KILL, SIGKILL, sigkill, RTMIN+3; and 0, which
sends nothing and only checks that the process is alive (kill(2))."""

from __future__ import annotations

from ociish.linux.cpython import signal


def parse_signal(text: str) -> int:
    """Signal number for ``text``; ValueError with a clear message when unknown."""
    raw = text.strip()
    if raw.isdigit():
        number = int(raw)
        if 0 <= number <= signal.SIGRTMAX:
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
    # every SIG* name of the module is a signal, except the SIG_* handler and mask constants
    found = getattr(signal, name, None) if name.isidentifier() and not name.startswith("SIG_") else None
    if isinstance(found, int) and 0 < found < signal.NSIG:
        return found
    raise ValueError(f"unknown signal {text!r}")
