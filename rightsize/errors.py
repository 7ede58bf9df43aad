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
