"""Real binaries the tests run (prometheus, victoria-metrics, kubectl): found on PATH, else the test is
skipped with the reason, except under CI (environment variable CI set, as scripts/test runs there),
where a missing binary fails the test: CI installs them, so a skip would hide a broken setup."""
from __future__ import annotations

import os
import shutil

import pytest


def need_binary(name: str, install: str) -> str:
    """The path of ``name``; skip locally, fail under CI, saying how to ``install`` it."""
    path = shutil.which(name)
    if path:
        return path
    msg = f"{name} binary not found on PATH ({install})"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


# For tests that run real `kubectl kustomize` (the conftest fixture `kubectl`).
needs_kubectl = pytest.mark.usefixtures("kubectl")
