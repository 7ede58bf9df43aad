"""Editing a kustomization.yaml by round trip (ruamel.yaml): comments, order and the file's own list style
kept; the ``patches:`` entries rightsize owns added or updated in place."""
from __future__ import annotations

import io
import posixpath
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from ..kustomize import KUSTOMIZATION_FILES
from .patch_model import LIST_NAME, PatchError


def find_kustomization(overlay_dir: Path) -> Path:
    if not overlay_dir.is_dir():
        raise PatchError(f"{overlay_dir}: not a folder; --overlay expects a kustomize overlay folder")
    for name in KUSTOMIZATION_FILES:
        if (overlay_dir / name).is_file():
            return overlay_dir / name
    raise PatchError(f"{overlay_dir}: no kustomization.yaml; not a kustomize overlay")


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


def load_kustomization(path: Path) -> tuple[YAML, CommentedMap, str]:
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


def entry_path(entry: Any) -> str | None:
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
    dropped = _drop_unwanted(seq, {posixpath.normpath(p) for g in groups for p, _, _ in g}, owned)
    trailing = _pop_trailing_blank(seq) if len(seq) else None
    for group in groups:
        _place_group(seq, group)
    if trailing:
        _push_trailing_blank(seq, trailing)
    return dropped


def _drop_unwanted(seq: CommentedSeq, wanted_paths: set[str], owned: set[str]) -> list[str]:
    """Remove the entries of owned paths no longer wanted (returned) and later copies of a wanted path."""
    dropped: list[str] = []
    for i in range(len(seq) - 1, -1, -1):
        p = entry_path(seq[i])
        if p in owned and p not in wanted_paths:
            dropped.append(p)
            del seq[i]
    for i in range(len(seq) - 1, -1, -1):  # later copies of a wanted path go
        p = entry_path(seq[i])
        if p in wanted_paths and next(j for j in range(len(seq)) if entry_path(seq[j]) == p) != i:
            del seq[i]
    return dropped


def _new_entry(path: str, tgt: dict, comment: str) -> CommentedMap:
    entry = CommentedMap()
    entry["path"] = path
    entry["target"] = CommentedMap(tgt)
    entry.yaml_add_eol_comment(comment, "path")
    return entry


def _place_group(seq: CommentedSeq, group: list[tuple[str, dict, str]]) -> None:
    """One workload's entries: its strategic merge updated in place or appended, the rest right after it."""
    (smp_path, smp_target, smp_comment), rest = group[0], group[1:]
    at = next((j for j, e in enumerate(seq) if entry_path(e) == posixpath.normpath(smp_path)), None)
    if at is None:
        seq.append(_new_entry(smp_path, smp_target, smp_comment))
        at = len(seq) - 1
    else:
        _set_target(seq[at], smp_target)
    for path, tgt, comment in rest:
        norm = posixpath.normpath(path)
        j = next((k for k, e in enumerate(seq) if entry_path(e) == norm), None)
        if j == at + 1:
            _set_target(seq[j], tgt)
        else:
            if j is not None:
                del seq[j]
                if j < at:
                    at -= 1
            seq.insert(at + 1, _new_entry(path, tgt, comment))
        at += 1


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


def removed_before(overlay_dir: Path, kdata: CommentedMap, rel: str) -> set[tuple[str, str]]:
    """(list name, container) pairs whose CPU limit an existing rightsize JSON6902 patch ``rel`` removes."""
    listed = any(entry_path(e) == posixpath.normpath(rel) for e in (kdata.get("patches") or []))
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
