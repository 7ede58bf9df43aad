"""S3 locations (``s3://bucket/prefix``) for outputs and inputs, written whole or not at all.

The library is boto3 itself: rightsize already depends on it for prices, it is all five calls here
need (put, get, list, copy, delete), and moto tests it in process. s3fs/fsspec would add aiobotocore,
which pins botocore to a narrow range and fights boto3's own pin, for a file-system layer we do not use.

A folder on S3 is a key prefix. The rules of ``folders.py`` hold for it too:

- **Whole or nothing.** A folder is filled locally, uploaded under ``<prefix>/_temporary/<run>/``,
  and only then committed. The commit writes the new manifest (each file's key, size and sha256) under a
  new key, ``_temporary/<run>/_MANIFEST``, and switches the pointer ``<prefix>/_SUCCESS`` to it in one PUT:
  until that PUT the previous ``_SUCCESS`` and every file it names are untouched, after it the new version
  is complete. Then (signals held) each file is copied to its plain key (``<prefix>/<file>``: what DuckDB
  and Athena read), ``_SUCCESS`` is rewritten as a manifest of the plain keys (the format the previous
  release wrote and reads), and ``_temporary/`` is removed. A kill at any point leaves ``_SUCCESS``
  naming a complete version; the next commit removes the leftovers. Readers read through ``_SUCCESS``
  only and check every file against the manifest.
- **Names stay inside.** Keys are built from checked components (never '', '.', '..' or control
  characters) below their prefix; a file a manifest names is downloaded only inside the reader's
  temporary folder (``atomic.inside``), whatever the manifest says.
- **One writer** (``lock.py``). A lock beside the prefix (``.NAME.lock/<run>`` objects): a run puts its own lock
  object, lists the others, and holds the lock when no other live one is there (else it removes its
  own and waits, as ``[general] lock_wait`` says). With S3's read-after-write consistency two runs
  cannot both see themselves alone. S3 has no kernel to release a dead run's lock, so the lock is a
  lease: the holder rewrites its object every quarter of ``[general] lock_lease`` (2m: every 30 s)
  while it lives, and an object not rewritten for a whole lease is a dead run's, taken over.

Modules, one job each: ``path`` (S3Path and ``location``, no calls), ``objects`` (the client and the calls),
``manifest`` (reading ``_SUCCESS`` and downloading through it), ``commit`` (the whole-folder write), ``lock``
(the lease). Only ``rightsize.storage`` uses this package: everything else reads and writes through it.
"""
from __future__ import annotations

from .commit import replace_folder, write_folder
from .manifest import MANIFEST_FORMAT, SUCCESS, download, file_digest, read_manifest
from .objects import children, has_objects
from .path import S3Error, S3Path, component_problem, location

__all__ = ["MANIFEST_FORMAT", "SUCCESS", "S3Error", "S3Path", "children", "component_problem", "download", "file_digest",
           "has_objects", "location", "read_manifest", "replace_folder", "write_folder"]
