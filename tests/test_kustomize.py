"""The one kustomize runner (rightsize.kustomize) and its one config key, with the old key as an alias."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from binaries import needs_kubectl
from rightsize.config import Config, ConfigDeprecationWarning, load_config
from rightsize.errors import ConfigError
from rightsize.kustomize import KustomizeError, render

ROOT = Path(__file__).resolve().parents[1]


def _config(**patches) -> Config:
    return dataclasses.replace(Config(), patches=dataclasses.replace(Config().patches, **patches))


@needs_kubectl
def test_render_is_kustomize_output_and_its_error_is_one_line(tmp_path):
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\nnamePrefix: prod-\n")
    assert "name: prod-settings" in render(tmp_path, Config())
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(KustomizeError) as err:
        render(tmp_path, Config(), label="the overlay")
    assert str(err.value).startswith("the overlay: `kubectl kustomize` failed: ") and "missing.yaml" in str(err.value)
    assert "\n" not in str(err.value) and "E1" not in str(err.value)  # kubectl's log prefix unwrapped


def test_render_stops_at_the_configured_timeout(tmp_path):
    """A command that never finishes (a real `sleep` standing in for a hung kustomize: kubectl cannot be
    made slow on purpose) is killed at [patches] kustomize_timeout."""
    slow = _config(kustomize_command=f"{sys.executable} -c 'import time; time.sleep(30)'", kustomize_timeout=0.5)
    with pytest.raises(KustomizeError, match=rf"^{tmp_path}: `.*` did not finish within 0.5 s \(\[patches\] kustomize_timeout\)$"):
        render(tmp_path, slow)


def test_a_missing_command_is_a_config_error():
    with pytest.raises(ConfigError, match=r"`no-such-kustomize` is not installed; install kubectl or set \[patches\] kustomize_command"):
        render(ROOT, _config(kustomize_command="no-such-kustomize build"))


def test_the_old_key_is_read_as_the_new_one_with_a_warning(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[kubernetes]\nkustomize_command = "kustomize build"\n')
    with pytest.warns(ConfigDeprecationWarning, match=r"kubernetes.kustomize_command is deprecated, use patches.kustomize_command"):
        config = load_config(path)
    assert config.patches.kustomize_command == "kustomize build"
    path.write_text('[kubernetes]\nkustomize_command = "kustomize build"\n[patches]\nkustomize_command = "kubectl kustomize"\n')
    with pytest.raises(ConfigError, match=r"kubernetes.kustomize_command is a deprecated name of patches.kustomize_command "
                                          r"and the two differ"):
        load_config(path)


def test_the_cli_prints_the_deprecation_as_one_warning_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[kubernetes]\nkustomize_command = "kustomize build"\n')
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", "config", "--check", "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"rightsize: warning: {path}: kubernetes.kustomize_command is deprecated, use "
                                        "patches.kustomize_command (read as that for now)"]
