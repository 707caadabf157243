"""Bundles made and shared by tooling.

- ``ConfigBuilder``: build a config.json in code, validated against schemas/ when built.
- ``create_from_base``: a bundle sharing a read-only base rootfs (overlay or read-only root).
- ``import_image`` / ``export_image``: OCI image layouts and archives in and out of bundles.
- ``Bundle``: a bundle directory on disk.

Example::

    from ociish.bundle import create_from_base

    create_from_base("hello", "/var/cache/ociish/debian-rootfs/.../rootfs", overlay=True,
                     customize=lambda c: c.args("sh", "-c", "echo hi").tmpfs("/tmp").memory(256 << 20))
"""

from ociish.bundle.bundle import Bundle, create_from_base
from ociish.bundle.config import ConfigBuilder
from ociish.bundle.image import export_image, import_image

__all__ = ["Bundle", "ConfigBuilder", "create_from_base", "export_image", "import_image"]
