"""Bundles made by tooling: from a shared base rootfs (`ociish bundle create`) or on disk."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ociish.bundle.config import ConfigBuilder
from ociish.bundle.overlay import add_overlay
from ociish.errors import OciishError

BASE_ANNOTATION = "ociish.bundle.base"

Customize = Callable[[ConfigBuilder], object]


class Bundle:
    """A bundle directory: config.json and the rootfs it names (and, for an overlay
    bundle, the shared base under it)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()

    def config(self) -> dict[str, Any]:
        """config.json, parsed and validated as `ociish create` would."""
        from ociish.spec.validate import load_config

        return load_config(str(self.path))[0]

    def rootfs(self) -> Path:
        return self.path / self.config()["root"]["path"]

    def base(self) -> Path | None:
        """The shared read-only base under an overlay bundle's rootfs, None for any other."""
        base = self.config().get("annotations", {}).get(BASE_ANNOTATION)
        return Path(base) if base else None


def create_from_base(path: str | os.PathLike[str], base: str | os.PathLike[str], *, overlay: bool,
                     customize: Customize | None = None) -> Bundle:
    """A bundle that shares ``base`` instead of copying it.

    overlay=True: the container writes to a layer of its own over the base (read-write
    unless ``customize`` makes it read-only).  overlay=False: root.path is the base
    itself, which must then stay read-only.  ``customize`` edits the config (args,
    mounts, limits) before the bundle is written.
    """
    base_path = Path(base).resolve()
    if not base_path.is_dir():
        raise OciishError(f"--base: {base}: not a directory")
    builder = ConfigBuilder().readonly(not overlay)
    if customize is not None:
        customize(builder)
    readonly = bool(builder.peek().get("root", {}).get("readonly"))
    if not overlay and not readonly:
        raise OciishError(f"--base: {base}: shared without --overlay, the base itself is the rootfs and must stay "
                          "read-only (use --overlay for a writable rootfs)")
    with new_bundle_dir(path) as bundle:
        if overlay:
            add_overlay(builder, bundle, base_path, readonly=readonly)
            builder.annotation(BASE_ANNOTATION, str(base_path))
        else:
            builder.root(str(base_path))
        builder.write(bundle)
    return Bundle(bundle)


@contextmanager
def new_bundle_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Create the bundle directory, and remove it again if filling it fails, so a failed
    command leaves nothing half-made behind."""
    bundle = Path(path).absolute()
    try:
        bundle.mkdir(parents=True)
    except FileExistsError:
        raise OciishError(f"{path}: already exists; choose a new bundle directory") from None
    except OSError as e:
        raise OciishError(f"{path}: cannot create the bundle directory: {e.strerror}") from None
    try:
        yield bundle
    except BaseException:
        shutil.rmtree(bundle, ignore_errors=True)
        raise
