"""The C halves of three standard modules, which ociish uses instead of the modules.

signal.py and socket.py turn their C modules' constants into IntEnums, and the json
package imports re and enum: enum alone costs ~3.5 ms, more than `ociish state` or
`kill` spend on everything else, and the init would carry it into every container.  The
C modules (``_signal``, ``_socket``, ``_json``) hold the same functions and constants as
plain ints, so ociish imports them, and only from here.  ``signal`` is built into the
interpreter; ``socket`` and ``json`` are shared libraries (~0.5 and ~0.2 ms), loaded on
first use.  The fourth, ``_ctypes``, is ociish.linux.libc's alone: the C types it needs
are declared there.
"""

from __future__ import annotations

import _signal as signal

__all__ = ["json", "signal", "socket"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _json as json
    import _socket as socket
else:
    _LAZY = {"json": "_json", "socket": "_socket"}

    def __getattr__(name: str) -> object:
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = globals()[name] = __import__(_LAZY[name])
        return module
