"""Workload inventory from manifests, no cluster needed.

PATH may be a YAML file (one or many documents, e.g. `kubectl kustomize DIR` or `helm template` output),
a folder of YAML/JSON files (read recursively, in name order), or a folder holding a kustomization.yaml,
which is rendered with [patches] kustomize_command first (rightsize.kustomize). YAML is read with
ruamel.yaml's safe loader.

Each workload records the file it came from (source_file) so patches can point at it; for rendered
kustomize output that is the origin file when kustomize adds the config.kubernetes.io/origin annotation
(buildMetadata: [originAnnotations]), else the rendered folder.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..config import Config
from ..errors import SourceError
from ..kustomize import KUSTOMIZATION_FILES, render
from .k8s_objects import READ_KINDS, Options, build_tables

YAML_SUFFIXES = (".yaml", ".yml", ".json")
CLUSTER_SCOPED = ("Namespace", "Node")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"


def load_manifests(path, config: Config, cluster: str, *, warnings: list | None = None) -> dict[str, pd.DataFrame]:
    """Tables workloads, containers, services, namespaces and runtimes built from the manifests at ``path``.

    Caveats (e.g. kinds skipped) are appended to ``warnings`` as {code, message, affects} dicts, the
    shape snapshot.warn records. Raises SourceError naming the file and document at fault."""
    notes: list[dict] = warnings if warnings is not None else []
    objects = read_objects(Path(path), config)

    skipped = Counter(o["kind"] for o in objects if o["kind"] not in READ_KINDS)
    if skipped:
        listed = ", ".join(f"{k} ({n})" for k, n in sorted(skipped.items()))
        notes.append({"code": "manifests_kinds_skipped",
                      "message": f"{sum(skipped.values())} object(s) of kinds rightsize does not read were skipped: {listed}",
                      "affects": "nothing the analysis uses, unless one of them is a custom workload controller"})

    def warn(code: str, message: str, affects: str = "") -> None:
        notes.append({"code": code, "message": message, "affects": affects})

    opts = Options(cluster=cluster, source="manifests", config=config,
                   namespaces=tuple(config.prometheus.namespaces),
                   exclude_namespaces=tuple(config.prometheus.exclude_namespaces))
    tables = build_tables([o for o in objects if o["kind"] in READ_KINDS], opts, warn)
    return {name: tables[name] for name in ("workloads", "containers", "services", "namespaces", "runtimes")}


def read_objects(path: Path, config: Config) -> list[dict]:
    """Every Kubernetes object under ``path`` as a dict with ``_source_file`` set and, for namespaced
    kinds, metadata.namespace defaulted to [kubernetes] default_namespace."""
    if not path.exists():
        raise SourceError(f"{path}: manifests not found")
    if path.is_dir() and any((path / f).is_file() for f in KUSTOMIZATION_FILES):
        text = render(path, config, label=f"{path} (holds a kustomization)")
        objects = parse_documents(text, f"{path} (rendered by {config.patches.kustomize_command})")
        for o in objects:
            o["_source_file"] = _origin(o, path) or str(path)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES
                       and p.name not in KUSTOMIZATION_FILES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        objects = []
        for f in files:
            objects.extend(parse_documents(_read(f), str(f)))
    else:
        objects = parse_documents(_read(path), str(path))
    default_ns = config.kubernetes.default_namespace
    for o in objects:
        if o["kind"] not in CLUSTER_SCOPED:
            o["metadata"].setdefault("namespace", default_ns)
            if not o["metadata"]["namespace"]:
                o["metadata"]["namespace"] = default_ns
    return objects


def parse_documents(text: str, source: str) -> list[dict]:
    """Kubernetes objects of a (multi-document) YAML text; `kind: List` documents are expanded.

    Empty documents are skipped (helm template emits some); anything else that is not a mapping with
    apiVersion, kind and metadata.name raises SourceError naming ``source`` and the 1-based document."""
    yaml = YAML(typ="safe", pure=True)
    objects: list[dict] = []
    index = 0
    try:
        for index, doc in enumerate(yaml.load_all(text), start=1):
            if doc is None:
                continue
            for o in _expand(doc, source, index):
                o.setdefault("_source_file", source)
                objects.append(o)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SourceError(f"{source}: document {index + 1}{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise SourceError(f"{source}: document {index + 1}: nested too deeply to be a Kubernetes manifest") from None
    return objects


def _expand(doc, source: str, index: int) -> list[dict]:
    where = f"{source}: document {index}"
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str) or not isinstance(doc.get("apiVersion"), str):
        hint = " (render Helm charts with `helm template` first)" if isinstance(doc, dict) else ""
        raise SourceError(f"{where}: not a Kubernetes object (a mapping with apiVersion and kind is expected){hint}")
    if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
        out = []
        for i, item in enumerate(doc["items"]):
            out.extend(_check(item, f"{where}, item {i + 1}"))
        return out
    return _check(doc, where)


def _check(doc, where: str) -> list[dict]:
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        raise SourceError(f"{where}: not a Kubernetes object (no kind)")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise SourceError(f"{where}: {doc['kind']} without metadata.name")
    return [doc]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read manifest: {getattr(exc, 'strerror', None) or exc}") from None


def _origin(obj: dict, root: Path) -> str:
    """The file kustomize's origin annotation names ('path: base/deploy.yaml'), relative to ``root``."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(ORIGIN_ANNOTATION)
    if not isinstance(value, str):
        return ""
    for line in value.splitlines():
        if line.strip().startswith("path:"):
            return os.path.normpath(root / line.split(":", 1)[1].strip())
    return ""
