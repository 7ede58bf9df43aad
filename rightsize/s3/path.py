"""s3:// locations: ``S3Path`` (a bucket and a key prefix built from checked components) and ``location``,
which tells an s3:// URL from a local path. Nothing here calls S3."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import RightsizeError

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
