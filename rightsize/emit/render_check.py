"""Checking an overlay's render after patching: the rendered objects differ only in ``resources`` of the
targeted containers, every recommended value took effect; and the render diff shown to a person."""
from __future__ import annotations

import copy
import difflib
import math
import re
from typing import Any

import pandas as pd

from ..gpu_resources import is_gpu_resource
from ..quantity import parse_cpu, parse_memory
from .patch_model import INJECTED, LIST_NAME, PatchError, WorkloadPatch, container_spec, has_cpu_limit, pod_spec_path, template_annotations
from .patch_text import load_all


def doc_key(d: dict) -> tuple[str, str, str, str]:
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
    """``doc`` without the CPU/memory/GPU requests and limits of ``containers`` (what a patch may change); a
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
                for key in [k for k in res[part] if is_gpu_resource(str(k))]:  # a GPU moved to a MIG slice
                    del res[part][key]
                if not res[part]:
                    del res[part]
        if not res:
            del c["resources"]
    return out


def check_render(before: list[dict], after: list[dict], targeted: dict[tuple, set[tuple[str, str]]],
                 label: str) -> None:
    """Raise PatchError unless ``after`` differs from ``before`` only in resources of ``targeted`` containers.

    ``targeted``: rendered doc key -> {(list name, container)}.
    """
    b_idx = {doc_key(d): d for d in before}
    a_idx = {doc_key(d): d for d in after}
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


def _strip_annotations(doc: dict, kind: str, keys: set[str]) -> None:
    """Remove pod template annotations ``keys`` from ``doc`` in place, and the mappings left empty."""
    node: Any = doc
    for key in pod_spec_path(kind)[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    meta = node.get("metadata") if isinstance(node, dict) else None
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    if not keys or not isinstance(ann, dict):
        return
    for k in keys:
        ann.pop(k, None)
    if not ann:
        del meta["annotations"]
    if not meta:
        del node["metadata"]


def check_applied(after_doc: dict, patch: WorkloadPatch, label: str) -> None:
    """Raise PatchError when a recommended value (or an injector's annotation) is not what the patched overlay renders."""
    rendered = template_annotations(after_doc, patch.kind)
    for key, value in template_annotations(patch.body, patch.kind).items():
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
            out[doc_key(docs[0])] = chunk.splitlines(keepends=True)
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
