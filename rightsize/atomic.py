"""Building blocks of safe local writes, below both the folder writer and the S3 store.

- ``inside``: a path built from a name that may come from metrics labels, refused when it would resolve
  outside its root.
- ``signals_held``: SIGINT and SIGTERM wait while a commit step runs, so it is never half done.
- ``file_sha256``: the digest meta.json and the S3 manifest record for each file.
- ``nothing_written``: a failure while a folder is staged becomes one line naming the real target.
- ``write_text_atomic``: one file written through a temporary file beside it and renamed over.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
from pathlib import Path
from typing import Iterator

from .errors import RightsizeError


def inside(root: Path, rel: str, *, error: type[RightsizeError] = RightsizeError) -> Path:
    """``root / rel``, refusing any path (``..``, absolute, symlink) that resolves outside ``root``."""
    root_real = os.path.realpath(root)
    path = Path(root) / rel
    real = os.path.realpath(path)
    if os.path.isabs(rel) or os.path.commonpath([root_real, real]) != root_real or real == root_real:
        raise error(f"{rel!r} would be written outside {root}; refused (nothing was written)")
    return path


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for s in pending:
            signal.raise_signal(s)


@contextlib.contextmanager
def nothing_written(target, staged, what: str, error: type[RightsizeError]) -> Iterator[None]:
    """While ``target`` is being staged in ``staged``: an OSError becomes ``error`` "<target>: cannot write
    <what>: <reason> (nothing was written)", and a RightsizeError names ``target`` instead of the staging folder."""
    try:
        yield
    except OSError as exc:
        raise error(f"{target}: cannot write {what}: {exc.strerror or exc} (nothing was written)") from None
    except RightsizeError as exc:
        text = str(exc).replace(str(staged), str(target))
        raise type(exc)(text if "nothing was written" in text else f"{text} (nothing was written)") from None


def bytes_sha256(data: bytes) -> str:
    """'sha256:<hex>' of ``data``: the form of every digest rightsize records."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """'sha256:<hex>' of a file's bytes (read in blocks: a table file may be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def write_text_atomic(path: Path, text: str | bytes) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder; RightsizeError names the file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if isinstance(text, bytes):
            tmp.write_bytes(text)
        else:
            tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RightsizeError(f"{path}: cannot write report file: {exc.strerror or exc}") from None
    return path
