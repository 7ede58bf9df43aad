"""The one kustomize runner: renders a kustomization folder for the manifests source (collect), the
overlay mode (patch --overlay, before and after) and the checks of generated patches.

Command and time limit come from ``[patches] kustomize_command`` and ``[patches] kustomize_timeout``
(``[kubernetes] kustomize_command`` is their deprecated alias, see config.DEPRECATED_KEYS).
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from .errors import ConfigError, RightsizeError


KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")  # the names kustomize looks for


class KustomizeError(RightsizeError):
    """kustomize could not render a folder; the message carries kustomize's own error on one line."""


def error_text(stderr: str) -> str:
    """kustomize's error as one line: kubectl's ``err="..."`` wrapper unwrapped, lines joined with ' / '."""
    text = stderr.strip()
    # kubectl wraps the error as: E1122 ... run.go:72] "command failed" err="<kustomize's message>"
    m = re.search(r'err="(.*)"\s*$', text, flags=re.S)
    if m:
        text = m.group(1).replace('\\"', '"').replace("\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " / ".join(lines) or "no error output"


def render(folder: str | Path, config, *, label: str | None = None) -> str:
    """The rendered YAML of ``folder`` (kustomize's stdout).

    ConfigError when the command is not installed; KustomizeError, naming ``label`` (default: the
    folder) and the command, when it fails or runs longer than the timeout.
    """
    command = config.patches.kustomize_command
    timeout = config.patches.kustomize_timeout
    argv = shlex.split(command) + [str(folder)]
    label = label or str(folder)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)
    except FileNotFoundError:
        raise ConfigError(f"{label}: `{argv[0]}` is not installed; install kubectl or set [patches] kustomize_command "
                          "(e.g. \"kustomize build\")") from None
    except subprocess.TimeoutExpired:
        raise KustomizeError(f"{label}: `{command}` did not finish within {timeout:g} s "
                             "([patches] kustomize_timeout)") from None
    if done.returncode != 0:
        raise KustomizeError(f"{label}: `{command}` failed: {error_text(done.stderr)}")
    return done.stdout
