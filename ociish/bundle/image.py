"""OCI images in and out of bundles: `ociish bundle import` and `ociish bundle export`.

An image is read from an OCI image layout: a directory, or a tar of one (what
``podman save --format oci-archive`` writes).  Every blob is checked against its sha256
digest before anything of it is used, the layers are applied in order by
``layers.apply_layer`` (which never writes outside the rootfs), and the image config
becomes the bundle's process (image-spec conversion.md).  Export writes the same kind of
archive; an overlay bundle keeps its shared base as a layer of its own.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import orjson

from ociish.bundle.bundle import Bundle, Customize, new_bundle_dir
from ociish.bundle.config import ConfigBuilder
from ociish.bundle.layers import LayerWriter, apply_layer
from ociish.bundle.overlay import UPPER, overlay_dirs
from ociish.errors import OciishError
from ociish.linux import libc as L

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_INDEX_TYPES = (MEDIA_INDEX, _DOCKER_LIST)
# layer media types whose content tarfile can read (compression is detected from the data)
_LAYER_TYPES = {
    MEDIA_LAYER, MEDIA_LAYER + "+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
REF_NAME = "org.opencontainers.image.ref.name"
STOP_SIGNAL = "org.opencontainers.image.stopSignal"
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_MAX_JSON = 4 << 20  # an index, manifest or config larger than this is not an honest one
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}


def host_architecture() -> str:
    """The image-spec (GOARCH) name of this machine's architecture."""
    machine = platform.machine()
    return _ARCHES.get(machine, machine)


# --- reading an image layout ------------------------------------------------------------


class _Layout:
    """The files of an OCI image layout, from a directory or from a tar of one."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._stack = ExitStack()
        self._dir_fd = -1
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise

    def _open(self) -> None:
        source = self.source
        if os.path.isdir(source):
            self._dir_fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self._stack.callback(os.close, self._dir_fd)
        else:
            try:
                self._tar = self._stack.enter_context(tarfile.open(source, "r:*"))
            except OSError as e:
                raise OciishError(f"{source}: {e.strerror}") from None
            except tarfile.TarError:
                raise OciishError(f"{source}: neither an OCI image layout directory nor a tar archive of one") from None
            for member in self._tar.getmembers():
                if member.isreg():
                    self._members[os.path.normpath(member.name).lstrip("/")] = member
        if not self.exists("oci-layout"):
            hint = "; save it with --format oci-archive" if self.exists("manifest.json") else ""
            raise OciishError(f"{source}: not an OCI image layout (no oci-layout file){hint}")

    def __enter__(self) -> _Layout:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def exists(self, name: str) -> bool:
        if self._tar is not None:
            return name in self._members
        try:
            os.close(self._open_in_dir(name))
            return True
        except OSError:
            return False

    def open(self, name: str) -> IO[bytes]:
        try:
            if self._tar is not None:
                stream = self._tar.extractfile(self._members[name])
                assert stream is not None  # members are regular files
                return stream
            return os.fdopen(self._open_in_dir(name), "rb")
        except (KeyError, OSError):
            raise OciishError(f"{self.source}: {name} is missing") from None

    def _open_in_dir(self, name: str) -> int:
        # beneath the layout and through no symlink: a layout cannot point at host files
        return L.openat2(self._dir_fd, name, os.O_RDONLY, L.RESOLVE_BENEATH | L.RESOLVE_NO_SYMLINKS)

    def json(self, name: str) -> Any:
        with self.open(name) as f:
            data = f.read(_MAX_JSON + 1)
        if len(data) > _MAX_JSON:
            raise OciishError(f"{self.source}: {name} is larger than {_MAX_JSON} bytes")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise OciishError(f"{self.source}: {name}: not valid JSON: {e}") from None

    def blob(self, descriptor: Any, what: str) -> Any:
        """A JSON blob, after checking it against its descriptor."""
        name = self.blob_name(descriptor, what)
        self.verify(descriptor, name, what)
        return self.json(name)

    def blob_name(self, descriptor: Any, what: str) -> str:
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
        if not match:
            raise OciishError(f"{self.source}: {what}: digest {digest!r}: expected sha256:<64 hex digits>")
        return f"blobs/sha256/{match.group(1)}"

    def verify(self, descriptor: dict[str, Any], name: str, what: str) -> None:
        with self.open(name) as f:
            digest, size = _sha256(f)
        if digest != descriptor["digest"]:
            raise OciishError(f"{self.source}: {what}: content does not match its digest {descriptor['digest']}")
        if descriptor.get("size") != size:
            expected = descriptor.get("size")
            raise OciishError(f"{self.source}: {what}: size {size} does not match its descriptor ({expected})")


def _select_manifest(layout: _Layout, ref: str | None) -> dict[str, Any]:
    """The image manifest to import: by --ref among the layout's images, then by platform."""
    index = layout.json("index.json")
    candidates = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
    names = [d.get("annotations", {}).get(REF_NAME) for d in candidates]
    if ref is not None:
        candidates = [d for d, name in zip(candidates, names, strict=True) if name == ref]
        if not candidates:
            known = ", ".join(map(str, names)) or "none"
            raise OciishError(f"{layout.source}: no image named {ref!r} (it has: {known})")
    if not candidates:
        raise OciishError(f"{layout.source}: index.json lists no image")
    if len(candidates) > 1:
        raise OciishError(f"{layout.source}: holds {len(candidates)} images; choose one with --ref "
                          f"({', '.join(map(str, names))})")
    descriptor = candidates[0]
    while descriptor.get("mediaType") in _INDEX_TYPES:
        nested = layout.blob(descriptor, "image index")
        wanted = {"os": "linux", "architecture": host_architecture()}
        matching = [d for d in nested.get("manifests") or []
                    if {k: (d.get("platform") or {}).get(k) for k in wanted} == wanted]
        if not matching:
            raise OciishError(f"{layout.source}: no image for linux/{wanted['architecture']} in the image index")
        descriptor = matching[0]
    if descriptor.get("mediaType") not in (MEDIA_MANIFEST, _DOCKER_MANIFEST, None):
        raise OciishError(f"{layout.source}: unsupported manifest media type {descriptor.get('mediaType')!r}")
    manifest = layout.blob(descriptor, "image manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise OciishError(f"{layout.source}: the image manifest has no layers list")
    return manifest


# --- import -------------------------------------------------------------------------------


def import_image(source: str, path: str | os.PathLike[str], *, ref: str | None = None,
                 customize: Customize | None = None) -> Bundle:
    """A new bundle at ``path`` running the image at ``source`` (layout dir or archive).

    ``ref`` picks an image by its org.opencontainers.image.ref.name when the layout holds
    several.  ``customize`` edits the config after the image's settings are applied.
    """
    with _Layout(source) as layout:
        manifest = _select_manifest(layout, ref)
        image = layout.blob(manifest.get("config"), "image config")
        if not isinstance(image, dict):
            raise OciishError(f"{source}: the image config is not a JSON object")
        with new_bundle_dir(path) as bundle:
            rootfs = bundle / "rootfs"
            rootfs.mkdir(mode=0o755)
            root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for number, layer in enumerate(manifest["layers"], 1):
                    what = f"layer {number}"
                    media_type = layer.get("mediaType") if isinstance(layer, dict) else None
                    if media_type not in _LAYER_TYPES:
                        raise OciishError(f"{source}: {what}: unsupported media type {media_type!r}")
                    name = layout.blob_name(layer, what)
                    layout.verify(layer, name, what)  # nothing unverified reaches the rootfs
                    with layout.open(name) as stream:
                        apply_layer(root_fd, stream, f"{source}: {what} ({layer['digest'][:19]})")
                builder = ConfigBuilder().readonly(False)
                _apply_image_config(builder, image.get("config") or {}, root_fd)
            finally:
                os.close(root_fd)
            if customize is not None:
                customize(builder)
            builder.write(bundle)
    return Bundle(bundle)


def _apply_image_config(builder: ConfigBuilder, config: Any, root_fd: int) -> None:
    """image-spec conversion.md: Entrypoint + Cmd, Env, WorkingDir, User, Labels, StopSignal."""
    if not isinstance(config, dict):
        raise OciishError("image config: config: expected an object")
    argv = [*_field(config, "Entrypoint", list), *_field(config, "Cmd", list)]
    if argv:
        builder.args(*argv)
    for item in _field(config, "Env", list):
        name, _, value = item.partition("=")
        builder.env(name, value)
    if working_dir := _field(config, "WorkingDir", str):
        builder.cwd("/" + working_dir.lstrip("/"))
    if user := _field(config, "User", str):
        builder.user(*resolve_user(root_fd, user))
    for key, value in _field(config, "Labels", dict).items():
        builder.annotation(key, value)
    if stop_signal := _field(config, "StopSignal", str):
        builder.annotation(STOP_SIGNAL, stop_signal)


def _field(config: dict[str, Any], key: str, kind: type) -> Any:
    """An image config field (empty when absent), refused unless it is made of strings."""
    value = config.get(key)
    if value is None:
        return kind()
    if kind is dict:
        valid = isinstance(value, dict) and all(isinstance(v, str) for item in value.items() for v in item)
    elif kind is list:
        valid = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        valid = isinstance(value, str)
    if not valid:
        expected = "a string" if kind is str else f"a {kind.__name__} of strings"
        raise OciishError(f"image config: {key}: expected {expected}")
    return value


def resolve_user(root_fd: int, user: str) -> tuple[int, int, list[int]]:
    """An image's User (``name``, ``uid``, ``name:group``, ``uid:gid``) as uid, gid and
    supplementary groups, looked up in the rootfs's own /etc/passwd and /etc/group."""
    name, _, group = user.partition(":")
    entry = _lookup(root_fd, "/etc/passwd", name, user)
    uid = int(entry[2]) if entry else int(name)
    groups = _database(root_fd, "/etc/group")
    if group:
        found = _lookup(root_fd, "/etc/group", group, user)
        return uid, int(found[2]) if found else int(group), []
    if entry is None:
        return uid, 0, []
    gid = int(entry[3])
    return uid, gid, [int(g[2]) for g in groups if entry[0] in g[3].split(",") and int(g[2]) != gid]


def _lookup(root_fd: int, path: str, key: str, user: str) -> list[str] | None:
    """The entry named (or numbered) ``key``; a number nobody has is fine, a name is not."""
    column = 2 if key.isdigit() else 0
    entry = next((e for e in _database(root_fd, path) if e[column] == key), None)
    if entry is None and not key.isdigit():
        raise OciishError(f"image config User {user!r}: no {key!r} in the image's {path}")
    return entry


def _database(root_fd: int, path: str) -> list[list[str]]:
    """The entries of a passwd-style file inside the rootfs (resolved in it), [] if absent."""
    try:
        fd = L.openat2(root_fd, path, os.O_RDONLY, L.RESOLVE_IN_ROOT | L.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        text = f.read(_MAX_JSON).decode(errors="replace")
    entries = [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]
    return [e for e in entries if len(e) >= 4 and e[2].isdigit() and (path == "/etc/group" or e[3].isdigit())]


# --- export -------------------------------------------------------------------------------


def export_image(bundle_path: str | os.PathLike[str], archive: str | os.PathLike[str], *,
                 ref: str | None = None) -> None:
    """Write the bundle as an OCI image archive (``podman load`` reads it).

    An overlay bundle becomes two layers, its base and its own changes (whiteouts for what
    the container deleted); any other bundle one layer of its rootfs.
    """
    bundle = Bundle(bundle_path)
    config = bundle.config()
    base = bundle.base()
    rootfs = bundle.rootfs()
    if not rootfs.is_dir():
        raise OciishError(f"{bundle.path}: root.path {rootfs} is not a directory")
    producers: list[Callable[[LayerWriter], None]]
    if base is not None:
        producers = [lambda w: _add_tree(w, base), lambda w: _add_overlay_changes(w, bundle.path, base)]
    else:
        producers = [lambda w: _add_tree(w, rootfs)]
    target = Path(archive).absolute()
    name = ref or f"localhost/{bundle.path.name}:latest"
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".ociish-export-") as scratch:
        blobs = [_write_layer(Path(scratch), produce) for produce in producers]
        image = _image_config(config, [digest for digest, _, _ in blobs])
        config_blob = _json_blob(Path(scratch), image)
        manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST, "config": _descriptor(MEDIA_CONFIG, config_blob),
                    "layers": [_descriptor(MEDIA_LAYER, blob) for blob in blobs]}
        manifest_blob = _json_blob(Path(scratch), manifest)
        index = {"schemaVersion": 2, "manifests": [{**_descriptor(MEDIA_MANIFEST, manifest_blob),
                                                    "annotations": {REF_NAME: name}}]}
        partial = Path(scratch) / "archive.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out:
            _add_bytes(out, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            _add_bytes(out, "index.json", orjson.dumps(index))
            for directory in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(directory)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                out.addfile(info)
            for digest, _, path in [*blobs, config_blob, manifest_blob]:
                with open(path, "rb") as f:
                    info = out.gettarinfo(fileobj=f, arcname=f"blobs/sha256/{digest.removeprefix('sha256:')}")
                    info.mode, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, "", ""
                    out.addfile(info, f)
        os.replace(partial, target)


Blob = tuple[str, int, Path]  # digest, size, file


def _write_layer(scratch: Path, produce: Callable[[LayerWriter], None]) -> Blob:
    """An uncompressed layer: its digest is also its diff_id."""
    with tempfile.NamedTemporaryFile(dir=scratch, delete=False) as f:
        writer = LayerWriter(f)
        produce(writer)
        writer.close()
    return _file_blob(Path(f.name))


def _file_blob(path: Path) -> Blob:
    with open(path, "rb") as f:
        digest, size = _sha256(f)
    return digest, size, path


def _sha256(stream: IO[bytes]) -> tuple[str, int]:
    """The ``sha256:<hex>`` digest and the size of what is left in ``stream``."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


def _json_blob(scratch: Path, document: dict[str, Any]) -> Blob:
    data = orjson.dumps(document)
    digest = hashlib.sha256(data).hexdigest()
    path = scratch / digest
    path.write_bytes(data)
    return "sha256:" + digest, len(data), path


def _descriptor(media_type: str, blob: Blob) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": blob[0], "size": blob[1]}


def _add_bytes(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    out.addfile(info, io.BytesIO(data))


def _open_dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _add_tree(writer: LayerWriter, root: Path) -> None:
    fd = _open_dir(root)
    try:
        writer.add_tree(fd, "")
    finally:
        os.close(fd)


def _add_overlay_changes(writer: LayerWriter, bundle: Path, base: Path) -> None:
    """The overlay bundle's own layer: each overlay's upper layer (whiteouts converted),
    the rest of its top level as it is now, and whiteouts for top-level entries of the
    base the container removed."""
    overlaid = set(overlay_dirs(bundle))
    with ExitStack() as stack:
        base_fd = _open_dir(base)
        stack.callback(os.close, base_fd)
        top_fd = _open_dir(bundle / "rootfs")
        stack.callback(os.close, top_fd)
        present = set(os.listdir(top_fd))
        for name in sorted(set(os.listdir(base_fd)) | present):
            if name in overlaid:
                upper = _open_dir(bundle / UPPER / name)
                try:
                    writer.add_dir(upper, name, os.fstat(upper))
                    writer.add_tree(upper, name, upper=True)
                finally:
                    os.close(upper)
            elif name not in present:
                writer.add_whiteout(name)
            else:
                _add_top_entry(writer, top_fd, name)


def _add_top_entry(writer: LayerWriter, top_fd: int, name: str) -> None:
    st = os.lstat(name, dir_fd=top_fd)
    if not stat.S_ISDIR(st.st_mode):
        writer.add_entry(top_fd, name, name, st)
        return
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top_fd)
    try:
        writer.add_dir(fd, name, st)
        writer.add_tree(fd, name)
    finally:
        os.close(fd)


def _image_config(config: dict[str, Any], diff_ids: list[str]) -> dict[str, Any]:
    """The bundle's process as an image config (the inverse of _apply_image_config)."""
    process = config.get("process") or {}
    user = process.get("user") or {}
    annotations = dict(config.get("annotations") or {})
    stop_signal = annotations.pop(STOP_SIGNAL, None)
    labels = {k: v for k, v in annotations.items() if not k.startswith("ociish.")}
    image_config: dict[str, Any] = {
        "Cmd": list(process.get("args") or []),
        "Env": list(process.get("env") or []),
        "WorkingDir": process.get("cwd") or "/",
        "User": f"{user.get('uid', 0)}:{user.get('gid', 0)}",
    }
    if labels:
        image_config["Labels"] = labels
    if stop_signal:
        image_config["StopSignal"] = stop_signal
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "created": created,
        "architecture": host_architecture(),
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": "ociish bundle export"} for _ in diff_ids],
    }

