"""A sealed, in-memory copy of the interpreter for the processes that enter the container.

CVE-2019-5736: a container process that can open /proc/<pid>/exe of a runtime process
(or runs ``#!/proc/self/exe``) could rewrite the host binary behind it.  Executing a
memfd copy sealed against writes means /proc/<pid>/exe is that memfd: writable by no one,
and unrelated to any file on the host.
"""

from __future__ import annotations

import fcntl
import os
import sys

_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def sealed_interpreter() -> int:
    """An fd of a sealed memfd holding ``sys.executable``, ready for fexecve."""
    fd = os.memfd_create("ociish-init", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        src = os.open(os.path.realpath(sys.executable), os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            copied = 0
            while copied < size:
                sent = os.sendfile(fd, src, copied, size - copied)
                if sent == 0:
                    break
                copied += sent
        finally:
            os.close(src)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        return fd
    except BaseException:
        os.close(fd)
        raise
