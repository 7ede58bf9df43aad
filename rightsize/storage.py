"""One storage interface: every place rightsize reads or writes is a local folder or an s3:// prefix, and
only this module tells them apart. The rest of the package asks a location for what it needs (its
sub-folders, whether a file is committed there, a local copy to read, a whole-folder replace, the writer's
lock) and never which kind it is.

- ``location``: a ``Path`` or an ``S3Path`` from what a user typed (``s3://`` names S3, the rest is local).
- ``store(loc)``: the ``Store`` behind a location: ``LOCAL`` (``folders.py``: two renames, flock) or ``S3``
  (``s3/``: a pointer commit, a lease). The module-level functions below forward to it.

A small protocol of our own rather than fsspec: fsspec would not make the commit or the locks simpler. The
whole-or-nothing write is a folder swap on disk and a ``_SUCCESS`` pointer switch on S3, and the one-writer
lock is flock on disk and a renewed lease on S3; fsspec has neither (its ``mv`` of a folder is a copy per
object, and it has no lock), so both would stay ours on top of it, and s3fs would add aiobotocore, which
pins botocore against boto3's own pin.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Protocol, Union

from . import folders, s3
from .atomic import write_text_atomic
from .errors import RightsizeError
from .s3 import S3Error, S3Path  # noqa: F401  (S3Error re-exported: a malformed s3:// location)

Location = Union[Path, S3Path]


def location(value: str | os.PathLike | Location, *, expand_user: bool = False) -> Location:
    """An output or input location: an S3Path for ``s3://...``, else a local Path (``~`` expanded with
    ``expand_user``, as for a configured folder). S3Error names a malformed s3:// URL."""
    loc = s3.location(value)
    return loc.expanduser() if expand_user and isinstance(loc, Path) else loc


class Store(Protocol):
    """What the writers and readers need of a place to keep folders."""

    parallel_reads: int  # snapshots to read at once: 1 from disk, more from S3 (each read is latency-bound)
    copies_to_read: bool  # reads go through a temporary local copy (so nothing read lazily may outlive it)
    swaps_nested: bool  # a folder and the folders inside it are replaced by one swap (else each commits on its own)

    def children(self, folder) -> list[str]: ...
    def has_file(self, folder, name: str) -> bool: ...
    def started(self, folder) -> bool: ...
    def local_copy(self, folder, *, what: str, keep: Callable[[str], bool],
                   error: type[RightsizeError] | None) -> ContextManager[Path]: ...
    def replace_folder(self, target, fill: Callable[[Path], None], *, what: str, error: type[RightsizeError],
                       keep_others: bool): ...
    def write_file(self, folder, name: str, text: str | bytes, what: str): ...
    def lock(self, folder, *, wait_seconds: float, lease_seconds: float, command: str, log,
             lock_file: Path | None) -> ContextManager[None]: ...
    def make_folder(self, folder) -> None: ...
    def write_problem(self, folder) -> str: ...
    def lacks(self, folder, marker: str) -> str: ...
    def same(self, a, b) -> bool: ...


class LocalStore:
    """Folders on disk (``folders.py``): replaced by two renames, one writer by flock."""

    parallel_reads, copies_to_read, swaps_nested = 1, False, True

    def children(self, folder: Path) -> list[str]:
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def has_file(self, folder: Path, name: str) -> bool:
        return (folder / name).is_file()

    def started(self, folder: Path) -> bool:
        return folder.is_dir() and any(folder.iterdir())

    @contextlib.contextmanager
    def local_copy(self, folder: Path, *, what: str, keep: Callable[[str], bool], error=None) -> Iterator[Path]:
        yield folder  # read in place

    def replace_folder(self, target: Path, fill, *, what: str, error=RightsizeError, keep_others: bool = False) -> Path:
        return folders.replace_folder(target, fill, what=what, error=error, keep_others=keep_others)

    def write_file(self, folder: Path, name: str, text: str | bytes, what: str) -> Path:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return write_text_atomic(Path(folder) / name, text)

    def lock(self, folder: Path, *, wait_seconds: float, lease_seconds: float, command: str, log, lock_file=None):
        return folders.output_lock(folder, wait_seconds=wait_seconds, command=command, log=log, lock_file=lock_file)

    def make_folder(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    def write_problem(self, folder: Path) -> str:
        """'' when ``folder`` can be replaced, else why not ("exists and is not a folder", "read-only")."""
        if folder.exists() and not folder.is_dir():
            return "exists and is not a folder"
        probe = folder if folder.exists() else folder.parent
        while not probe.exists():
            probe = probe.parent
        if not os.access(probe, os.W_OK) or (folder.exists() and not os.access(folder.parent, os.W_OK)):
            return "read-only"
        return ""

    def lacks(self, folder: Path, marker: str) -> str:
        """'' when ``folder`` is absent, empty or holds ``marker`` (it is rightsize's to replace), else what is missing."""
        foreign = folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file()
        return f"no {marker}" if foreign else ""

    def same(self, a: Path, b: Path) -> bool:
        return Path(a).resolve() == Path(b).resolve()


class S3Store:
    """Prefixes on S3 (``s3/``): filled locally and committed by a pointer switch, one writer by a lease."""

    parallel_reads, copies_to_read, swaps_nested = 8, True, False

    def children(self, folder: S3Path) -> list[str]:
        return s3.children(folder)

    def has_file(self, folder: S3Path, name: str) -> bool:
        manifest = s3.read_manifest(folder)
        return manifest is not None and name in manifest["files"]

    def started(self, folder: S3Path) -> bool:
        return s3.has_objects(folder)

    @contextlib.contextmanager
    def local_copy(self, folder: S3Path, *, what: str, keep: Callable[[str], bool], error=None) -> Iterator[Path]:
        """The files of ``folder``'s manifest that ``keep`` accepts, downloaded and checked; an error raised
        while reading them names ``folder``, not the temporary copy."""
        with tempfile.TemporaryDirectory(prefix=f"rightsize-{what.replace(' ', '-')}-") as tmp:
            s3.download(folder, Path(tmp), what=what, keep=keep, error=error or S3Error)
            try:
                yield Path(tmp)
            except RightsizeError as exc:
                raise type(exc)(str(exc).replace(tmp, str(folder))) from None

    def replace_folder(self, target: S3Path, fill, *, what: str, error=RightsizeError, keep_others: bool = False) -> S3Path:
        return s3.replace_folder(target, fill, what=what, error=error, keep_others=keep_others)

    def write_file(self, folder: S3Path, name: str, text: str | bytes, what: str) -> S3Path:
        self.replace_folder(folder, lambda tmp: write_text_atomic(tmp / name, text), what=what, keep_others=True)
        return folder / name

    def lock(self, folder: S3Path, *, wait_seconds: float, lease_seconds: float, command: str, log, lock_file=None):
        """The lease beside the prefix (``lock_file`` is for local folders only: an S3 lock lives beside its prefix)."""
        from .s3 import lock

        return lock.lock(folder, wait_seconds=wait_seconds, lease_seconds=lease_seconds, command=command, log=log)

    def make_folder(self, folder: S3Path) -> None:
        pass  # a prefix exists once something is written under it

    def write_problem(self, folder: S3Path) -> str:
        return ""  # S3 answers only when written to: a refused PUT is an error naming the key, and nothing is committed

    def lacks(self, folder: S3Path, marker: str) -> str:
        manifest = s3.read_manifest(folder)
        return f"no {marker} in its {s3.SUCCESS}" if manifest is not None and marker not in manifest["files"] else ""

    def same(self, a, b) -> bool:
        return a == b


LOCAL, S3 = LocalStore(), S3Store()


def store(loc: Location) -> Store:
    """The store behind ``loc`` (a location from ``location``)."""
    return S3 if isinstance(loc, S3Path) else LOCAL


# --- the interface, one call per need ----------------------------------------------------------------

def children(folder: Location) -> list[str]:
    """Names of the sub-folders directly below ``folder``, sorted ([] when there is none)."""
    return store(folder).children(folder)


def has_file(folder: Location, name: str) -> bool:
    """``folder`` holds the committed file ``name`` (on S3: its ``_SUCCESS`` manifest names it)."""
    return store(folder).has_file(folder, name)


def started(folder: Location) -> bool:
    """Something was written at ``folder`` (a write that may not have completed)."""
    return store(folder).started(folder)


def local_copy(folder: Location, *, what: str, keep: Callable[[str], bool] = lambda rel: True,
               error: type[RightsizeError] | None = None) -> ContextManager[Path]:
    """A local folder holding ``folder``'s files for the block: the folder itself on disk, a checked download
    of the files ``keep`` accepts from S3 (``error`` names the object at fault; default S3Error)."""
    return store(folder).local_copy(folder, what=what, keep=keep, error=error)


def replace_folder(target: Location, fill: Callable[[Path], None], *, what: str,
                   error: type[RightsizeError] = RightsizeError, keep_others: bool = False) -> Location:
    """``fill(tmp)`` writes the content into a local temporary folder, which then replaces ``target`` whole
    (``folders.replace_folder``, ``s3.replace_folder``); nothing is replaced when ``fill`` fails.
    ``keep_others``: entries of the earlier folder that ``fill`` did not write stay."""
    return store(target).replace_folder(target, fill, what=what, error=error, keep_others=keep_others)


def write_file(folder: Location, name: str, text: str | bytes, what: str) -> Location:
    """Write one file into ``folder`` (on disk atomically; on S3 committed with the folder's other files kept)."""
    return store(folder).write_file(folder, name, text, what)


def output_lock(folder: Location, *, wait_seconds: float, command: str = "", log: Callable[[str], None] | None = None,
                lease_seconds: float = 120.0, lock_file: Path | None = None) -> ContextManager[None]:
    """Hold the one-writer lock of ``folder`` for the block (``folders.output_lock``; on S3 a lease renewed while
    the run lives, ``s3/lock.py``); LockedError names the holder after ``wait_seconds``."""
    return store(folder).lock(folder, wait_seconds=wait_seconds, lease_seconds=lease_seconds, command=command,
                              log=log, lock_file=lock_file)


def make_folder(folder: Location) -> None:
    """Create ``folder`` where folders must exist before files go in (OSError when it cannot be)."""
    store(folder).make_folder(folder)


def write_problem(folder: Location) -> str:
    """'' when ``folder`` looks writable, else why not; S3 can only tell when written to."""
    return store(folder).write_problem(folder)


def lacks(folder: Location, marker: str) -> str:
    """'' when ``folder`` is rightsize's to replace (absent, empty, or holding ``marker``), else what is missing."""
    return store(folder).lacks(folder, marker)


def same(a: Location, b: Location) -> bool:
    """``a`` and ``b`` are the same place (local paths resolved)."""
    return type(store(a)) is type(store(b)) and store(a).same(a, b)
