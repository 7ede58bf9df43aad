"""Hand-made recommendation rows and helpers for the patch and overlay tests."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from rightsize.config import Config
from rightsize.kustomize import render
from rightsize.quantity import parse_cpu, parse_memory
from rightsize.schema import RECOMMENDATION_COLUMNS
from rightsize.snapshot import Snapshot, new_meta

NAN = np.nan
FIXTURES = Path(__file__).parent / "fixtures" / "kustomize"
WINDOW = ("2026-11-01T00:00:00+00:00", "2026-11-15T00:00:00+00:00")


def rec(namespace: str, kind: str, workload: str, container: str, *, cluster: str = "c1", status: str = "change",
        container_type: str = "main", cpu=("500m", "250m"), memory=("1Gi", "512Mi"), memory_limit=(None, None),
        cpu_limit=(None, None), cpu_limit_action: str = "keep_unset", savings: float = 12.5, flags: str = "",
        reason: str = "") -> dict:
    """One RECOMMENDATION_COLUMNS row; quantities in Kubernetes notation, None = unset / no value."""
    def c(v):
        return NAN if v is None else parse_cpu(v)

    def m(v):
        return NAN if v is None else parse_memory(v)

    row = {col.name: (NAN if col.dtype == "float" else "") for col in RECOMMENDATION_COLUMNS}
    row.update({
        "cluster": cluster, "namespace": namespace, "kind": kind, "workload": workload, "container": container,
        "container_type": container_type, "team": "shop", "policy": "production", "status": status,
        "reason": reason, "confidence": "high" if status == "change" else "", "flags": flags, "replicas": 2.0,
        "cpu_request_cores_current": c(cpu[0]), "cpu_request_cores_recommended": c(cpu[1]),
        "memory_request_bytes_current": m(memory[0]), "memory_request_bytes_recommended": m(memory[1]),
        "memory_limit_bytes_current": m(memory_limit[0]), "memory_limit_bytes_recommended": m(memory_limit[1]),
        "cpu_limit_cores_current": c(cpu_limit[0]), "cpu_limit_cores_recommended": c(cpu_limit[1]),
        "cpu_limit_action": cpu_limit_action,
        "cpu_basis": "p95", "cpu_basis_cores": c(cpu[1]) / 1.15 if cpu[1] else NAN,
        "memory_basis": "max", "memory_basis_bytes": m(memory[1]) / 1.15 if memory[1] else NAN,
        "memory_max_bytes": m(memory[1]) / 1.15 if memory[1] else NAN,
        "hours_covered": 336.0, "samples": 20160.0, "pods_seen": 4.0, "restarts": 0.0, "oom_kills": 0.0,
        "savings_usd_per_month": savings,
    })
    return row


def recs(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=[c.name for c in RECOMMENDATION_COLUMNS])


def snapshot(workloads: pd.DataFrame | None = None) -> Snapshot:
    s = Snapshot(meta=new_meta(window_start=WINDOW[0], window_end=WINDOW[1]))
    if workloads is not None:
        s.tables["workloads"] = workloads
    return s


def config(**patches) -> Config:
    import dataclasses

    c = Config()
    return dataclasses.replace(c, patches=dataclasses.replace(c.patches, **patches))


def copy_fixtures(dest: Path) -> Path:
    shutil.copytree(FIXTURES, dest / "kustomize")
    return dest / "kustomize"


def kustomize(folder: Path) -> list[dict]:
    """Render with rightsize's kustomize runner (real `kubectl kustomize`) and parse every document."""
    out = render(folder, Config())
    return [d for d in YAML(typ="safe", pure=True).load_all(out) if isinstance(d, dict)]


def by_id(docs: list[dict]) -> dict[tuple, dict]:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def pod_spec(doc: dict) -> dict:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def container(doc: dict, name: str, init: bool = False) -> dict:
    return next(c for c in pod_spec(doc).get("initContainers" if init else "containers", []) if c["name"] == name)


def without_resources(doc: dict, containers: set[tuple[bool, str]]) -> dict:
    import copy

    out = copy.deepcopy(doc)
    for init, name in containers:
        container(out, name, init).pop("resources", None)
    return out


@contextlib.contextmanager
def read_only(*paths: Path):
    """Make ``paths`` unwritable for real: chmod for a normal user; root ignores modes, so for root the
    immutable attribute (chattr +i) is used, and the test is skipped where the filesystem lacks it."""
    if os.geteuid() != 0:
        modes = [p.stat().st_mode for p in paths]
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, m in zip(paths, modes):
                p.chmod(m)
        return
    chattr = shutil.which("chattr")
    done = []
    try:
        for p in paths:
            if not chattr or subprocess.run([chattr, "+i", str(p)], capture_output=True).returncode != 0:
                pytest.skip("running as root and chattr +i is not available here")
            done.append(p)
        yield
    finally:
        for p in done:
            subprocess.run([chattr, "-i", str(p)], capture_output=True)
