"""`python -m ociish` is the same as the `ociish` console script."""

from ociish.cli import main

raise SystemExit(main())
