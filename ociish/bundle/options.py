"""The config options of `ociish spec` and `ociish bundle create|import`, as a builder sees them.

ociish/cli/__init__.py declares the flags; this module turns their text (``64m``, ``SRC:DST:ro``,
``pid,net=/proc/1/ns/net``) into ConfigBuilder calls, in one fixed order so the result
does not depend on the order flags were typed in.
"""

from __future__ import annotations

import argparse
import os

from ociish import units
from ociish.bundle.config import ConfigBuilder
from ociish.errors import OciishError
from ociish.rootfs.mountopts import MOUNT_OPTIONS

NAMESPACE_ALIASES = {"net": "network", "mnt": "mount"}


def apply(builder: ConfigBuilder, args: argparse.Namespace) -> ConfigBuilder:
    """Apply every config flag that was given; flags not given leave the builder as it is."""
    if args.namespaces is not None:
        builder.namespaces(parse_namespaces(args.namespaces))
    if args.network is not None:
        builder.network(args.network)
    if args.args is not None:
        if not args.args:
            raise OciishError("--args: give the command to run after it")
        builder.args(*args.args)
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            raise OciishError(f"--env: {item!r}: expected NAME=VALUE")
        builder.env(name, value)
    if args.cwd is not None:
        builder.cwd(args.cwd)
    if args.user is not None:
        builder.user(*parse_user(args.user))
    if args.hostname is not None:
        builder.hostname(args.hostname)
    if args.terminal is not None:
        builder.terminal(args.terminal)
    if args.readonly is not None:
        builder.readonly(args.readonly)
    for path in args.readonly_path:
        builder.readonly_path(path)
    for spec in args.mount:
        source, destination, options = parse_bind(spec)
        builder.bind(source, destination, options=options)
    for spec in args.tmpfs:
        destination, _, options = spec.partition(":")
        builder.tmpfs(destination, [o for o in options.split(",") if o])
    if args.memory is not None:
        builder.memory(parse_size(args.memory, "--memory"))
    if args.cpus is not None:
        builder.cpus(args.cpus)
    if args.pids_limit is not None:
        builder.pids(args.pids_limit)
    return builder


def parse_size(text: str, flag: str) -> int:
    """``512k``, ``64m``, ``1g`` (powers of 1024) or a plain number of bytes."""
    try:
        return units.parse_size(text)
    except ValueError:
        raise OciishError(f"{flag}: {text!r}: expected a size like 512k, 64m or 1g") from None


def parse_bind(spec: str) -> tuple[str, str, list[str]]:
    """``SRC:DST[:OPT,...]``: a host path (made absolute) bound at DST, e.g. ``/data:/data:ro``."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise OciishError(f"--mount: {spec!r}: expected SRC:DST or SRC:DST:OPTIONS (e.g. /srv/data:/data:ro)")
    source = os.path.abspath(parts[0])
    if not os.path.exists(source):
        raise OciishError(f"--mount: {parts[0]!r}: no such file or directory")
    options = [o for o in (parts[2].split(",") if len(parts) == 3 else []) if o]
    unknown = [o for o in options if o not in MOUNT_OPTIONS]
    if unknown:
        raise OciishError(f"--mount: {spec!r}: unknown option {unknown[0]!r} for a bind mount")
    return source, parts[1], options


def parse_namespaces(text: str) -> list[str | tuple[str, str]]:
    """``pid,ipc,uts,mount,net`` (new ones) with ``TYPE=PATH`` to join an existing one."""
    result: list[str | tuple[str, str]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kind, sep, path = item.partition("=")
        kind = NAMESPACE_ALIASES.get(kind, kind)
        result.append((kind, path) if sep else kind)
    return result


def parse_user(text: str) -> tuple[int, int]:
    """``UID`` or ``UID:GID`` (numbers: names mean nothing until the rootfs is known)."""
    uid, _, gid = text.partition(":")
    try:
        return int(uid), int(gid or 0)
    except ValueError:
        raise OciishError(f"--user: {text!r}: expected UID or UID:GID as numbers") from None

