"""An s3:// folder written whole or not at all: uploaded under ``_temporary/<run>/``, committed by switching
the ``_SUCCESS`` pointer in one PUT, then settled to plain keys (see the package docstring)."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Callable

from ..atomic import bytes_sha256, nothing_written, signals_held
from ..errors import RightsizeError
from . import objects
from .manifest import MANIFEST, MANIFEST_FORMAT, POINTER_FORMAT, SUCCESS, TEMPORARY, file_digest, read_manifest
from .objects import call, delete_keys, list_keys, put_file, put_json, run_id
from .path import S3Error, S3Path


def _local_files(root: Path) -> dict[str, Path]:
    """{posix path relative to root: file} of every regular file below ``root`` (symlinks are not followed)."""
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                out[path.relative_to(root).as_posix()] = path
    return dict(sorted(out.items()))


def write_folder(target: S3Path, staged: Path, *, what: str, error: type[RightsizeError] = S3Error,
                 keep_others: bool = False) -> None:
    """Upload the files of the local folder ``staged`` as ``target`` (see the module docstring).

    ``keep_others``: files of the earlier version that this write does not replace stay (a report folder
    holds snapshot/ and patches/, each committed on its own); otherwise they are removed with the commit."""
    c, where = objects.client(), str(target)
    files = _local_files(staged)
    for rel in files:
        target / rel  # noqa: B018 - raises when a name would leave the prefix
    run = run_id()
    temp = target / TEMPORARY / run
    try:
        entries = {}
        for rel, path in files.items():
            sha, size = file_digest(path)
            entries[rel] = {"sha256": sha, "bytes": size, "key": f"{TEMPORARY}/{run}/{rel}"}
            key = (temp / rel).key
            call(where, f"upload {rel}", lambda: put_file(c, path, target.bucket, key), error)
        _check_uploaded(c, temp, entries, error)
        before = read_manifest(target, c, error) or {"files": {}}
        if keep_others:
            entries = {**before["files"], **entries}
        manifest = {"format": MANIFEST_FORMAT, "what": what, "run": run, "files": dict(sorted(entries.items())),
                    "written_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}
        _switch(c, target, temp, manifest, error)
        with signals_held():
            _settle(c, target, manifest, before, keep_others, error)
    finally:
        with contextlib.suppress(RightsizeError):
            _remove_leftovers(c, target)


def _switch(c, target: S3Path, temp: S3Path, manifest: dict, error) -> None:
    """The commit point: the new manifest under a new key, then ``_SUCCESS`` pointing to it (one PUT)."""
    body = put_json(c, temp / MANIFEST, manifest, str(target), f"write {MANIFEST}", error)
    pointer = {"format": POINTER_FORMAT, "manifest": f"{TEMPORARY}/{temp.name}/{MANIFEST}", "what": manifest["what"],
               "sha256": bytes_sha256(body), "written_at": manifest["written_at"]}
    put_json(c, target / SUCCESS, pointer, str(target), f"write {SUCCESS}", error)


def _settle(c, target: S3Path, manifest: dict, before: dict, keep_others: bool, error) -> None:
    """After the switch: every file copied to its plain key, ``_SUCCESS`` rewritten as a manifest of those
    keys, then the files of the earlier version this one lacks removed (without ``keep_others``). An
    object rightsize did not write (no manifest names it) is never removed."""
    where, bucket = str(target), target.bucket
    plain = {}
    for rel, entry in manifest["files"].items():
        key = entry.get("key", rel)
        if key != rel:
            source = {"Bucket": bucket, "Key": (target / key).key}
            call(where, f"copy {rel} into place", lambda: c.copy_object(Bucket=bucket, Key=(target / rel).key, CopySource=source), error)
        plain[rel] = {k: v for k, v in entry.items() if k != "key"}
    put_json(c, target / SUCCESS, {**manifest, "files": plain}, where, f"write {SUCCESS}", error)
    if not keep_others:
        delete_keys(c, bucket, [(target / rel).key for rel in before["files"] if rel not in manifest["files"]], where)


def _remove_leftovers(c, target: S3Path) -> None:
    """Remove what interrupted or finished uploads left under ``_temporary/``, except what ``_SUCCESS`` still names."""
    where = str(target)
    current = read_manifest(target, c) or {"files": {}}
    keep = {(target / e.get("key", rel)).key for rel, e in current["files"].items()}
    keep |= {k.rsplit("/", 1)[0] + "/" + MANIFEST for k in keep}
    stale = [o["Key"] for o in list_keys(c, target.bucket, (target / TEMPORARY).prefix, where) if o["Key"] not in keep]
    delete_keys(c, target.bucket, stale, where)


def _check_uploaded(c, temp: S3Path, entries: dict, error) -> None:
    """Every file is under ``temp`` with its size before anything is committed."""
    sizes = {o["Key"]: o["Size"] for o in list_keys(c, temp.bucket, temp.prefix, str(temp))}
    for rel, entry in entries.items():
        if sizes.get((temp / rel).key) != entry["bytes"]:
            raise error(f"{temp / rel}: the upload did not arrive whole ({sizes.get((temp / rel).key)} of "
                        f"{entry['bytes']} bytes); nothing was committed")


def replace_folder(target: S3Path, fill: Callable[[Path], None], *, what: str,
                   error: type[RightsizeError] = RightsizeError, keep_others: bool = False) -> S3Path:
    """``folders.replace_folder`` for S3: ``fill`` writes into a local temporary folder, which is then
    uploaded and committed as ``target``; nothing is committed when ``fill`` fails."""
    with tempfile.TemporaryDirectory(prefix="rightsize-s3-") as tmp:
        staged = Path(tmp) / "folder"
        staged.mkdir()
        with nothing_written(target, staged, what, error):
            fill(staged)
        write_folder(target, staged, what=what, error=error, keep_others=keep_others)
    return target
