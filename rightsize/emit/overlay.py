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

import copy
import difflib
import io
import math
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ..errors import ConfigError
from ..atomic import inside
from ..folders import k8s_name_problem, overlay_folder_problem
from ..kustomize import KUSTOMIZATION_FILES, KustomizeError, render  # noqa: F401 - KustomizeError: what apply_to_overlay raises
from ..quantity import parse_cpu, parse_memory
from ..refs import refs_text
from .patches import (INJECTED, LIST_NAME, SKIP_COLUMNS, PatchError, WorkloadPatch, add_skips, build_patch, container_spec,
                      group_rows, has_cpu_limit, hpa_patch, json6902_file, load_all, patches_markdown, pod_spec_path, select,
                      smp_file, target, template_annotations, view_from_doc, has_containers, skip_row)

DIFF_FILE = "overlay.diff"  # the render diff, written beside PATCHES.md (never into the overlay)

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


def find_kustomization(overlay_dir: Path) -> Path:
    if not overlay_dir.is_dir():
        raise PatchError(f"{overlay_dir}: not a folder; --overlay expects a kustomize overlay folder")
    for name in KUSTOMIZATION_FILES:
        if (overlay_dir / name).is_file():
            return overlay_dir / name
    raise PatchError(f"{overlay_dir}: no kustomization.yaml; not a kustomize overlay")


# --- kustomization.yaml round trip ------------------------------------------------------------------

def _round_trip_yaml(text: str) -> YAML:
    """A round-trip YAML that writes sequences the way the file already does (so untouched lines stay)."""
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    offset = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)- ", line)
        if not m:
            continue
        prev = next((p for p in reversed(lines[:i]) if p.strip() and not p.lstrip().startswith("#")), "")
        if prev.rstrip().endswith(":"):
            offset = len(m.group(1)) - (len(prev) - len(prev.lstrip()))
            break
    offset = max(offset, 0)
    y.indent(mapping=2, sequence=offset + 2, offset=offset)
    return y


def _load_kustomization(path: Path) -> tuple[YAML, CommentedMap, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PatchError(f"{path}: cannot read: {exc.strerror}") from None
    y = _round_trip_yaml(text)
    try:
        data = y.load(text)
    except YAMLError as exc:
        raise PatchError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, CommentedMap):
        raise PatchError(f"{path}: not a kustomization (expected a mapping at the top)")
    return y, data, text


def _entry_path(entry: Any) -> str | None:
    if isinstance(entry, dict) and isinstance(entry.get("path"), str):
        return posixpath.normpath(entry["path"])
    return None


def _set_target(entry: CommentedMap, new: dict) -> None:
    """Replace the entry's target keeping its mapping object (and so its style and comments)."""
    old = entry.get("target")
    if not isinstance(old, dict):
        entry["target"] = CommentedMap(new)
        return
    for k in [k for k in old if k not in new]:
        del old[k]
    for k, v in new.items():
        old[k] = v


def update_patch_list(data: CommentedMap, groups: list[list[tuple[str, dict, str]]], owned: set[str]) -> list[str]:
    """Make ``patches:`` list every group of (path, target, comment); returns the owned paths dropped.

    A group is one workload's strategic-merge patch, optionally followed by its JSON6902 CPU-limit
    removal, which must come right after it (its container indexes hold there). An entry already
    listing the strategic-merge path is updated in place (position and comments kept); extra copies
    of a path are removed; entries of ``owned`` paths no longer wanted (a stale rightsize removal)
    are removed; new groups are appended, so they apply after the hand-written patches.
    """
    seq = data.get("patches")
    if seq is None:
        seq = CommentedSeq()
        data["patches"] = seq
    if not isinstance(seq, list):
        raise PatchError("kustomization.yaml: `patches` is not a list")
    wanted_paths = {posixpath.normpath(p) for g in groups for p, _, _ in g}
    dropped: list[str] = []
    seen: set[str] = set()
    for i in range(len(seq) - 1, -1, -1):
        p = _entry_path(seq[i])
        if p in owned and p not in wanted_paths:
            dropped.append(p)
            del seq[i]
    for i in range(len(seq)):
        p = _entry_path(seq[i])
        if p is not None:
            seen.add(p)
    for i in range(len(seq) - 1, -1, -1):  # later copies of a wanted path go
        p = _entry_path(seq[i])
        if p in wanted_paths and next(j for j in range(len(seq)) if _entry_path(seq[j]) == p) != i:
            del seq[i]

    def new_entry(path: str, tgt: dict, comment: str) -> CommentedMap:
        entry = CommentedMap()
        entry["path"] = path
        entry["target"] = CommentedMap(tgt)
        entry.yaml_add_eol_comment(comment, "path")
        return entry

    trailing = _pop_trailing_blank(seq) if len(seq) else None
    for group in groups:
        (smp_path, smp_target, smp_comment), rest = group[0], group[1:]
        at = next((j for j, e in enumerate(seq) if _entry_path(e) == posixpath.normpath(smp_path)), None)
        if at is None:
            seq.append(new_entry(smp_path, smp_target, smp_comment))
            at = len(seq) - 1
        else:
            _set_target(seq[at], smp_target)
        for path, tgt, comment in rest:
            norm = posixpath.normpath(path)
            j = next((k for k, e in enumerate(seq) if _entry_path(e) == norm), None)
            if j == at + 1:
                _set_target(seq[j], tgt)
            else:
                if j is not None:
                    del seq[j]
                    if j < at:
                        at -= 1
                seq.insert(at + 1, new_entry(path, tgt, comment))
            at += 1
    if trailing:
        _push_trailing_blank(seq, trailing)
    return dropped


def _last_leaf(node: Any) -> tuple[Any, Any] | None:
    """(container, key) of the last scalar in ``node``: where ruamel keeps the blank lines after it."""
    while True:
        if isinstance(node, CommentedMap) and len(node):
            key = list(node)[-1]
            if isinstance(node[key], (CommentedMap, CommentedSeq)) and len(node[key]):
                node = node[key]
                continue
            return node, key
        if isinstance(node, CommentedSeq) and len(node):
            if isinstance(node[-1], (CommentedMap, CommentedSeq)) and len(node[-1]):
                node = node[-1]
                continue
            return node, len(node) - 1
        return None


def _pop_trailing_blank(seq: CommentedSeq) -> str | None:
    """Detach blank lines / comments that follow the list's last scalar (they belong before the next key)."""
    leaf = _last_leaf(seq)
    if not leaf:
        return None
    node, key = leaf
    slot = 2 if isinstance(node, CommentedMap) else 0
    item = node.ca.items.get(key)
    token = item[slot] if item and len(item) > slot else None
    if token is None or not isinstance(getattr(token, "value", None), str):
        return None
    text = token.value
    cut = text.find("\n")
    if cut < 0 or cut == len(text) - 1:
        return None
    token.value = text[: cut + 1]
    return text[cut + 1:]


def _push_trailing_blank(seq: CommentedSeq, text: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    leaf = _last_leaf(seq)
    if not leaf:
        return
    node, key = leaf
    slot = 2 if isinstance(node, CommentedMap) else 0
    item = node.ca.items.setdefault(key, [None, None, None, None])
    existing = item[slot]
    if existing is not None and isinstance(getattr(existing, "value", None), str):
        existing.value = existing.value.rstrip("\n") + "\n" + text
    else:
        item[slot] = CommentToken("\n" + text, CommentMark(0), None)


def dump_kustomization(y: YAML, data: CommentedMap) -> str:
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


# --- render comparison ------------------------------------------------------------------------------

def _doc_key(d: dict) -> tuple[str, str, str, str]:
    md = d.get("metadata") or {}
    return (str(d.get("apiVersion", "")), str(d.get("kind", "")), str(md.get("namespace") or ""), str(md.get("name", "")))


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}.{k}"
            d = _first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} (length {len(a)} → {len(b)})"
        for i, (x, z) in enumerate(zip(a, b)):
            d = _first_difference(x, z, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else (path or "(document)")


def _strip_resources(doc: dict, kind: str, containers: set[tuple[str, str]]) -> dict:
    """``doc`` without the CPU/memory requests and limits of ``containers`` (what a patch may change); a
    pair ("annotation", KEY) strips that pod template annotation (an injected sidecar's sizing)."""
    out = copy.deepcopy(doc)
    _strip_annotations(out, kind, {name for list_name, name in containers if list_name == "annotation"})
    for list_name, name in containers:
        if list_name == "annotation":
            continue
        c = container_spec(out, kind, list_name, name)
        res = c.get("resources") if c is not None else None
        if not isinstance(res, dict):
            continue
        for part in ("requests", "limits"):
            if isinstance(res.get(part), dict):
                res[part].pop("cpu", None)
                res[part].pop("memory", None)
                if not res[part]:
                    del res[part]
        if not res:
            del c["resources"]
    return out


def _strip_annotations(doc: dict, kind: str, keys: set[str]) -> None:
    """Remove pod template annotations ``keys`` from ``doc`` in place, and the mappings left empty."""
    if not keys:
        return
    node: Any = doc
    for key in pod_spec_path(kind)[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    meta = node.get("metadata") if isinstance(node, dict) else None
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(ann, dict):
        return
    for k in keys:
        ann.pop(k, None)
    if not ann:
        del meta["annotations"]
    if not meta:
        del node["metadata"]


def check_render(before: list[dict], after: list[dict], targeted: dict[tuple, set[tuple[str, str]]],
                 label: str) -> None:
    """Raise PatchError unless ``after`` differs from ``before`` only in resources of ``targeted`` containers.

    ``targeted``: rendered doc key -> {(list name, container)}.
    """
    b_idx = {_doc_key(d): d for d in before}
    a_idx = {_doc_key(d): d for d in after}
    if set(b_idx) != set(a_idx):
        extra = sorted(set(a_idx) ^ set(b_idx))[0]
        raise PatchError(f"{label}: the patched render has a different set of objects (e.g. {extra[1]} "
                         f"{extra[2]}/{extra[3]}); nothing was written")
    for key, b in b_idx.items():
        a = a_idx[key]
        ctrs = targeted.get(key, set())
        bb, aa = (_strip_resources(b, key[1], ctrs), _strip_resources(a, key[1], ctrs)) if ctrs else (b, a)
        diff = _first_difference(bb, aa)
        if diff:
            raise PatchError(f"{label}: the patches would change {key[1]} {key[2]}/{key[3]} at {diff.lstrip('.')}, "
                             f"not only resources of the targeted containers; nothing was written")


def _same(value: Any, expected: float, parse) -> bool:
    try:
        return value is not None and math.isclose(parse(value), expected, rel_tol=1e-9, abs_tol=1e-9)
    except ValueError:
        return False


def check_applied(after_doc: dict, patch: WorkloadPatch, label: str) -> None:
    """Raise PatchError when a recommended value is not what the patched overlay renders."""
    wanted = template_annotations(patch.body, patch.kind)
    rendered = template_annotations(after_doc, patch.kind)
    for key, value in wanted.items():
        if rendered.get(key) != value:
            raise PatchError(f"{label}: {patch.kind} {patch.workload}: annotation {key} renders as {rendered.get(key)!r} "
                             "after patching, not the recommended value; nothing was written")
    for r in patch.rows:
        if r["container_type"] == INJECTED:
            continue
        list_name = LIST_NAME[r["container_type"]]
        c = container_spec(after_doc, patch.kind, list_name, r["container"]) or {}
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        checks = [("cpu request", req.get("cpu"), r["cpu_request_cores_recommended"], parse_cpu),
                  ("memory request", req.get("memory"), r["memory_request_bytes_recommended"], parse_memory),
                  ("memory limit", lim.get("memory"), r["memory_limit_bytes_recommended"], parse_memory)]
        if r["cpu_limit_action"] == "set":
            checks.append(("cpu limit", lim.get("cpu"), r["cpu_limit_cores_recommended"], parse_cpu))
        for what, got, want, parse in checks:
            if pd.notna(want) and not _same(got, float(want), parse):
                raise PatchError(f"{label}: {patch.kind} {patch.workload} container {r['container']}: {what} renders as "
                                 f"{got!r} after patching, not the recommended value; a later patch in the "
                                 f"kustomization overrides it or the target missed; nothing was written")
        removed = any(op["op"] == "test" and op["value"] == r["container"] and f"/{list_name}/" in op["path"]
                      for op in patch.remove_ops)
        if removed and has_cpu_limit(c):
            raise PatchError(f"{label}: {patch.kind} {patch.workload} container {r['container']}: CPU limit still set "
                             f"after the removal patch; nothing was written")


# --- the render diff ---------------------------------------------------------------------------------

def _hunk_range(start: int, stop: int) -> str:
    """Line range of a unified-diff hunk header (1-based start, length omitted when 1)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + (1 if length else 0)},{length}"


def unified_diff(a: list[str], b: list[str], fromfile: str, tofile: str, n: int = 3) -> str:
    """Unified diff of two line lists (each ending in a newline) with difflib's autojunk OFF.

    difflib.unified_diff cannot switch autojunk off: with it on, lines repeated in more than 1% of a
    long text (``name:``, ``resources:``, ``- name: app``) are treated as junk, and a rendered overlay
    of a few hundred lines comes out as one hunk rewriting everything.
    """
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(n):
        if not out:
            out += [f"--- {fromfile}\n", f"+++ {tofile}\n"]
        first, last = group[0], group[-1]
        out.append(f"@@ -{_hunk_range(first[1], last[2])} +{_hunk_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in a[i1:i2]]
                continue
            out += ["-" + line for line in a[i1:i2]]
            out += ["+" + line for line in b[j1:j2]]
    return "".join(out)


def _objects(text: str, where: str) -> dict[tuple, list[str]]:
    """A rendered YAML stream split into its documents' lines, keyed by (apiVersion, kind, namespace, name)."""
    out: dict[tuple, list[str]] = {}
    for chunk in re.split(r"(?m)^---[ \t]*\n", text):
        docs = load_all(chunk, where) if chunk.strip() else []
        if docs:
            out[_doc_key(docs[0])] = chunk.splitlines(keepends=True)
    return out


def render_diff(before_text: str, after_text: str, label: str) -> str:
    """The render diff per object: one unified diff for each object whose YAML changed, in render order."""
    before, after = _objects(before_text, f"{label} (rendered)"), _objects(after_text, f"{label} (rendered after patching)")
    parts = []
    for key, lines in after.items():
        _, kind, ns, name = key
        what = f"{kind} {ns + '/' if ns else ''}{name}"
        parts.append(unified_diff(before.get(key, []), lines, f"{label}: {what} (before)",
                                  f"{label}: {what} (with rightsize patches)"))
    return "".join(parts)


# --- main entry -------------------------------------------------------------------------------------

def _removed_before(overlay_dir: Path, kdata: CommentedMap, rel: str) -> set[tuple[str, str]]:
    """(list name, container) pairs whose CPU limit an existing rightsize JSON6902 patch ``rel`` removes."""
    listed = any(_entry_path(e) == posixpath.normpath(rel) for e in (kdata.get("patches") or []))
    path = overlay_dir / rel
    if not listed or not path.is_file():
        return set()
    try:
        ops = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")) or []
    except (OSError, YAMLError):
        return set()
    out = set()
    for op in ops if isinstance(ops, list) else []:
        if isinstance(op, dict) and op.get("op") == "test" and str(op.get("path", "")).endswith("/name"):
            parts = str(op["path"]).split("/")
            if len(parts) >= 3 and parts[-3] in LIST_NAME.values():
                out.add((parts[-3], str(op.get("value"))))
    return out


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
    y, kdata, _ = _load_kustomization(kfile)
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
    """(patches as (patch, rendered doc, target), rows not rendered, rows skipped, notes) for the rows to patch."""
    patches: list[tuple[WorkloadPatch, dict, dict]] = []
    not_in: list[dict] = []
    extra_skips: list[dict] = []
    notes: list[str] = []
    groups = group_rows(to_patch)
    # one overlay over several namespaces: a kind and name found in two of them get namespace-prefixed files
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
        view.cpu_limited |= _removed_before(ov.dir, ov.kdata, f"{ov.folder}/{stem}.cpu-limit.yaml")
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
        if not has_containers(p.body):
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
        targeted = {_doc_key(doc): _targeted(p) for p, doc, _ in patches}
        check_render(ov.before, after, targeted, ov.label)
        a_idx = {_doc_key(d): d for d in after}
        for p, doc, _ in patches:
            check_applied(a_idx[_doc_key(doc)], p, ov.label)
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


def _same_as_now(ov: _Overlay, files: dict[str, str], dropped: list[str]) -> bool:
    """True when writing ``files`` (and the kustomization) and removing ``dropped`` would change no byte."""
    if dump_kustomization(ov.yaml, ov.kdata) != ov.kfile.read_text(encoding="utf-8"):
        return False
    if any((ov.dir / rel).exists() for rel in dropped if rel not in files):
        return False
    for rel, text in files.items():
        path = ov.dir / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            return False
    return True


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
