"""Kustomize patches for review: one strategic-merge patch per workload, touching only ``resources`` and the
runtime variables that move with them (patch_body.py: a JVM's JAVA_TOOL_OPTIONS, GOMEMLIMIT, ...).

``write_patches`` writes, below ``out_dir``, one folder per ``[patches] layout`` (``{cluster}/{namespace}``)
holding one patch file per workload, a kustomization.yaml listing them under ``patches:`` with explicit
targets, and ``PATCHES.md`` (a pull-request body: what was patched, what was skipped and why).

Patches never remove a field. The one exception is a CPU limit the policy says to remove
(``cpu_limit_action == "remove"``): that is an explicit JSON6902 ``remove`` op in its own file, guarded by
a ``test`` op on the container's name, and written only when the container's position is known (from
the workload's manifest here, from the rendered overlay in overlay mode).

The patch model (patch_model.py: selection, the workload patch), its body (patch_body.py), its text
(patch_text.py: evidence comments, YAML) and the HPA patch (hpa_patch.py) are shared with overlay mode.
Everything is written into a temporary folder beside ``out_dir`` and moved into place, so a failure
never leaves half a patch set.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import pandas as pd

from ..atomic import inside
from ..escape import clean_text
from ..errors import ConfigError
from ..forked import beside
from ..folders import k8s_name_problem, layout_problem, safe_component
from ..names import valid
from ..refs import WorkloadRef
from ..schema import WORKLOAD_KEY
from ..storage import lacks, location, replace_folder, write_problem
from ..memory import bulk
from .bulk import records
from .hpa_patch import hpa_doc, hpa_patch, hpa_target
from .patch_body import build_patch
from .patch_model import (JSON6902_KINDS, SKIP_COLUMNS, PatchError, PodSpecView, WorkloadPatch, add_skips, group_rows,
                          has_edits, select, skip_row, target, view_from_containers, view_from_doc)
from .patch_text import Doc, json6902_doc, load_all, patches_markdown, rendered, smp_doc, window_text
from .rollout_patch import rollout_file, rollout_patch
from .rollout_patch import target as rollout_target


@dataclass
class PatchResult:
    """What ``write_patches`` wrote.

    ``written``: every file (patches, kustomizations, PATCHES.md), final paths.
    ``kustomizations``: the kustomization.yaml files. ``patched``: the recommendation rows written into
    a patch. ``skipped``: rows not patched, with ``reason`` saying why (SKIP_COLUMNS).
    ``notes``: caveats also listed in PATCHES.md (e.g. a CPU limit removal left to a person).
    """

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    kustomizations: list[Path] = field(default_factory=list)
    patched: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIP_COLUMNS))
    notes: list[str] = field(default_factory=list)
    markdown: Path | None = None
    warnings: list[str] = field(default_factory=list)  # kustomizations without resources; workloads refused (names not Kubernetes names)



def _layout_folder(layout: str, cluster: str, namespace: str) -> str:
    """The patch folder of a workload; the cluster name (not bound by Kubernetes' naming rules) is encoded
    when it is not plain, the namespace was checked to be a Kubernetes name."""
    problem = layout_problem(layout)
    if problem:
        raise ConfigError(f"patches.layout: {problem}")
    folder = layout.format(cluster=safe_component(cluster), namespace=safe_component(namespace)) if layout else "."
    return posixpath.normpath(folder)


T = TypeVar("T")
SPEC_SOURCES = ("api", "manifests", "demo")  # workloads whose container rows follow the pod spec's order


class _SpecIndex:
    """The snapshot's workloads and containers tables indexed by workload key, built once per run."""

    def __init__(self, snapshot):
        tables = getattr(snapshot, "tables", {}) or {}
        wl = tables.get("workloads")
        self.workloads: dict[tuple, list[dict]] = {}
        if wl is not None and not wl.empty:
            cols = [c for c in ("source", "source_file", "hpa_name", "hpa_cpu_target_path", "hpa_memory_target_path")
                    if c in wl.columns]
            for r in records(wl[list(WORKLOAD_KEY) + cols]):
                self.workloads.setdefault(tuple(r[k] for k in WORKLOAD_KEY), []).append(r)
        ct = tables.get("containers")
        self.containers: dict[tuple, list[dict]] = {}
        if ct is not None and not ct.empty:
            view_cols = [c for c in ("container", "container_type", "init_order", "cpu_limit_cores") if c in ct.columns]
            for r in records(ct[list(WORKLOAD_KEY) + view_cols]):  # what view_from_containers reads
                self.containers.setdefault(tuple(r[k] for k in WORKLOAD_KEY), []).append(r)
        self.cache: dict = {}


def _workload_doc(index: _SpecIndex, config, key: tuple) -> tuple[dict | None, str]:
    """The workload's object in its manifest (workloads.source_file), and where; (None, why) when unknown."""
    rows = index.workloads.get(key, [])
    files = [str(r.get("source_file") or "") for r in rows if str(r.get("source_file") or "")]
    return _manifest_doc(files[0], key, config, index.cache) if files else (None, "no manifest")


def _workload_view(index: _SpecIndex, config, key: tuple) -> PodSpecView | None:
    """Container order of one workload: its manifest (workloads.source_file) if readable, else the
    snapshot's containers rows when they came from the spec, else None (unknown)."""
    rows = index.workloads.get(key, [])
    doc, where = _workload_doc(index, config, key)
    if doc is not None:
        return view_from_doc(doc, key[2], where)
    sources = {str(r.get("source") or "") for r in rows}
    if rows and sources <= set(SPEC_SOURCES) and key in index.containers:
        return view_from_containers(index.containers[key], "the snapshot's container list")
    return None


def _add_hpa_patch(p: WorkloadPatch, spec: dict | None, folder: str, files: dict, owners: dict, here: list,
                   entries: list) -> list[str]:
    """Write the HPA patch of a workload patch beside it (into ``files``, ``here``, ``entries``); its notes."""
    hpa, notes = hpa_patch(p, spec)
    if hpa is None:
        return notes
    rel = posixpath.normpath(posixpath.join(folder, f"{hpa.stem}.yaml"))
    if rel in owners:
        raise PatchError(f"patches: {p.cluster}/{p.ref} and {owners[rel]} both map to {rel}")
    owners[rel] = f"{p.cluster}/{p.ref}"
    files[rel] = hpa_doc(hpa, p)
    here.append(f"{hpa.stem}.yaml")
    entries.append((f"{hpa.stem}.yaml", hpa_target(hpa)))
    return notes


def _hpa_spec(index: _SpecIndex, key: tuple) -> dict | None:
    """The snapshot's HPA facts of one workload (name, target paths), None when unknown."""
    rows = index.workloads.get(key, [])
    return rows[0] if rows else None


def _manifest_doc(source_file: str, key: tuple, config, cache: dict) -> tuple[dict | None, str]:
    """The workload's object in its manifest file; (None, why) when it cannot be found exactly once."""
    _, namespace, kind, workload = key
    source = Path(source_file)
    candidates = [source]
    manifests = getattr(config.kubernetes, "manifests", "")
    if manifests and not source.is_absolute():
        root = Path(manifests)
        candidates.append((root if root.is_dir() else root.parent) / source)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None, f"manifest {source} not found"
    if path not in cache:
        try:
            cache[path] = load_all(path.read_text(encoding="utf-8"), str(path))
        except (OSError, PatchError):
            cache[path] = []
    docs = [d for d in cache[path] if d.get("kind") == kind
            and (d.get("metadata") or {}).get("name") == workload
            and (d.get("metadata") or {}).get("namespace") in (None, "", namespace)]
    if len(docs) != 1:
        return None, f"manifest {path} has {len(docs)} objects named {kind}/{workload}"
    return docs[0], f"manifest {path}"


def _kustomization(entries: list[tuple[str, dict]], resources: list[str], meta: dict) -> Doc:
    data: dict = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    if resources:
        data["resources"] = resources
    data["patches"] = [{"path": p, "target": t} for p, t in entries]
    comments = [
        "Generated by rightsize: resource patches for review (window " + window_text(meta) + ").",
        "Each patch changes only `resources` of the containers it names and the runtime variable whose memory "
        "setting moves with them (an hpa-*.yaml only its HPA's target "
        "utilization); see PATCHES.md for the evidence.",
    ]
    if not resources:
        comments.append("Add the base these workloads come from under `resources:` (or copy the patches into your overlay).")
    return Doc(data, comments)


def _check_writable(out_dir) -> None:
    """The patch folder is replaced whole: refuse one that cannot be written."""
    problem = write_problem(out_dir)
    if problem:
        raise PatchError(f"{out_dir}: {problem}; cannot write patches (nothing was written)")


def _check_ours(out_dir) -> None:
    """Refuse to replace a folder that holds something else than earlier patches (no PATCHES.md)."""
    missing = lacks(out_dir, "PATCHES.md")
    if missing:
        raise PatchError(f"{out_dir}: not empty and not a rightsize patch folder ({missing}); "
                         "refusing to replace it, pick another --out")


@bulk()  # tens of thousands of rows, YAML nodes and texts: the collector never walks them (memory.bulk)
def write_patches(recommendations: pd.DataFrame, snapshot, config, out_dir: Path) -> PatchResult:
    """Write the patch folders, their kustomization.yaml and PATCHES.md into ``out_dir`` (replaced whole;
    an existing non-empty folder must be an earlier rightsize patch folder, i.e. hold PATCHES.md).

    Layout: ``out_dir/<patches.layout>/<kind>-<workload>.yaml`` (strategic merge), plus
    ``<kind>-<workload>.cpu-limit.yaml`` (JSON6902) when a CPU limit is removed, and
    ``out_dir/PATCHES.md``. Raises PatchError when ``out_dir`` is read-only or two workloads would
    share a patch file; nothing is written then.
    """
    out_dir = location(out_dir)
    meta = getattr(snapshot, "meta", {}) or {}
    to_patch, skipped = select(recommendations, config, json6902=True)
    groups, index = list(group_rows(to_patch).items()), _SpecIndex(snapshot)
    built: list[tuple[_Built, pd.DataFrame]] = []

    def fill(tmp: Path) -> None:
        # each process writes the files it builds into the staging folder (the swap comes after both finished)
        ps, (resize, landing) = _built_in_two(groups, config, meta, index, lambda: _landing(recommendations, snapshot, config),
                                              tmp)
        _check_ours(out_dir)  # after the clashes between workloads, which are said first
        more = add_skips(skipped, ps.extra_skips)
        extra = {**resize, "PATCHES.md": patches_markdown(ps.patched, more, ps.notes, meta, recommendations=recommendations,
                                                          injectors=config.injectors, sections=landing)}
        _write_files(tmp, extra)
        ps.files += list(extra)
        built.append((ps, more))

    _check_writable(out_dir)
    replace_folder(out_dir, fill, what="patches", error=PatchError)
    ps, skipped = built[0]
    written = [out_dir / rel for rel in sorted(ps.files)]
    return PatchResult(
        out_dir=out_dir,
        written=written,
        kustomizations=[p for p in written if p.name == "kustomization.yaml"],
        patched=pd.DataFrame([r for p, _ in ps.patched for r in p.rows], columns=to_patch.columns),
        skipped=skipped.reset_index(drop=True),
        notes=ps.notes,
        markdown=out_dir / "PATCHES.md",
        warnings=ps.warnings + ([_no_resources_warning(out_dir, ps.empty)] if ps.empty else []),
    )


@dataclass
class _Built:
    """What one process built of a patch set (_build): file texts, and what PATCHES.md and the result list."""

    files: list[str]  # written, relative posix paths
    patched: list[tuple[WorkloadPatch, list[str]]]
    notes: list[str]
    warnings: list[str]
    extra_skips: list[dict]
    empty: list[str]  # kustomization.yaml files listing no resources


def _build(groups: list[tuple[tuple, list[dict]]], config, meta: dict, index: "_SpecIndex", into: Path) -> _Built:
    """The patch files of ``groups`` ((workload key, rows) each) and their folders' kustomizations, written into
    the folder ``into``."""
    ps = _PatchSet(config, meta, index)
    for key, rows in groups:
        ps.add(key, rows)
    empty = _add_kustomizations(ps.files, ps.folders, ps.folder_keys, config, meta)
    _write_files(into, rendered(ps.files))
    return _Built(list(ps.files), ps.patched, ps.notes, ps.warnings, ps.extra_skips, empty)


def _landing(recommendations: pd.DataFrame, snapshot, config) -> tuple[dict[str, str], list[str]]:
    """The urgent in-place resize files (resize.py) and PATCHES.md's lines on how the changes land."""
    from .resize import landing_lines, urgent_files

    resize = urgent_files(recommendations, snapshot, config)
    return resize, landing_lines(recommendations, snapshot, config, bool(resize))


def _built_in_two(groups: list[tuple[tuple, list[dict]]], config, meta: dict, index: "_SpecIndex",
                  also: Callable[[], T], into: Path) -> tuple[_Built, T]:
    """_build of every group into ``into`` and ``also()``: the second half of the groups and ``also`` by a forked
    child (forked.py) while this process builds the first. The halves meet between two folders, so a folder's
    kustomization and its name clashes stay in one process, and the halves joined are what one process builds,
    in its order (a clash in the first half is raised first)."""
    cut = _folder_cut(groups, config.patches.layout)
    if not cut:
        return _build(groups, config, meta, index, into), also()
    rows = [row for _, group in groups[cut:] for row in group]  # the child's patches carry the parent's own rows
    with beside(lambda: (_build(groups[cut:], config, meta, index, into), also()), "patches", shared=rows) as child:
        first = _build(groups[:cut], config, meta, index, into)
        second, more = child.result()
    return _Built(first.files + second.files, first.patched + second.patched, first.notes + second.notes,
                  first.warnings + second.warnings, first.extra_skips + second.extra_skips, first.empty + second.empty), more


def _folder_cut(groups: list[tuple[tuple, list[dict]]], layout: str) -> int:
    """The index nearest the middle of ``groups`` with no patch folder on both sides of it; 0 when there is none."""
    folder_of: dict[tuple, str] = {}
    folders = [folder_of.get(key[:2]) or folder_of.setdefault(key[:2], _layout_folder(layout, key[0], key[1]))
               for key, _ in groups]
    last = {folder: i for i, folder in enumerate(folders)}
    reach, cuts = -1, []
    for i, folder in enumerate(folders[:-1]):
        reach = max(reach, last[folder])
        if reach == i:  # every folder seen so far ends here
            cuts.append(i + 1)
    return min(cuts, key=lambda k: abs(2 * k - len(groups)), default=0)


@dataclass
class _PatchSet:
    """The files of one patch folder as they are built, workload by workload."""

    config: Any
    meta: dict
    index: "_SpecIndex"
    files: dict[str, str | Doc] = field(default_factory=dict)  # relative posix path -> text, or YAML still to write
    folders: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)
    folder_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    patched: list[tuple[WorkloadPatch, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra_skips: list[dict] = field(default_factory=list)

    def add(self, key: tuple, rows: list[dict]) -> None:
        """The patch files of one workload (and its HPA), or why it gets none."""
        cluster, namespace, kind, workload = key
        bad = k8s_name_problem(namespace=namespace, workload=workload)
        if bad:  # e.g. a '../' in a kube-state-metrics label: no file name may be built from it
            self.extra_skips += [skip_row(r, f"{bad}; no patch written") for r in rows]
            self.warnings.append(f"{WorkloadRef(namespace, kind, workload, cluster=cluster)}: {bad}; no patch written")
            return
        rows = self._named_containers(key, rows)
        if not rows:
            return
        view = _workload_view(self.index, self.config, key)
        if kind in JSON6902_KINDS:  # a custom resource: JSON6902 operations by position, never a strategic merge
            p, ops = rollout_patch(cluster, namespace, workload, rows, view, _workload_doc(self.index, self.config, key)[0])
            self._place(key, p, [(f"{p.stem}.yaml", rollout_file(p, ops, self.meta), rollout_target(workload, namespace))]
                        if ops else [])
            return
        p = build_patch(cluster, namespace, kind, workload, rows, view, injectors=self.config.injectors)
        t = target(kind, workload, namespace)
        written = []
        # The JSON6902 removal follows the strategic merge, whose full container list fixes the indexes.
        if has_edits(p.body):
            written.append((f"{p.stem}.yaml", smp_doc(p, self.meta), t))
        if p.remove_ops:
            written.append((f"{p.stem}.cpu-limit.yaml", json6902_doc(p), t))
        self._place(key, p, written)

    def _named_containers(self, key: tuple, rows: list[dict]) -> list[dict]:
        """The rows whose container is a Kubernetes name; the others skipped with a warning (a YAML emitter
        folds some characters, NEL among them, so such a name could not even be written back as it is)."""
        ok = []
        for r in rows:
            if valid("container", r["container"]):
                ok.append(r)
                continue
            bad = f"container {clean_text(r['container'])!r} is not a valid Kubernetes name"
            self.extra_skips.append(skip_row(r, f"{bad}; no patch written"))
            self.warnings.append(f"{WorkloadRef(key[1], key[2], key[3], cluster=key[0])}: {bad}; no patch written")
        return ok

    def _place(self, key: tuple, p: WorkloadPatch, written: list[tuple[str, str | Doc, dict]]) -> None:
        """File one workload's patch texts ((name, text, kustomize target) each) in its folder, with its HPA patch."""
        cluster, namespace = key[0], key[1]
        self.extra_skips += p.missing
        self.notes += p.notes
        folder = _layout_folder(self.config.patches.layout, cluster, namespace)
        _claim(self.owners, folder, [f"{p.stem}.yaml", f"{p.stem}.cpu-limit.yaml"], f"{cluster}/{p.ref}", self.config.patches.layout)
        entries = self.folders.setdefault(folder, [])
        self.folder_keys.setdefault(folder, (cluster, namespace))
        for name, text, t in written:
            self.files[posixpath.join(folder, name)] = text
            entries.append((name, t))
        here = [name for name, _, _ in written]
        if here:
            self.notes += _add_hpa_patch(p, _hpa_spec(self.index, key), folder, self.files, self.owners, here, entries)
            self.patched.append((p, [posixpath.join(folder, n) for n in here]))
        else:
            self.extra_skips += [skip_row(r, "nothing left to write") for r in p.rows]


def _claim(owners: dict[str, str], folder: str, names: list[str], who: str, layout: str) -> None:
    """Record ``who`` writes ``names`` in ``folder``; PatchError when another workload maps there too."""
    for name in names:
        rel = posixpath.normpath(posixpath.join(folder, name))
        if rel in owners:
            raise PatchError(f"patches: {who} and {owners[rel]} both map to {rel} "
                             f"(patches.layout {layout!r}); the workload name matches two objects")
        owners[rel] = who


def _add_kustomizations(files: dict[str, str | Doc], folders: dict, folder_keys: dict, config, meta: dict) -> list[str]:
    """A kustomization.yaml in every folder with patches; the ones that list no resources."""
    empty: list[str] = []
    for folder, entries in folders.items():
        if not entries:
            continue
        cluster, namespace = folder_keys[folder]
        resources = [r.format(cluster=cluster, namespace=namespace) for r in config.patches.resources]
        files[posixpath.join(folder, "kustomization.yaml")] = _kustomization(entries, resources, meta)
        if not resources:
            empty.append(posixpath.join(folder, "kustomization.yaml"))
    return empty


def _no_resources_warning(out_dir: Path, empty: list[str]) -> str:
    example = out_dir / empty[0]
    return (f"{len(empty)} kustomization(s) list no resources (e.g. {example}): `kubectl kustomize` renders nothing "
            "from them until the base the workloads come from is listed; set [patches] resources "
            "(e.g. \"../../base/{namespace}\") or use --overlay")


def _write_files(tmp: Path, files: dict[str, str]) -> None:
    """Write ``files`` (relative posix path -> text) into the staging folder ``tmp``, refusing any path outside it."""
    folders: dict[str, Path] = {"": Path(tmp)}
    for rel, text in files.items():
        folder, name = posixpath.split(rel)
        if folder not in folders:  # resolved once per folder (a realpath per file: seconds at 20,000 files)
            folders[folder] = inside(tmp, folder, error=PatchError)
            folders[folder].mkdir(parents=True, exist_ok=True)  # two processes may make a shared parent: exist_ok
        if name in ("", ".", ".."):  # one plain component in a folder just checked: inside too
            raise PatchError(f"{rel!r} would be written outside {tmp}; refused (nothing was written)")
        (folders[folder] / name).write_text(text, encoding="utf-8")
