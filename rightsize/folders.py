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
import errno
import fcntl
import json
import os
import posixpath
import re
import shutil
import socket
import stat
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from .atomic import nothing_written, signals_held
from .errors import LockedError, RightsizeError
from .escape import clean_text
from .names import valid

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_k8s_name(name: str) -> bool:
    """True when ``name`` is a DNS-1123 subdomain (at most 253 characters), as Kubernetes object names are."""
    return valid("workload", name)


def k8s_name_problem(**names: str) -> str:
    """'' when every value is a Kubernetes name, else a reason naming the first bad one, e.g.
    "workload '../x' is not a valid Kubernetes name"."""
    for what, name in names.items():
        if not valid(what if what in ("namespace", "container") else "workload", name):
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
#
# A folder is replaced by two renames of whole folders: the old one to ``.NAME.old``, the staged one to
# ``NAME``. A kill between the two leaves ``NAME`` missing and ``.NAME.old`` whole, and the next write (or
# lock) of that folder renames it back (``recover``); a kill after them leaves ``.NAME.old`` to remove. The
# old folder is never emptied entry by entry: entries it keeps (``keep_others``) are hard-linked into the
# staged folder. A mount point cannot be renamed, so it is staged inside itself and swapped by a journal
# that the next start rolls forward (``_swap_in_place``).

_STAGING = ".staging"
_JOURNAL = ".rightsize-swap.json"


def resolve_out(target: Path) -> Path:
    """``target`` with symlinks resolved: a symlinked output folder is written where it points (the link stays);
    a dangling link is refused."""
    target = Path(os.path.abspath(os.path.expanduser(target)))
    if target.is_symlink() and not target.exists():
        raise RightsizeError(f"{target}: a symbolic link to {os.readlink(target)!r}, which does not exist; "
                             "refused (point it at a folder, or remove it)")
    return Path(os.path.realpath(target))


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _staging_name(target: Path) -> str:
    return f".{target.name}{_STAGING}.{os.getpid()}."


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (one that is not ours counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(target: Path) -> None:
    """Finish what a killed write of ``target`` left: the old folder renamed back when the new one never
    arrived, a swapped-out old folder and dead runs' staging folders removed, a mount point's swap rolled
    forward."""
    target = Path(target)
    old = _old(target)
    if os.path.lexists(old):
        if not os.path.lexists(target):
            old.rename(target)  # killed between the two renames: the earlier folder, whole
        else:
            shutil.rmtree(old, ignore_errors=True)  # killed after them: the earlier folder, no longer needed
    prefix = f".{target.name}{_STAGING}."
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            pid = entry.name[len(prefix):].split(".", 1)[0]
            if entry.name.startswith(prefix) and pid.isdigit() and not alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
    if (target / _JOURNAL).is_file():
        _roll_forward(target)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _link_others(target: Path, tmp: Path) -> None:
    """Hard-link (copy where links are refused) the entries of ``target`` that ``tmp`` lacks into ``tmp``:
    the old folder stays whole until the swap."""
    for entry in sorted(target.iterdir()):
        if not os.path.lexists(tmp / entry.name) and not _ours(entry.name):
            link_one(entry, tmp / entry.name)


def _ours(name: str) -> bool:
    """Names rightsize keeps beside or inside a folder for its own bookkeeping (never carried over)."""
    return name.startswith(".") and (_JOURNAL in name or _STAGING in name or name.endswith((".old", ".lock")))


def link_one(src: Path, dst: Path) -> None:
    """``src`` (a file or a folder's files) at ``dst``: hard links where the file system allows, else copies."""
    def link(a, b):
        try:
            os.link(a, b, follow_symlinks=False)
        except OSError:
            shutil.copy2(a, b, follow_symlinks=False)

    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    else:
        link(src, dst)


def _swap(target: Path, tmp: Path) -> None:
    """Put ``tmp`` in place of ``target``: two renames of whole folders (undone on failure)."""
    old = _old(target)
    moved = False
    try:
        if os.path.lexists(target):
            target.rename(old)
            moved = True
        tmp.rename(target)
    except OSError:
        if moved and not os.path.lexists(target):
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def replace_folder(target: Path, fill: Callable[[Path], None], *, what: str,
                   error: type[RightsizeError] = RightsizeError, keep_others: bool = False) -> Path:
    """Call ``fill(tmp)`` to write the content, then swap it in place of ``target`` (the old one is kept on failure).

    ``keep_others``: entries of the old folder that ``fill`` did not write are kept (a report folder
    holds snapshot/ and patches/ written by other stages). Any OSError becomes ``error`` with one
    line: "<target>: cannot write <what>: <reason> (nothing was written)". The new folder's mode follows the umask.
    A local folder only: ``storage.replace_folder`` takes an s3:// prefix too.
    """
    target = resolve_out(target)
    mount = os.path.ismount(target)
    with nothing_written(target, target, what, error):
        recover(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_staging_name(target), dir=target if mount else target.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would outlive the swap
    try:
        with nothing_written(target, tmp, what, error):
            fill(tmp)
            if keep_others and target.is_dir() and not mount:
                _link_others(target, tmp)
            with signals_held():
                if mount:
                    _swap_in_place(target, tmp, keep_others)
                else:
                    _swap(target, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _swap_in_place(target: Path, tmp: Path, keep_others: bool) -> None:
    """The swap of a mount point (which cannot be renamed): a journal naming the staged folder is written
    first, then the old entries move aside and the staged ones in; ``recover`` rolls a killed swap forward."""
    journal = {"staging": tmp.name, "names": sorted(p.name for p in tmp.iterdir()), "keep_others": keep_others,
               "old": f"{_STAGING}.old.{os.getpid()}"}
    path = target / _JOURNAL
    part = target / f"{_JOURNAL}.part"
    part.write_text(json.dumps(journal))
    os.replace(part, path)
    _roll_forward(target)


def _roll_forward(target: Path) -> None:
    journal = json.loads((target / _JOURNAL).read_text())
    staged, old = target / journal["staging"], target / journal["old"]
    old.mkdir(exist_ok=True)
    names = set(journal["names"])
    for entry in sorted(target.iterdir()):
        if _ours(entry.name):
            continue
        if (entry.name in names and os.path.lexists(staged / entry.name)) or (
                not journal["keep_others"] and entry.name not in names):
            entry.rename(old / entry.name)
    if staged.is_dir():
        for entry in sorted(staged.iterdir()):
            entry.rename(target / entry.name)
    (target / _JOURNAL).unlink()
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staged, ignore_errors=True)


# --- one writer per output folder -------------------------------------------------------------------

_LOCK_BYTES = 1024  # the holder's details, padded: the file is overwritten in place, never truncated


def lock_path(folder: Path) -> Path:
    """The lock file of ``folder``: a hidden sibling, so that swapping the folder never moves it."""
    folder = resolve_out(folder)
    return folder.with_name(f".{folder.name}.lock")


def _holder(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = json.loads(os.pread(fd, _LOCK_BYTES, 0).decode() or "{}") if stat.S_ISREG(os.fstat(fd).st_mode) else {}
        finally:
            os.close(fd)
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:
        return "another rightsize process (no details recorded yet)"
    return clean_text(f"pid {info.get('pid', '?')} on {info.get('host', '?')} (`{info.get('command', 'rightsize')}`, "
                      f"started {info.get('started_at', '?')})")


def _open_lock(path: Path, folder: Path) -> int:
    """The lock file, opened without following a symlink and refused unless it is a plain file of its own
    (a planted symlink, hard link, FIFO or device is never written through)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        reason = "it is a symbolic link; refused (remove it)" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise RightsizeError(f"{path}: cannot open the lock file of {folder}: {reason}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(info.st_mode) else f"a hard link ({info.st_nlink} names)"
        raise RightsizeError(f"{path}: the lock file of {folder} is {what}; refused (remove it)")
    return fd


@contextlib.contextmanager
def output_lock(folder: Path, *, wait_seconds: float, command: str = "", log: Callable[[str], None] | None = None,
                lock_file: Path | None = None):
    """Hold the lock of ``folder`` for the block. Waits up to ``wait_seconds`` for another holder, then
    raises LockedError naming it. The kernel drops the lock when a holder dies (flock), so a crashed
    run never blocks the next one; the lock file is removed when the block ends (also on an error), and
    what a killed write left is recovered once the lock is held.
    ``lock_file``: where the lock lives instead of beside the folder (an overlay in a git repository is
    locked from a state folder, so that nothing appears in the repository). An s3:// folder's lock is a lease
    instead (``storage.output_lock``)."""
    folder = resolve_out(folder)
    path = lock_file or lock_path(folder)
    fd = _locked_fd(path, folder, wait_seconds, log)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or " ".join(sys.argv[:2]),
                "started_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}
        os.pwrite(fd, json.dumps(info).encode()[:_LOCK_BYTES].ljust(_LOCK_BYTES), 0)
        with contextlib.suppress(OSError):
            recover(folder)
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
        fd = _open_lock(path, folder)
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
        st = os.lstat(path)
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
