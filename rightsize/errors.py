"""Errors that end a run with a clear one-line message and a documented exit code."""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_THRESHOLD = 3
EXIT_PARTIAL = 4


class RightsizeError(Exception):
    """A failure the user can act on. ``str(err)`` is the whole message; no traceback is shown."""

    exit_code = EXIT_ERROR


class ConfigError(RightsizeError):
    """The config file or a command-line option is wrong (exit 2)."""

    exit_code = EXIT_USAGE


class SnapshotError(RightsizeError):
    """A snapshot folder is missing, unreadable or breaks the table contract."""


class SourceError(RightsizeError):
    """A data source (Prometheus, Kubernetes, AWS, manifests) failed."""


class LockedError(RightsizeError):
    """Another rightsize process holds the output folder's lock."""

    @classmethod
    def gave_up(cls, folder, holder: str, wait_seconds: float, where: str) -> "LockedError":
        """The error once ``wait_seconds`` have passed: who holds ``folder`` and where its lock is."""
        waited = f" after waiting {wait_seconds:g} s" if wait_seconds > 0 else ""
        return cls(f"{folder}: another rightsize run is writing here: {holder}; gave up{waited} "
                   f"(let it finish, or raise [general] lock_wait; {where})")
