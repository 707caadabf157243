"""`python -m ociish` is the same as the `ociish` script (see bin/ociish for the switches)."""

import gc
import sys

gc.disable()
sys.dont_write_bytecode = False

from ociish.cli import leave, main  # noqa: E402 - after the switches

leave(main())
