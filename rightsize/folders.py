"""Write a whole output folder or nothing: fill a temporary folder beside the target, then swap it in."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import RightsizeError


def replace_folder(target: Path, fill: Callable[[Path], None], *, what: str,
                   error: type[RightsizeError] = RightsizeError) -> Path:
    """Call ``fill(tmp)`` to write the content, then move it over ``target`` (the old one is kept on failure).

    Any OSError becomes ``error`` with one line: "<target>: cannot write <what>: <reason> (nothing was written)".
    """
    target = Path(target)

    def fail(exc: OSError):
        return error(f"{target}: cannot write {what}: {exc.strerror or exc} (nothing was written)")

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise fail(exc) from None
    old = target.with_name(f".{target.name}.old")
    try:
        fill(tmp)
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            try:
                tmp.rename(target)
            except OSError:
                old.rename(target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except OSError as exc:
        raise fail(exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
