"""`python -m ociish` is the same as the `ociish` script, bytecode cache included (bin/ociish)."""

import sys

sys.dont_write_bytecode = False

from ociish.cli import main  # noqa: E402 - after the bytecode switch

raise SystemExit(main())
