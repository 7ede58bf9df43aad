"""Overlay mode: add rightsize's patches to an existing kustomize overlay and show the render diff.

Steps: render the overlay with kustomize (``[patches] kustomize_command``) to learn which workloads it
produces; write patches only for those; add them to the overlay's kustomization.yaml (ruamel.yaml
round-trip: comments and order kept; a rightsize patch already listed for the same workload is updated
in place); render again and check that the rendered objects differ only in ``resources`` of the
targeted containers and that every recommended value took effect.

Kustomize semantics that shape the targets: patches listed in a kustomization are applied BEFORE that
kustomization's own namePrefix / nameSuffix / namespace transformers, so a target names the object as
the overlay receives it from its resources (the base's name, with the base's own transformers applied;
the name it had in its original file matches too). Targets therefore carry the rendered name with the
overlay's prefix and suffix stripped, and no namespace when the overlay sets ``namespace:`` (kustomize
would reject two objects that end up with the same kind, name and namespace, so the name alone is
unambiguous). The post-render check catches anything this reasoning misses (components, transformer
plugins): no file is touched unless the staged overlay builds and passes the check.

All changes are made in a staged copy beside the overlay (same depth, so relative paths such as
``../../base`` still resolve), rendered there, and only then moved into place.
"""
from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from ..atomic import inside
from ..errors import ConfigError
from ..folders import k8s_name_problem, overlay_folder_problem
from ..kustomize import render
from ..refs import refs_text
from .hpa_patch import hpa_patch
from .kustomization import dump_kustomization, find_kustomization, load_kustomization, removed_before, update_patch_list
from .patch_body import build_patch
from .patch_model import (INJECTED, LIST_NAME, SKIP_COLUMNS, PatchError, WorkloadPatch, add_skips, group_rows, has_edits,
                          select, skip_row, target, template_annotations, view_from_doc)
from .patch_text import json6902_file, load_all, patches_markdown, smp_file
from .render_check import check_applied, check_render, doc_key, render_diff


@dataclass
class OverlayResult:
    """What ``apply_to_overlay`` did.

    ``diff``: unified diff of the rendered overlay before/after ('' when nothing changed).
    ``patched``: recommendation rows written into the overlay. ``not_in_overlay``: "change" rows of
    workloads the overlay does not render (reported, not patched). ``skipped``: rows of the overlay's
    workloads not patched, with the reason. ``written`` / ``removed``: files changed in the overlay.
    ``markdown``: a pull-request body for the change.
    """

    overlay: Path
    kustomization: Path
    diff: str = ""
    patched: pd.DataFrame = field(default_factory=pd.DataFrame)
    not_in_overlay: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIP_COLUMNS))
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIP_COLUMNS))
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    markdown: str = ""
    unchanged: str = ""  # why nothing was written ('' when the overlay was updated)


DIFF_FILE = "overlay.diff"  # the render diff, written beside PATCHES.md (never into the overlay)




def _strip_affixes(name: str, prefix: str, suffix: str) -> str:
    if prefix and name.startswith(prefix) and len(name) > len(prefix):
        name = name[len(prefix):]
    if suffix and name.endswith(suffix) and len(name) > len(suffix):
        name = name[: -len(suffix)]
    return name


def _check_writable(overlay_dir: Path, kfile: Path, folder: Path) -> None:
    for p in (overlay_dir, kfile, overlay_dir.parent) + ((folder,) if folder.exists() else ()):
        if not os.access(p, os.W_OK):
            raise PatchError(f"{p}: read-only; cannot add the patches to the overlay (nothing was written)")


def _pick_cluster(recs: pd.DataFrame, cluster: str | None, config) -> pd.DataFrame:
    if recs.empty:
        return recs
    clusters = sorted(recs["cluster"].astype(str).unique())
    if cluster is None:
        if len(clusters) > 1:
            name = config.general.cluster_name
            if name not in clusters:
                raise ConfigError(f"overlay: the recommendations cover clusters {', '.join(clusters)}; "
                                  "say which one the overlay deploys to")
            cluster = name
        else:
            cluster = clusters[0]
    return recs[recs["cluster"].astype(str) == cluster]


@dataclass
class _Overlay:
    """An overlay opened for patching: its kustomization, and what it renders before any change."""

    label: str  # as the user named it, for messages
    dir: Path
    kfile: Path
    folder: str  # [patches] overlay_folder, normalised
    yaml: YAML
    kdata: CommentedMap
    before_text: str
    before: list[dict]
    rendered: dict[tuple[str, str], list[dict]]  # (kind, name) -> rendered objects

    def affix(self, key: str) -> str:
        return str(self.kdata.get(key) or "")


def _open_overlay(overlay_dir: Path, config) -> _Overlay:
    label = str(overlay_dir)
    # Resolved, so that "." still has a real parent to stage the patched copy in.
    overlay_dir = Path(overlay_dir).resolve()
    kfile = find_kustomization(overlay_dir)
    folder_name = posixpath.normpath(config.patches.overlay_folder.strip("/") or "rightsize")
    problem = overlay_folder_problem(config.patches.overlay_folder)
    if problem:
        raise ConfigError(f"patches.overlay_folder: {problem}")
    _check_writable(overlay_dir, kfile, overlay_dir / folder_name)
    y, kdata, _ = load_kustomization(kfile)
    before_text = render(overlay_dir, config, label=label)
    before = load_all(before_text, f"{label} (rendered)")
    rendered: dict[tuple[str, str], list[dict]] = {}
    for d in before:
        md = d.get("metadata") or {}
        rendered.setdefault((str(d.get("kind", "")), str(md.get("name", ""))), []).append(d)
    return _Overlay(label, overlay_dir, kfile, folder_name, y, kdata, before_text, before, rendered)


def _rendered_doc(ov: _Overlay, kind: str, namespace: str, name: str) -> dict | None:
    """The one object the overlay renders for a workload, None when it renders none."""
    docs = [d for d in ov.rendered.get((kind, name), [])
            if str((d.get("metadata") or {}).get("namespace") or "") in ("", namespace)]
    if len(docs) > 1:
        raise PatchError(f"{ov.label}: {kind} {namespace}/{name} matches {len(docs)} objects in the rendered overlay; "
                         "cannot tell which to patch")
    return docs[0] if docs else None


def _pre_transform_identity(ov: _Overlay, doc: dict, kind: str, name: str) -> tuple[str, str | None]:
    """(name, namespace or None) of the object as the overlay's patches see it: before its own prefix,
    suffix and namespace transformers (module docstring). PatchError when that target is ambiguous."""
    prefix, suffix = ov.affix("namePrefix"), ov.affix("nameSuffix")
    doc_ns = str((doc.get("metadata") or {}).get("namespace") or "")
    pre_name = _strip_affixes(name, prefix, suffix)
    pre_ns = None if ov.kdata.get("namespace") or not doc_ns else doc_ns
    same_target = [d for d in ov.before if d.get("kind") == kind
                   and _strip_affixes(str((d.get("metadata") or {}).get("name", "")), prefix, suffix) == pre_name
                   and (pre_ns is None or str((d.get("metadata") or {}).get("namespace") or "") == pre_ns)]
    if len(same_target) > 1:
        raise PatchError(f"{ov.label}: the patch target {kind} {pre_name} would match {len(same_target)} objects "
                         "in the overlay; cannot patch only one of them")
    return pre_name, pre_ns


def _plan_patches(ov: _Overlay, to_patch: pd.DataFrame, injectors: dict):
    """(patches as (patch, rendered doc, target), rows not rendered, rows skipped, notes) for the rows to patch.
    One overlay over several namespaces: a kind and name found in two of them get namespace-prefixed files."""
    patches: list[tuple[WorkloadPatch, dict, dict]] = []
    not_in: list[dict] = []
    extra_skips: list[dict] = []
    notes: list[str] = []
    groups = group_rows(to_patch)
    namespaces: dict[tuple[str, str], set[str]] = {}
    for _cl, ns, kind, name in groups:
        namespaces.setdefault((kind, name), set()).add(ns)
    for (cl, ns, kind, name), rows in groups.items():
        bad = k8s_name_problem(namespace=ns, workload=name)
        if bad:  # no file name may be built from it (e.g. '../' in a metrics label)
            extra_skips += [skip_row(r, f"{bad}; no patch written") for r in rows]
            continue
        doc = _rendered_doc(ov, kind, ns, name)
        if doc is None:
            not_in += [skip_row(r, f"not rendered by overlay {ov.label}") for r in rows]
            continue
        pre_name, pre_ns = _pre_transform_identity(ov, doc, kind, name)
        view = view_from_doc(doc, kind, f"overlay {ov.label}")
        shared = len(namespaces[(kind, name)]) > 1
        stem = f"{ns + '-' if shared else ''}{kind.lower()}-{name}"
        # A CPU limit our own earlier removal patch took away is still "set" as far as that patch goes.
        view.cpu_limited |= removed_before(ov.dir, ov.kdata, f"{ov.folder}/{stem}.cpu-limit.yaml")
        p = build_patch(cl, ns, kind, name, rows, view, name=pre_name, patch_namespace=pre_ns or "", injectors=injectors)
        p.namespaced = shared
        extra_skips += p.missing
        notes += p.notes + hpa_patch(p, None, "--overlay writes no HPA patch; `rightsize patch` does")[1]
        patches.append((p, doc, target(kind, pre_name, pre_ns)))
    return patches, not_in, extra_skips, notes


def _overlay_files(ov: _Overlay, patches: list, meta: dict):
    """(file texts by path in the overlay, kustomization groups, paths rightsize owns, (patch, its files))."""
    files: dict[str, str] = {}
    groups: list[list[tuple[str, dict, str]]] = []
    owned: set[str] = set()
    patched: list[tuple[WorkloadPatch, list[str]]] = []
    stems: dict[str, str] = {}
    for p, _doc, tgt in patches:
        stem = p.stem
        if stem in stems:
            raise PatchError(f"{ov.label}: {p.ref} and {stems[stem]} would share the patch file {stem}.yaml; "
                             "the workload name matches two objects")
        stems[stem] = p.ref
        smp_rel, rm_rel = f"{ov.folder}/{stem}.yaml", f"{ov.folder}/{stem}.cpu-limit.yaml"
        owned.update({smp_rel, rm_rel})
        if not has_edits(p.body):
            continue
        comment = f"rightsize: {p.kind} {p.namespace}/{p.workload}"
        files[smp_rel] = smp_file(p, meta)
        group = [(smp_rel, tgt, comment)]
        if p.remove_ops:
            files[rm_rel] = json6902_file(p)
            group.append((rm_rel, tgt, comment + " (CPU limit removal)"))
        groups.append(group)
        patched.append((p, [g[0] for g in group]))
    return files, groups, owned, patched


def _targeted(p: WorkloadPatch) -> set[tuple[str, str]]:
    """What a patch may change in its object: (list name, container) pairs, ("annotation", key) pairs."""
    out = {(LIST_NAME[r["container_type"]], r["container"]) for r in p.rows if r["container_type"] != INJECTED}
    return out | {("annotation", k) for k in template_annotations(p.body, p.kind)}


def _same_as_now(ov: _Overlay, files: dict[str, str], dropped: list[str]) -> bool:
    """True when writing ``files`` (and the kustomization) and removing ``dropped`` would change no byte."""
    if dump_kustomization(ov.yaml, ov.kdata) != ov.kfile.read_text(encoding="utf-8"):
        return False
    if any((ov.dir / rel).exists() for rel in dropped if rel not in files):
        return False
    return all((ov.dir / rel).is_file() and (ov.dir / rel).read_text(encoding="utf-8") == text for rel, text in files.items())


def _apply_staged(ov: _Overlay, config, files: dict[str, str], dropped: list[str], patches: list) -> str:
    """Write the change into a staged copy, render and check it, then move it into the overlay; the render."""
    new_ktext = dump_kustomization(ov.yaml, ov.kdata)
    stage = _stage(ov.dir)
    try:
        for rel, text in files.items():
            path = inside(stage, rel, error=PatchError)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (stage / ov.kfile.name).write_text(new_ktext, encoding="utf-8")
        for rel in dropped:
            if rel not in files:
                (stage / rel).unlink(missing_ok=True)
        after_text = render(stage, config, label=f"{ov.label} (with the rightsize patches)")
        after = load_all(after_text, f"{ov.label} (rendered after patching)")
        targeted = {doc_key(doc): _targeted(p) for p, doc, _ in patches}
        check_render(ov.before, after, targeted, ov.label)
        a_idx = {doc_key(d): d for d in after}
        for p, doc, _ in patches:
            check_applied(a_idx[doc_key(doc)], p, ov.label)
        _commit(stage, ov.dir, list(files) + [ov.kfile.name], [rel for rel in dropped if rel not in files])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return after_text


def apply_to_overlay(recommendations: pd.DataFrame, snapshot, config, overlay_dir: Path, *,
                     cluster: str | None = None) -> OverlayResult:
    """Add patches for the workloads ``overlay_dir`` renders to its kustomization; see the module docstring.

    ``cluster``: the cluster whose recommendations apply (default: the only one, or
    ``general.cluster_name``). Raises PatchError / KustomizeError with one line; the overlay is left
    untouched then.
    """
    ov = _open_overlay(overlay_dir, config)
    meta = getattr(snapshot, "meta", {}) or {}
    recs = _pick_cluster(recommendations, cluster, config)
    to_patch, skipped = select(recs, config)
    patches, not_in, extra_skips, notes = _plan_patches(ov, to_patch, config.injectors)

    # Skipped rows are listed for the workloads this overlay renders only (other rows concern other overlays).
    ns_of = {k: {str((d.get("metadata") or {}).get("namespace") or "") for d in docs} for k, docs in ov.rendered.items()}
    keep = [bool(ns_of.get((k, w), set()) & {"", n}) for k, w, n in zip(skipped["kind"], skipped["workload"], skipped["namespace"])]
    skipped = add_skips(skipped[keep] if len(skipped) else skipped, extra_skips)

    files, groups, owned, patched = _overlay_files(ov, patches, meta)
    patched_rows = pd.DataFrame([r for p, _ in patched for r in p.rows], columns=to_patch.columns)
    result = OverlayResult(overlay=ov.dir, kustomization=ov.kfile, patched=patched_rows,
                           not_in_overlay=pd.DataFrame(not_in, columns=SKIP_COLUMNS),
                           skipped=skipped.reset_index(drop=True), notes=notes)
    result.markdown = patches_markdown(patched, add_skips(skipped, not_in), notes, meta,
                                       title=f"rightsize: resource patches for overlay {ov.dir.name}", how_to=False,
                                       recommendations=recs, injectors=config.injectors)
    _check_overlay_matches(recs, ov.rendered, ov.label)
    if not groups:
        result.unchanged = "no recommended change for the workloads it renders"
        return result
    dropped = update_patch_list(ov.kdata, groups, owned)
    if _same_as_now(ov, files, dropped):
        result.unchanged = "its rightsize patches already say this"
        return result
    after_text = _apply_staged(ov, config, files, dropped, patches)
    result.written = [ov.dir / rel for rel in sorted(files)] + [ov.kfile]
    result.removed = [ov.dir / rel for rel in dropped if rel not in files]
    result.diff = render_diff(ov.before_text, after_text, ov.label)
    return result


def _check_overlay_matches(recs: pd.DataFrame, rendered: dict, label: str) -> None:
    """PatchError when the overlay renders none of the snapshot's workloads (of the chosen cluster): a wrong
    overlay or cluster would otherwise pass as "nothing to change"."""
    if recs.empty:
        return
    names = set(zip(recs["kind"].astype(str), recs["workload"].astype(str)))
    if names & set(rendered):
        return
    refs = sorted(set(refs_text(recs)))
    shown = ", ".join(refs[:3])
    raise PatchError(f"{label}: the overlay renders none of the {len(refs)} workloads of the snapshot "
                     f"(e.g. {shown}); wrong overlay, wrong cluster, or its base lacks them (nothing was written)")


def _stage(overlay_dir: Path) -> Path:
    """A copy of the overlay beside it (same depth, so relative references still resolve)."""
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{overlay_dir.name}.rightsize-", dir=overlay_dir.parent))
        shutil.copytree(overlay_dir, stage, symlinks=True, dirs_exist_ok=True)
    except OSError as exc:
        raise PatchError(f"{overlay_dir}: cannot stage the patched overlay beside it: {exc.strerror or exc} "
                         "(nothing was written)") from None
    return stage


def _commit(stage: Path, overlay_dir: Path, writes: list[str], deletes: list[str]) -> None:
    """Move the staged files into the overlay; on failure put every original back."""
    originals: dict[str, bytes | None] = {}
    for rel in writes + deletes:
        p = overlay_dir / rel
        originals[rel] = p.read_bytes() if p.is_file() else None
    done: list[str] = []
    try:
        for rel in writes:
            dest = inside(overlay_dir, rel, error=PatchError)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, dest)
            done.append(rel)
        for rel in deletes:
            (overlay_dir / rel).unlink(missing_ok=True)
            done.append(rel)
    except OSError as exc:
        for rel in done:
            dest = overlay_dir / rel
            if originals[rel] is None:
                dest.unlink(missing_ok=True)
            else:
                dest.write_bytes(originals[rel])
        raise PatchError(f"{overlay_dir}: cannot write {exc.filename or ''}: {exc.strerror or exc}; "
                         "the overlay was restored") from None
