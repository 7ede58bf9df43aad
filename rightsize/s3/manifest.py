"""The manifest of an s3:// folder (``_SUCCESS``: each file's key, size and sha256, or a pointer to such a
manifest while a commit settles), read and checked; ``download`` reads a folder through it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..atomic import bytes_sha256, file_sha256, inside
from ..errors import RightsizeError
from . import objects
from .objects import call, get_file, get_or_none
from .path import S3Error, S3Path

SUCCESS = "_SUCCESS"
TEMPORARY = "_temporary"
MANIFEST_FORMAT = "rightsize-folder/1"
POINTER_FORMAT = "rightsize-pointer/1"
MANIFEST = "_MANIFEST"


def file_digest(path: Path) -> tuple[str, int]:
    """('sha256:<hex>', size in bytes) of a local file (the digest meta.json records for each table)."""
    return file_sha256(path), path.stat().st_size


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _valid_manifest(manifest: dict | None, folder: S3Path) -> bool:
    if not manifest or manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("files"), dict):
        return False
    for rel, v in manifest["files"].items():
        if not (isinstance(v, dict) and str(v.get("sha256", "")).startswith("sha256:") and isinstance(v.get("bytes"), int)
                and isinstance(v.get("key", rel), str)):
            return False
        try:
            if "key" in v:
                folder / v["key"]  # noqa: B018 - raises when a key would leave the prefix
        except S3Error:
            return False
    return True


def read_manifest(folder: S3Path, c=None, error: type[RightsizeError] = S3Error) -> dict | None:
    """The manifest ``folder``'s ``_SUCCESS`` names: {"files": {rel: {"sha256", "bytes"[, "key"]}}, ...}, where
    ``key`` (relative to ``folder``, default ``rel``) is where the file's bytes are; None when there is
    none (nothing was written there, or an upload did not complete). ``_SUCCESS`` is the manifest itself,
    or a pointer to a manifest under ``_temporary/`` (a commit that has not settled yet)."""
    c = c or objects.client()
    body = get_or_none(c, folder / SUCCESS, folder, "read the manifest", error)
    if body is None:
        return None
    manifest = _json_object(body)
    if manifest and manifest.get("format") == POINTER_FORMAT:
        manifest = _pointed(c, folder, manifest, error)
    if not _valid_manifest(manifest, folder):
        raise error(f"{folder / SUCCESS}: not a rightsize manifest ({MANIFEST_FORMAT}); refusing to read {folder}")
    return manifest


def _pointed(c, folder: S3Path, pointer: dict, error) -> dict | None:
    """The manifest a ``_SUCCESS`` pointer names, checked against the pointer's digest."""
    try:
        where = folder / str(pointer.get("manifest", ""))
    except S3Error:
        return None
    body = get_or_none(c, where, folder, "read the manifest", error)
    if body is None or bytes_sha256(body) != pointer.get("sha256"):
        raise error(f"{where}: the manifest {folder / SUCCESS} points to is missing or changed; refusing to read {folder}")
    return _json_object(body)


def incomplete(folder: S3Path, what: str) -> str:
    return (f"{folder}: no complete {what} here: no {SUCCESS} manifest (nothing was uploaded, or an upload "
            "did not complete; an interrupted upload is never read)")


def download(folder: S3Path, dest: Path, *, what: str, keep: Callable[[str], bool] = lambda rel: True,
             error: type[RightsizeError] = S3Error, c=None) -> dict:
    """Download the files ``folder``'s manifest names (those ``keep`` accepts) into ``dest`` and check each
    one's size and sha256 against it; returns the manifest. ``error`` names the object at fault."""
    c = c or objects.client()
    manifest = read_manifest(folder, c, error)
    if manifest is None:
        raise error(incomplete(folder, what))
    for rel, entry in sorted(manifest["files"].items()):
        if not keep(rel):
            continue
        local = inside(dest, rel, error=error)
        local.parent.mkdir(parents=True, exist_ok=True)
        source = folder / entry.get("key", rel)
        call(str(source), "download", lambda: get_file(c, source, local), error)
        if file_digest(local) != (entry["sha256"], entry["bytes"]):
            raise error(f"{source}: does not match {folder / SUCCESS} (written {manifest.get('written_at', '?')}): "
                        "changed after it was written, or another run is writing it now; nothing was read")
    return manifest
