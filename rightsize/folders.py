"""Where rightsize writes: whole folders or nothing, names that stay inside ``--out``, one writer at a time.

- ``replace_folder`` fills a temporary folder beside the target and swaps it in, so a failure or a
  signal leaves the earlier folder as it was (SIGINT/SIGTERM are held during the swap itself).
- ``is_k8s_name`` / ``safe_component`` (and ``atomic.inside``): every output path is built from checked names and
  checked to stay below its root, whatever a label in the metrics says (``../`` and the like).
- ``output_lock``: a lock file beside each output folder; a second run waits a bounded time, then
  fails naming the holder's pid, host, command and start time.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import posixpath
import re
import shutil
import socket
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from .atomic import nothing_written, signals_held
from .errors import LockedError, RightsizeError

# A DNS-1123 subdomain (RFC 1123): what Kubernetes allows for namespaces (a label: no dots) and for
# the names of Deployments, StatefulSets, DaemonSets, Jobs and CronJobs.
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_k8s_name(name: str) -> bool:
    """True when ``name`` is a DNS-1123 subdomain (at most 253 characters), as Kubernetes object names are."""
    return isinstance(name, str) and len(name) <= 253 and _K8S_NAME.fullmatch(name) is not None


def k8s_name_problem(**names: str) -> str:
    """'' when every value is a Kubernetes name, else a reason naming the first bad one, e.g.
    "workload '../x' is not a valid Kubernetes name"."""
    for what, name in names.items():
        if not is_k8s_name(name):
            return f"{what} {name!r} is not a valid Kubernetes name (DNS-1123: a-z, 0-9, '-', '.')"
    return ""


def safe_component(name: str) -> str:
    """``name`` as one path component: unchanged when it is plain (letters, digits, '_', '.', '-', not
    starting with a dot), else percent-encoded (injective: two names never share a component)."""
    if _PLAIN.fullmatch(name or "") and len(name) <= 200:
        return name
    text = quote(name or "", safe="")
    return "%2E" + text[1:] if text.startswith(".") else (text or "%00")


def layout_problem(layout: str, fields: tuple[str, ...] = ("cluster", "namespace"), inside_what: str = "the patch folder") -> str:
    """'' when a layout (``[patches] layout``; ``[report] layout`` with ``fields`` week and cluster) uses only
    those placeholders and stays inside its folder."""
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(layout) if f is not None}
    except ValueError as exc:
        return f"{exc}: {layout!r}"
    unknown = used - set(fields)
    if unknown:
        known = " and ".join(f"{{{f}}}" for f in fields)
        return f"unknown placeholder {{{sorted(unknown)[0]}}} in {layout!r}; use {known}"
    folder = posixpath.normpath(layout.format(**{f: "x" for f in fields})) if layout else "."
    if folder.startswith("/") or folder == ".." or folder.startswith("../"):
        return f"{layout!r} must stay inside {inside_what} (got {folder!r})"
    return ""


def overlay_folder_problem(name: str) -> str:
    """'' when ``[patches] overlay_folder`` names a folder inside the overlay."""
    folder = posixpath.normpath(name.strip("/") or "rightsize")
    if folder.startswith("..") or folder == "." or name.startswith("/"):
        return f"{name!r} must be a folder inside the overlay"
    return ""


# --- whole-folder writes ----------------------------------------------------------------------------

def _swap(target: Path, tmp: Path, old: Path, keep_others: bool) -> None:
    """Put ``tmp`` in place of ``target``; with ``keep_others`` the entries of ``target`` that ``tmp`` lacks
    (e.g. snapshot/ and patches/ beside a report) move along. Undone on failure."""
    carried: list[str] = []
    moved_old = False
    try:
        if keep_others and target.is_dir():
            for entry in sorted(target.iterdir()):
                if not os.path.lexists(tmp / entry.name):
                    entry.rename(tmp / entry.name)
                    carried.append(entry.name)
        if target.exists() or target.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            moved_old = True
        tmp.rename(target)
    except OSError:
        if moved_old and not os.path.lexists(target):
            old.rename(target)
        for name in carried:
            if os.path.lexists(tmp / name):
                (tmp / name).rename(target / name)
        raise
    shutil.rmtree(old, ignore_errors=True)


def replace_folder(target: Path, fill: Callable[[Path], None], *, what: str,
                   error: type[RightsizeError] = RightsizeError, keep_others: bool = False) -> Path:
    """Call ``fill(tmp)`` to write the content, then move it over ``target`` (the old one is kept on failure).

    ``keep_others``: entries of the old folder that ``fill`` did not write are kept (a report folder
    holds snapshot/ and patches/ written by other stages). Any OSError becomes ``error`` with one
    line: "<target>: cannot write <what>: <reason> (nothing was written)".
    """
    from .s3 import S3Path

    if isinstance(target, S3Path):  # filled locally, then uploaded and committed whole (s3.py)
        from . import s3

        return s3.replace_folder(target, fill, what=what, error=error, keep_others=keep_others)
    target = Path(target)
    with nothing_written(target, target, what, error):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    old = target.with_name(f".{target.name}.old")
    try:
        with nothing_written(target, tmp, what, error):
            fill(tmp)
            with signals_held():
                _swap(target, tmp, old, keep_others)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --- one writer per output folder -------------------------------------------------------------------

def lock_path(folder: Path) -> Path:
    """The lock file of ``folder``: a hidden sibling, so that swapping the folder never moves it."""
    folder = Path(os.path.abspath(folder))
    return folder.with_name(f".{folder.name}.lock")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another rightsize process (no details recorded yet)"
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')} (`{info.get('command', 'rightsize')}`, "
            f"started {info.get('started_at', '?')})")


@contextlib.contextmanager
def output_lock(folder: Path, *, wait_seconds: float, command: str = "", log: Callable[[str], None] | None = None,
                lease_seconds: float = 6 * 3600.0, lock_file: Path | None = None):
    """Hold the lock of ``folder`` for the block. Waits up to ``wait_seconds`` for another holder, then
    raises LockedError naming it. The kernel drops the lock when a holder dies (flock), so a crashed
    run never blocks the next one; the lock file is removed when the block ends (also on an error).
    ``lock_file``: where the lock lives instead of beside the folder (an overlay in a git repository is
    locked from a state folder, so that nothing appears in the repository). An s3:// folder gets lock
    objects instead (s3.lock; a dead run's lock is taken over after ``lease_seconds``)."""
    from .s3 import S3Path

    if isinstance(folder, S3Path):
        from . import s3

        with s3.lock(folder, wait_seconds=wait_seconds, lease_seconds=lease_seconds, command=command, log=log):
            yield
        return
    path = lock_file or lock_path(folder)
    fd = _locked_fd(path, folder, wait_seconds, log)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or " ".join(sys.argv[:2]),
                "started_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            # unlinked while still held: a waiter that opened this file finds it gone and opens a new one
            with contextlib.suppress(OSError):
                path.unlink()
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _locked_fd(path: Path, folder: Path, wait_seconds: float, log) -> int:
    """An open, flock'ed descriptor of the lock file at ``path`` (the file that is there now: a holder
    removes its file on exit, so a lock won on a file already removed is dropped and taken again)."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RightsizeError(f"{path}: cannot create the lock file of {folder}: {exc.strerror or exc}") from None
        try:
            _acquire(fd, path, folder, max(deadline - time.monotonic(), 0.0), log)
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _acquire(fd: int, path: Path, folder: Path, wait_seconds: float, log) -> None:
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            raise LockedError.gave_up(folder, _holder(path), wait_seconds, f"lock file {path}")
        if not told and log:
            log(f"{folder} is being written by {_holder(path)}; waiting up to {wait_seconds:g} s")
            told = True
        time.sleep(0.2)
