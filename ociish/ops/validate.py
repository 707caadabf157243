"""`validate`: check a bundle's config.json as create would, without creating anything."""

from __future__ import annotations

import os

from ociish import log
from ociish.spec.validate import load_config
from ociish.process.plan import capability_sets
from ociish.spec.unknown import unknown_key_warnings


def validate(bundle: str) -> str:
    """Errors refuse the config (ConfigError lists them all); the warnings are what create
    would print, and it would still run.  The line that says the config is valid."""
    config, _ = load_config(os.path.abspath(bundle))
    warnings = unknown_key_warnings(config)
    capability_sets((config.get("process") or {}).get("capabilities") or {}, warnings)
    for warning in warnings:
        log.warning(warning)
    return f"{os.path.join(bundle, 'config.json')}: valid\n"
