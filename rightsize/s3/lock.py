"""The lock of an s3:// folder: a lease, since S3 has no kernel to release a dead run's lock.

A lock beside the prefix (``.NAME.lock/<run>`` objects): a run puts its own lock object, lists the others,
and holds the lock when no other live one is there (else it removes its own and waits, as ``[general]
lock_wait`` says). With S3's read-after-write consistency two runs cannot both see themselves alone. The
holder rewrites its object every quarter of ``[general] lock_lease`` (2m: every 30 s) while it lives; an
object not rewritten for a whole lease is a dead run's and is taken over, so a killed run blocks the next
one for at most the lease.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import socket
import sys
import threading
import time
from typing import Callable, Iterator

from ..errors import LockedError, RightsizeError
from ..escape import clean_text
from . import objects
from .objects import call, delete_keys, list_keys, run_id
from .path import S3Path


def lock_folder(folder: S3Path) -> S3Path:
    """Where the lock objects of ``folder`` live: a hidden sibling prefix, outside what a commit replaces."""
    return folder.parent / f".{folder.name or 'rightsize'}.lock"


def _holder(c, bucket: str, key: str) -> str:
    try:
        info = json.loads(c.get_object(Bucket=bucket, Key=key)["Body"].read() or b"{}")
    except Exception:  # noqa: BLE001 - the holder may have just finished; any answer is only for the message
        info = {}
    if not isinstance(info, dict) or not info:
        return "another rightsize process (no details recorded)"
    return clean_text(f"pid {info.get('pid', '?')} on {info.get('host', '?')} (`{info.get('command', 'rightsize')}`, "
            f"started {info.get('started_at', '?')})")


@contextlib.contextmanager
def lock(folder: S3Path, *, wait_seconds: float, lease_seconds: float, command: str = "",
         log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock of ``folder`` for the block (see the module docstring); LockedError names the holder.
    While the block runs, the lock object is rewritten every ``lease_seconds / 4``."""
    c, where, here = objects.client(), str(folder), lock_folder(folder)
    mine = here / run_id()
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command or " ".join(sys.argv[:2]),
                       "started_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                       "lease_seconds": lease_seconds}).encode()

    def put():
        call(where, "write its lock", lambda: c.put_object(Bucket=mine.bucket, Key=mine.key, Body=info))

    stop = threading.Event()
    try:
        _take(c, folder, here, mine, put, wait_seconds, lease_seconds, log)
        renew = threading.Thread(target=_renew, args=(put, stop, lease_seconds / 4), daemon=True, name="rightsize-lease")
        renew.start()
        yield
    finally:
        stop.set()
        with contextlib.suppress(RightsizeError):
            delete_keys(c, mine.bucket, [mine.key], where)


def _renew(put: Callable[[], None], stop: threading.Event, every: float) -> None:
    """Rewrite the lock object until ``stop``: its LastModified is the lease's start."""
    while not stop.wait(every):
        with contextlib.suppress(RightsizeError):
            put()


def _take(c, folder: S3Path, here: S3Path, mine: S3Path, put, wait_seconds: float, lease_seconds: float, log) -> None:
    """Put our lock object and wait until no other live one is there (stale ones removed)."""
    where = str(folder)
    deadline, told = time.monotonic() + max(wait_seconds, 0.0), False
    while True:
        put()
        now = dt.datetime.now(dt.timezone.utc)
        others = [o for o in list_keys(c, mine.bucket, here.prefix, where) if o["Key"] != mine.key]
        stale = [o["Key"] for o in others if (now - o["LastModified"]).total_seconds() > lease_seconds]
        live = [o for o in others if o["Key"] not in stale]
        delete_keys(c, mine.bucket, stale, where)
        if not live:
            return
        delete_keys(c, mine.bucket, [mine.key], where)
        holder = _holder(c, mine.bucket, min(live, key=lambda o: o["LastModified"])["Key"])
        if time.monotonic() >= deadline:
            raise LockedError.gave_up(folder, holder, wait_seconds, f"lock objects under {here}/")
        if not told and log:
            log(f"{folder} is being written by {holder}; waiting up to {wait_seconds:g} s")
            told = True
        time.sleep(min(0.5 + random.random(), max(deadline - time.monotonic(), 0.05)))  # random: two runs do not retry in step
