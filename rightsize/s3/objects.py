"""The S3 calls rightsize makes (put, get, list, copy, delete) through one client per process; botocore's
errors become S3Error naming the location, the S3 error code and, when access is denied, the IAM policy."""
from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Callable

from ..errors import RightsizeError
from .path import S3Error, S3Path, component_problem

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

    from ..aws_client import client_config

    return boto3.session.Session().client("s3", config=client_config(5, connect_timeout=10, read_timeout=120))


def client():
    """The process's S3 client (making one costs about 0.2 s, and a fleet of 100 clusters asks S3 hundreds
    of times); botocore clients are thread-safe and refresh their credentials themselves."""
    key = tuple(os.environ.get(name) for name in _CHAIN_ENV)
    if key not in _CLIENTS:
        _CLIENTS.clear()
        _CLIENTS[key] = new_client()
    return _CLIENTS[key]


def call(where: str, what: str, fn: Callable, error: type[RightsizeError] = S3Error):
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
    answer = call(where, "list objects", lambda: c.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1), error)
    return any(o["Key"] == key for o in answer.get("Contents", []))


def list_keys(c, bucket: str, prefix: str, where: str) -> list[dict]:
    """Every object under ``prefix`` (Key, LastModified, Size)."""
    pages = call(where, "list objects", lambda: list(c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)))
    return [o for page in pages for o in page.get("Contents", [])]


def delete_keys(c, bucket: str, keys: list[str], where: str) -> None:
    """Delete ``keys`` (1,000 a call); S3 answers per key, so a refused one is an error too."""
    for i in range(0, len(keys), 1000):
        chunk = [{"Key": k} for k in keys[i:i + 1000]]
        answer = call(where, "delete objects", lambda: c.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True}))
        for e in answer.get("Errors") or []:
            raise S3Error(f"s3://{bucket}/{e.get('Key')}: cannot delete: {e.get('Code')} {e.get('Message', '')}".rstrip())


def children(folder: S3Path, c=None) -> list[str]:
    """Names of the sub-folders directly below ``folder`` (S3 common prefixes), sorted."""
    c = c or client()
    pages = call(str(folder), "list folders", lambda: list(c.get_paginator("list_objects_v2").paginate(
        Bucket=folder.bucket, Prefix=folder.prefix, Delimiter="/")))
    names = [p["Prefix"][len(folder.prefix):].rstrip("/") for page in pages for p in page.get("CommonPrefixes", [])]
    return sorted(n for n in names if not component_problem(n))


def has_objects(folder: S3Path) -> bool:
    """Anything at all below ``folder`` (e.g. an upload that did not complete)."""
    c = client()
    answer = call(str(folder), "list objects", lambda: c.list_objects_v2(Bucket=folder.bucket, Prefix=folder.prefix, MaxKeys=1))
    return bool(answer.get("KeyCount"))


def get_or_none(c, path: S3Path, where: S3Path, what: str, error: type[RightsizeError]) -> bytes | None:
    """The bytes of one object, or None when it does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return c.get_object(Bucket=path.bucket, Key=path.key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        # S3 answers 403, not 404, for a missing key when ListBucket is granted on a prefix only: ask the listing
        if _missing(exc) or (_denied(exc) and not _listed(c, path.bucket, path.key, str(where), error)):
            return None
        raise _failure(str(path), what, exc, error) from None


def get_file(c, source: S3Path, local: Path) -> None:
    body = c.get_object(Bucket=source.bucket, Key=source.key)["Body"]
    with open(local, "wb") as f:
        for chunk in body.iter_chunks(1 << 20):
            f.write(chunk)


def put_file(c, path: Path, bucket: str, key: str) -> None:
    """One PUT per file (a snapshot's largest table is far below S3's 5 GB), streamed from the file."""
    with open(path, "rb") as f:
        c.put_object(Bucket=bucket, Key=key, Body=f)


def put_json(c, path: S3Path, value: dict, where: str, what: str, error) -> bytes:
    body = json.dumps(value, indent=2, sort_keys=True).encode()
    call(where, what, lambda: c.put_object(Bucket=path.bucket, Key=path.key, Body=body, ContentType="application/json"), error)
    return body


def run_id() -> str:
    """One write's id: its UTC start and 8 random hex digits (sorts by start, never shared by two runs)."""
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
