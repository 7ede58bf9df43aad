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
- **One writer** (``s3_lock.py``). A lock beside the prefix (``.NAME.lock/<run>`` objects): a run puts its own lock
  object, lists the others, and holds the lock when no other live one is there (else it removes its
  own and waits, as ``[general] lock_wait`` says). With S3's read-after-write consistency two runs
  cannot both see themselves alone. S3 has no kernel to release a dead run's lock, so the lock is a
  lease: the holder rewrites its object every quarter of ``[general] lock_lease`` (2m: every 30 s)
  while it lives, and an object not rewritten for a whole lease is a dead run's, taken over.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from .atomic import file_sha256, inside, nothing_written, signals_held
from .errors import RightsizeError

SUCCESS = "_SUCCESS"
TEMPORARY = "_temporary"
MANIFEST_FORMAT = "rightsize-folder/1"
POINTER_FORMAT = "rightsize-pointer/1"
MANIFEST = "_MANIFEST"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class S3Error(RightsizeError):
    """An S3 location is malformed, unreachable, refused, or holds no complete upload."""


def component_problem(name: str) -> str:
    """'' when ``name`` may be one component of a key (between slashes), else why not."""
    if name in ("", ".", ".."):
        return f"{name!r} is not allowed as a key component (empty, '.' or '..')"
    if _CONTROL.search(name) or "\\" in name:
        return f"{name!r} holds a control character or a backslash"
    if len(name.encode()) > 255:
        return f"{name[:40]!r}... is longer than 255 bytes"
    return ""


class S3Path:
    """``s3://bucket/a/b`` as a folder location: ``/`` joins checked components, ``.name`` and
    ``.parent`` work as for a Path; ``str()`` gives the URL back. Never a local path (no __fspath__)."""

    __slots__ = ("bucket", "key")

    def __init__(self, url: str):
        text = str(url)
        if not text.startswith("s3://"):
            raise S3Error(f"{text!r}: not an s3://bucket/prefix URL")
        bucket, _, key = text[len("s3://"):].partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise S3Error(f"{text!r}: {bucket!r} is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
        parts = key.rstrip("/").split("/") if key.rstrip("/") else []
        for part in parts:
            problem = component_problem(part)
            if problem:
                raise S3Error(f"{text!r}: {problem}")
        self.bucket, self.key = bucket, "/".join(parts)

    @classmethod
    def _of(cls, bucket: str, key: str) -> "S3Path":
        path = cls.__new__(cls)
        path.bucket, path.key = bucket, key
        return path

    def __truediv__(self, rel: str | os.PathLike) -> "S3Path":
        parts = [p for p in str(rel).replace(os.sep, "/").split("/") if p != ""] if str(rel) else []
        for part in parts:
            problem = component_problem(part)
            if problem:
                raise S3Error(f"{self}/{rel}: {problem}; refused")
        return S3Path._of(self.bucket, "/".join([self.key, *parts] if self.key else parts))

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1] if self.key else ""

    @property
    def parent(self) -> "S3Path":
        return S3Path._of(self.bucket, self.key.rsplit("/", 1)[0] if "/" in self.key else "")

    @property
    def parts(self) -> list[str]:
        return self.key.split("/") if self.key else []

    @property
    def prefix(self) -> str:
        """The key prefix of everything inside this folder ('a/b/', or '' at the bucket's root)."""
        return f"{self.key}/" if self.key else ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Path({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, S3Path) and (self.bucket, self.key) == (other.bucket, other.key)

    def __hash__(self) -> int:
        return hash((self.bucket, self.key))


def location(value: str | os.PathLike | S3Path) -> Path | S3Path:
    """An output or input location: an S3Path for ``s3://...``, else a local Path."""
    if isinstance(value, (S3Path, Path)):
        return value
    text = os.fspath(value)
    return S3Path(text) if text.startswith("s3://") else Path(text)


# --- calls ---------------------------------------------------------------------------------------------

_CLIENTS: dict[tuple, object] = {}
# what the default chain reads from the environment: a change (another profile, region or endpoint) gets a new client
_CHAIN_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
              "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE",
              "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


def new_client():
    """An S3 client from the default credential chain (environment, profile, IRSA web identity, EKS Pod
    Identity); AWS_REGION and AWS_ENDPOINT_URL_S3 (an S3-compatible store) are honoured by botocore."""
    import boto3

    from .aws_client import client_config

    return boto3.session.Session().client("s3", config=client_config(5, connect_timeout=10, read_timeout=120))


def client():
    """The process's S3 client (making one costs about 0.2 s, and a fleet of 100 clusters asks S3 hundreds
    of times); botocore clients are thread-safe and refresh their credentials themselves."""
    key = tuple(os.environ.get(name) for name in _CHAIN_ENV)
    if key not in _CLIENTS:
        _CLIENTS.clear()
        _CLIENTS[key] = new_client()
    return _CLIENTS[key]


def _call(where: str, what: str, fn: Callable, error: type[RightsizeError] = S3Error):
    """Run one S3 call; botocore's errors become ``error`` naming the location and the S3 error code."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise _failure(where, what, exc, error) from None


def _failure(where: str, what: str, exc: Exception, error: type[RightsizeError]) -> RightsizeError:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return error(f"{where}: cannot {what}: {exc}")
    info = exc.response.get("Error", {})
    code, message = info.get("Code", "?"), info.get("Message", "")
    hint = (" (the role needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on this prefix: "
            "deploy/iam-policy.json)") if code in ("AccessDenied", "403") else ""
    return error(f"{where}: cannot {what}: {code} {message}".rstrip() + hint)


def _missing(exc) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


def _denied(exc) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("AccessDenied", "403")


def _listed(c, bucket: str, key: str, where: str, error: type[RightsizeError]) -> bool:
    answer = _call(where, "list objects", lambda: c.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1), error)
    return any(o["Key"] == key for o in answer.get("Contents", []))


def _keys(c, bucket: str, prefix: str, where: str) -> list[dict]:
    """Every object under ``prefix`` (Key, LastModified, Size)."""
    pages = _call(where, "list objects", lambda: list(c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)))
    return [o for page in pages for o in page.get("Contents", [])]


def _delete(c, bucket: str, keys: list[str], where: str) -> None:
    """Delete ``keys`` (1,000 a call); S3 answers per key, so a refused one is an error too."""
    for i in range(0, len(keys), 1000):
        chunk = [{"Key": k} for k in keys[i:i + 1000]]
        answer = _call(where, "delete objects", lambda: c.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True}))
        for e in answer.get("Errors") or []:
            raise S3Error(f"s3://{bucket}/{e.get('Key')}: cannot delete: {e.get('Code')} {e.get('Message', '')}".rstrip())


def children(folder: S3Path, c=None) -> list[str]:
    """Names of the sub-folders directly below ``folder`` (S3 common prefixes), sorted."""
    c = c or client()
    pages = _call(str(folder), "list folders", lambda: list(c.get_paginator("list_objects_v2").paginate(
        Bucket=folder.bucket, Prefix=folder.prefix, Delimiter="/")))
    names = [p["Prefix"][len(folder.prefix):].rstrip("/") for page in pages for p in page.get("CommonPrefixes", [])]
    return sorted(n for n in names if not component_problem(n))


def has_objects(folder: S3Path) -> bool:
    """Anything at all below ``folder`` (e.g. an upload that did not complete)."""
    c = client()
    answer = _call(str(folder), "list objects", lambda: c.list_objects_v2(Bucket=folder.bucket, Prefix=folder.prefix, MaxKeys=1))
    return bool(answer.get("KeyCount"))


# --- manifests -----------------------------------------------------------------------------------------

def file_digest(path: Path) -> tuple[str, int]:
    """('sha256:<hex>', size in bytes) of a local file (the digest meta.json records for each table)."""
    return file_sha256(path), path.stat().st_size


def _get_or_none(c, path: S3Path, where: S3Path, what: str, error: type[RightsizeError]) -> bytes | None:
    """The bytes of one object, or None when it does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return c.get_object(Bucket=path.bucket, Key=path.key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        # S3 answers 403, not 404, for a missing key when ListBucket is granted on a prefix only: ask the listing
        if _missing(exc) or (_denied(exc) and not _listed(c, path.bucket, path.key, str(where), error)):
            return None
        raise _failure(str(path), what, exc, error) from None


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
    c = c or client()
    body = _get_or_none(c, folder / SUCCESS, folder, "read the manifest", error)
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
    body = _get_or_none(c, where, folder, "read the manifest", error)
    if body is None or "sha256:" + hashlib.sha256(body).hexdigest() != pointer.get("sha256"):
        raise error(f"{where}: the manifest {folder / SUCCESS} points to is missing or changed; refusing to read {folder}")
    return _json_object(body)


def incomplete(folder: S3Path, what: str) -> str:
    return (f"{folder}: no complete {what} here: no {SUCCESS} manifest (nothing was uploaded, or an upload "
            "did not complete; an interrupted upload is never read)")


def download(folder: S3Path, dest: Path, *, what: str, keep: Callable[[str], bool] = lambda rel: True,
             error: type[RightsizeError] = S3Error, c=None) -> dict:
    """Download the files ``folder``'s manifest names (those ``keep`` accepts) into ``dest`` and check each
    one's size and sha256 against it; returns the manifest. ``error`` names the object at fault."""
    c = c or client()
    manifest = read_manifest(folder, c, error)
    if manifest is None:
        raise error(incomplete(folder, what))
    for rel, entry in sorted(manifest["files"].items()):
        if not keep(rel):
            continue
        local = inside(dest, rel, error=error)
        local.parent.mkdir(parents=True, exist_ok=True)
        source = folder / entry.get("key", rel)
        _call(str(source), "download", lambda: _get(c, source, local), error)
        if file_digest(local) != (entry["sha256"], entry["bytes"]):
            raise error(f"{source}: does not match {folder / SUCCESS} (written {manifest.get('written_at', '?')}): "
                        "changed after it was written, or another run is writing it now; nothing was read")
    return manifest


def _get(c, source: S3Path, local: Path) -> None:
    body = c.get_object(Bucket=source.bucket, Key=source.key)["Body"]
    with open(local, "wb") as f:
        for chunk in body.iter_chunks(1 << 20):
            f.write(chunk)


def _put(c, path: Path, bucket: str, key: str) -> None:
    """One PUT per file (a snapshot's largest table is far below S3's 5 GB), streamed from the file."""
    with open(path, "rb") as f:
        c.put_object(Bucket=bucket, Key=key, Body=f)


# --- whole-folder writes -------------------------------------------------------------------------------

def _run_id() -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


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
    c, where = client(), str(target)
    files = _local_files(staged)
    for rel in files:
        target / rel  # noqa: B018 - raises when a name would leave the prefix
    run = _run_id()
    temp = target / TEMPORARY / run
    try:
        entries = {}
        for rel, path in files.items():
            sha, size = file_digest(path)
            entries[rel] = {"sha256": sha, "bytes": size, "key": f"{TEMPORARY}/{run}/{rel}"}
            key = (temp / rel).key
            _call(where, f"upload {rel}", lambda: _put(c, path, target.bucket, key), error)
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


def _put_json(c, path: S3Path, value: dict, where: str, what: str, error) -> bytes:
    body = json.dumps(value, indent=2, sort_keys=True).encode()
    _call(where, what, lambda: c.put_object(Bucket=path.bucket, Key=path.key, Body=body, ContentType="application/json"), error)
    return body


def _switch(c, target: S3Path, temp: S3Path, manifest: dict, error) -> None:
    """The commit point: the new manifest under a new key, then ``_SUCCESS`` pointing to it (one PUT)."""
    body = _put_json(c, temp / MANIFEST, manifest, str(target), f"write {MANIFEST}", error)
    pointer = {"format": POINTER_FORMAT, "manifest": f"{TEMPORARY}/{temp.name}/{MANIFEST}", "what": manifest["what"],
               "sha256": "sha256:" + hashlib.sha256(body).hexdigest(), "written_at": manifest["written_at"]}
    _put_json(c, target / SUCCESS, pointer, str(target), f"write {SUCCESS}", error)


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
            _call(where, f"copy {rel} into place", lambda: c.copy_object(Bucket=bucket, Key=(target / rel).key, CopySource=source), error)
        plain[rel] = {k: v for k, v in entry.items() if k != "key"}
    _put_json(c, target / SUCCESS, {**manifest, "files": plain}, where, f"write {SUCCESS}", error)
    if not keep_others:
        _delete(c, bucket, [(target / rel).key for rel in before["files"] if rel not in manifest["files"]], where)


def _remove_leftovers(c, target: S3Path) -> None:
    """Remove what interrupted or finished uploads left under ``_temporary/``, except what ``_SUCCESS`` still names."""
    where = str(target)
    current = read_manifest(target, c) or {"files": {}}
    keep = {(target / e.get("key", rel)).key for rel, e in current["files"].items()}
    keep |= {k.rsplit("/", 1)[0] + "/" + MANIFEST for k in keep}
    stale = [o["Key"] for o in _keys(c, target.bucket, (target / TEMPORARY).prefix, where) if o["Key"] not in keep]
    _delete(c, target.bucket, stale, where)


def _check_uploaded(c, temp: S3Path, entries: dict, error) -> None:
    """Every file is under ``temp`` with its size before anything is committed."""
    sizes = {o["Key"]: o["Size"] for o in _keys(c, temp.bucket, temp.prefix, str(temp))}
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
