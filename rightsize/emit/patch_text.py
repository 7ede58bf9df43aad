"""The text of patch files: evidence comments stating where every value comes from, and YAML through ruamel."""
from __future__ import annotations

import functools
import io
import math
from typing import Any, Iterable, NamedTuple, Sequence

import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.representer import SafeRepresenter
from ruamel.yaml.resolver import Resolver
from ruamel.yaml.tag import Tag

from ..escape import yaml_comment
from ..formatting import cpu_limit_change, k8s_cpu, k8s_memory, mebibytes, number, usd_per_month
from ..quantity import format_duration
from .patch_model import PatchError, WorkloadPatch
from .patches_md import patches_markdown as render_patches_md


def window_text(meta: dict) -> str:
    return _window_text(meta.get("window_start"), meta.get("window_end"))


@functools.lru_cache(maxsize=16)
def _window_text(start, end) -> str:
    """The window as text, e.g. '2026-11-02T00:00:00+00:00 .. 2026-11-16T00:00:00+00:00 (14d)' (once per
    window: every patch file and kustomization says it)."""
    if not start or not end:
        return "unknown"
    try:
        span = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
        return f"{start} .. {end} ({format_duration(span)})"
    except (ValueError, TypeError):
        return f"{start} .. {end}"


def cpu_limit_text(row) -> str:
    """The CPU limit change in the one wording of every report (formatting.cpu_limit_change)."""
    return cpu_limit_change(row["cpu_limit_action"], row["cpu_limit_cores_current"], row["cpu_limit_cores_recommended"])


def evidence_lines(patch: WorkloadPatch, meta: dict) -> list[str]:
    """Comment lines (without '#') stating the evidence behind every value in the patch."""
    saving = [number(r["savings_usd_per_month"]) for r in patch.rows]
    known = [v for v in saving if not math.isnan(v)]
    total = usd_per_month(sum(known)) if known else "unknown"
    lines = [
        f"rightsize: {patch.kind} {patch.namespace}/{patch.workload} (cluster {patch.cluster})",
        f"window: {window_text(meta)}",
        f"monthly saving: {total}" + (" (some containers unknown)" if known and len(known) < len(saving) else ""),
    ]
    for r in patch.rows:
        kind = {"init": "init container", "sidecar": "native sidecar (initContainers)",
                "injected": f"injected sidecar ({r.get('injector', '')}: pod template annotations)"}.get(r["container_type"], "container")
        hours = number(r.get("hours_covered"))
        history = "" if math.isnan(hours) else f", {hours / 24:.1f} d of history"
        samples = number(r.get("samples"))
        history += "" if math.isnan(samples) else f", {samples:.0f} samples"
        lines.append(f"{kind} {r['container']}: policy {r.get('policy', '') or '?'}, "
                     f"confidence {r.get('confidence', '') or '?'}{history}")
        cpu_basis = f"{r.get('cpu_basis', '') or '?'} {k8s_cpu(r.get('cpu_basis_cores'))}"
        mem_basis = f"{r.get('memory_basis', '') or '?'} {mebibytes(r.get('memory_basis_bytes'))}"
        lines += [
            f"  cpu request:    {k8s_cpu(r['cpu_request_cores_current'])} → {k8s_cpu(r['cpu_request_cores_recommended'])}"
            f"  (usage {cpu_basis})",
            f"  memory request: {k8s_memory(r['memory_request_bytes_current'])} → {k8s_memory(r['memory_request_bytes_recommended'])}"
            f"  (usage {mem_basis}"
            + ("" if r.get("memory_basis") == "max" else f", max {mebibytes(r.get('memory_max_bytes'))}") + ")",
            f"  memory limit:   {k8s_memory(r['memory_limit_bytes_current'])} → "
            + ("unset (kept: the working set grows)" if r.get("memory_limit_action") == "keep_unset"
               else k8s_memory(r['memory_limit_bytes_recommended'])),
            f"  cpu limit:      {cpu_limit_text(r)}",
            *_runtime_evidence(r),
            *gpu_lines(r),
            f"  saving:         {usd_per_month(r['savings_usd_per_month'])}",
        ]
        extra = []
        if number(r.get("oom_kills")) > 0:
            extra.append(f"{number(r['oom_kills']):.0f} OOM kills")
        if number(r.get("cpu_throttled_ratio")) > 0:
            extra.append(f"throttled {number(r['cpu_throttled_ratio']):.0%} of CFS periods")
        flags = str(r.get("flags", "") or "")
        lines.append(f"  flags:          {flags or 'none'}" + (f" ({'; '.join(extra)})" if extra else ""))
        if str(r.get("reason", "") or ""):
            lines.append(f"  notes:          {r['reason']}")
    for note in patch.notes:
        lines.append(f"note: {note}")
    return lines


def _runtime_evidence(r) -> list[str]:
    """The runtime's memory setting, today and after, with what sized it (the JVM's live set and non-heap)."""
    if not r.get("runtime_setting") or r.get("runtime_setting_action") in ("", "none", None):
        return []
    measured = "" if math.isnan(number(r.get("live_set_bytes"))) else (
        f" (live set p99 {mebibytes(r.get('live_set_bytes'))}, non-heap {mebibytes(r.get('non_heap_bytes'))})")
    return [f"  {r['runtime']} memory: {r['runtime_setting']} {mebibytes(r.get('heap_bytes_current'))} → "
            f"{mebibytes(r.get('heap_bytes_recommended'))}, {r['runtime_setting_action'].replace('_', ' ')}{measured}"]


def gpu_lines(r) -> list[str]:
    """The GPU change of a patched container (a MIG slice the nodes offer) and its evidence; none without one."""
    new = str(r.get("gpu_resource_recommended") or "")
    if not new:
        return []
    return [f"  gpu:            {r.get('gpu_resource', '')} {number(r.get('gpu_request_count_current')):g} → {new} "
            f"{number(r.get('gpu_request_count_recommended')):g}  ({r.get('gpu_evidence', '')})"]


_TAGS: dict[str, Tag] = {}


def _tag(name: str) -> Tag:
    """The one Tag of ``name`` (see _Representer)."""
    return _TAGS.get(name) or _TAGS.setdefault(name, Tag(suffix=name))


class _Representer(SafeRepresenter):
    """ruamel's safe representer with one Tag object per tag name: it makes a new one for every node and the
    emitter decodes the name of each (ruamel.yaml.tag.Tag.trval), two thirds of a patch file's time (7.8 s of
    18,600 files at 20,000 containers; 2.5 s with one Tag per name, which decodes once and keeps it)."""

    def _tag(self, tag):
        return _tag(tag) if isinstance(tag, str) else tag

    def represent_scalar(self, tag, value, style=None, anchor=None):
        return super().represent_scalar(self._tag(tag), value, style=style, anchor=anchor)

    def represent_sequence(self, tag, sequence, flow_style=None):
        return super().represent_sequence(self._tag(tag), sequence, flow_style=flow_style)

    def represent_mapping(self, tag, mapping, flow_style=None):
        return super().represent_mapping(self._tag(tag), mapping, flow_style=flow_style)

    def resolve(self, kind, value, implicit):
        """The C emitter's dumper class is made of the emitter, this representer and ruamel's Resolver, and asks
        twice per scalar which tag its text would resolve to (does it need quotes?): the answer of each text
        is kept (_scalar_tag), the same answer ruamel's Resolver gives, as the tag's name."""
        if kind is ScalarNode:
            return _scalar_tag(value, bool(implicit[0]), bool(implicit[1]))
        return super().resolve(kind, value, implicit)


_RESOLVER = Resolver()


@functools.lru_cache(maxsize=1 << 16)
def _scalar_tag(value: str, plain: bool, quoted: bool) -> str | None:
    """The tag ruamel's Resolver gives the scalar text ``value`` (plain/quoted: its implicit flags), by name."""
    tag = _RESOLVER.resolve(ScalarNode, value, (plain, quoted))
    return None if tag is None else str(tag)


@functools.lru_cache(maxsize=1)
def _yaml() -> YAML:
    return safe_dumper(_Representer)


def safe_dumper(representer: type) -> YAML:
    """The dumper of patch files with ``representer`` (the patches' own: _Representer), a SafeRepresenter subclass of its
    own: the null representer below is added to its table."""
    # The safe dumper writes the same text as the round-trip one for the plain dicts patches are, with
    # libyaml's emitter (ruamel.yaml.clib) 3.7x faster; keys stay in the order the patch builds them.
    y = YAML(typ="safe")
    y.Representer = representer
    y.sort_base_mapping_type_on_output = False
    y.default_flow_style = False
    y.width = 4096
    y.indent(mapping=2, sequence=2, offset=0)
    # a key a strategic merge deletes (a whole GPU replaced by a MIG slice) reads "null", not an empty value
    y.representer.add_representer(type(None), lambda r, _v: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def _node(data: Any):
    """The YAML node of ``data`` as _Representer would make it, built directly for the types a patch holds (dicts,
    lists, strings, integers, booleans, None): ruamel's representer dispatches every value through Python calls,
    half of a patch file's time at 20,000 containers. A document with any other type is dumped by the representer. How a
    scalar is written (plain or quoted: a name "true" or "1e3" stays a string) is still the emitter's choice."""
    kind = type(data)
    if kind is str:
        return ScalarNode(_tag("tag:yaml.org,2002:str"), data)
    if kind is dict:
        return MappingNode(_tag("tag:yaml.org,2002:map"), [(_node(k), _node(v)) for k, v in data.items()],
                           flow_style=False)
    if kind is list:
        return SequenceNode(_tag("tag:yaml.org,2002:seq"), [_node(v) for v in data], flow_style=False)
    if kind is int:
        return ScalarNode(_tag("tag:yaml.org,2002:int"), str(data))
    if kind is bool:
        return ScalarNode(_tag("tag:yaml.org,2002:bool"), "true" if data else "false")
    if data is None:
        return ScalarNode(_tag("tag:yaml.org,2002:null"), "null")
    raise _OtherType(kind)


class _OtherType(TypeError):
    """A value _node leaves to ruamel's representer (the whole document is then dumped by it)."""


def yaml_text(data: Any, comments: Iterable[str] = ()) -> str:
    """YAML of ``data`` with ``comments`` as a leading '#' block; each comment is one line whatever names it
    holds (escape.yaml_comment: a newline, CR or other control character cannot end it and start a key)."""
    buf = io.StringIO()
    try:
        node = _node(data)
    except _OtherType:
        _yaml().dump(data, buf)
    else:
        _yaml().serialize(node, buf)
    return _head(comments) + buf.getvalue()


def _head(comments: Iterable[str]) -> str:
    return "".join(f"# {yaml_comment(c)}".rstrip() + "\n" for c in comments)


class Doc(NamedTuple):
    """A YAML document to be written by yaml_texts: its data and the comment lines heading it."""

    data: Any
    comments: list[str]


def yaml_texts(docs: Sequence[Doc]) -> list[str]:
    """``yaml_text`` of every document, the same texts, from one stream of one emitter (the set-up of an emitter
    for each of 22,800 files at 20,000 containers was a fifth of their time). Each document's text is what the
    emitter wrote between the start of that document and the next; the ``---`` every later document of a stream
    begins with is cut. A document whose text does not begin so, or that _node leaves to the representer, is
    written alone by yaml_text."""
    buf = io.StringIO()
    spans: dict[int, tuple[int, int]] = {}

    def nodes():
        for i, doc in enumerate(docs):
            try:
                node = _node(doc.data)
            except _OtherType:
                continue
            start = buf.tell()
            yield node
            spans[i] = (start, buf.tell())  # the emitter flushes at each document's end

    _yaml().serialize_all(nodes(), buf)
    text = buf.getvalue()
    out = []
    for i, doc in enumerate(docs):
        start, end = spans.get(i, (0, 0))
        body = text[start:end]
        if start and body.startswith("---\n"):
            body = body[4:]
        elif start or not end:  # not the stream's first document and no "---": written alone
            out.append(yaml_text(doc.data, doc.comments))
            continue
        out.append(_head(doc.comments) + body)
    return out


def load_all(text: str, where: str) -> list[dict]:
    """Every mapping document of a YAML stream (safe loader)."""
    try:
        docs = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError as exc:
        raise PatchError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return [d for d in docs if isinstance(d, dict)]


def smp_doc(patch: WorkloadPatch, meta: dict) -> Doc:
    """The strategic-merge patch of a workload, headed by its evidence."""
    return Doc(patch.body, evidence_lines(patch, meta))


def smp_file(patch: WorkloadPatch, meta: dict) -> str:
    return yaml_text(*smp_doc(patch, meta))


def json6902_doc(patch: WorkloadPatch) -> Doc:
    """The JSON6902 ops removing a workload's CPU limit, with the comment saying why."""
    comments = [f"rightsize: remove the CPU limit of {patch.kind} {patch.namespace}/{patch.workload} "
                f"as the policy says (cpu_limit = remove); the test op fails the build if the container moved"]
    return Doc(patch.remove_ops, comments)


def json6902_file(patch: WorkloadPatch) -> str:
    return yaml_text(*json6902_doc(patch))


def rendered(files: dict[str, str | Doc]) -> dict[str, str]:
    """``files`` with every Doc turned into its text (in one yaml_texts stream), in the same order."""
    docs = [(rel, doc) for rel, doc in files.items() if isinstance(doc, Doc)]
    texts = dict(zip((rel for rel, _ in docs), yaml_texts([doc for _, doc in docs])))
    return {rel: texts.get(rel, text) for rel, text in files.items()}


def patches_markdown(patched: list[tuple[WorkloadPatch, list[str]]], skipped: pd.DataFrame, notes: list[str],
                     meta: dict, title: str = "rightsize: resource patches for review", how_to: bool = True,
                     recommendations: pd.DataFrame | None = None, injectors: dict | None = None,
                     sections: list[str] = ()) -> str:
    """PATCHES.md: a pull-request body (at most 60,000 characters, see emit/patches_md.py); with the
    ``recommendations``, a mesh-wide summary of the injected proxies; ``sections``: more lines (how the
    changes can land)."""
    from ..analysis.injectors import mesh_summary
    from .patches_md import mesh_lines

    mesh = mesh_lines(mesh_summary(recommendations), injectors or {}) if recommendations is not None else []
    return render_patches_md(patched, skipped, notes, meta, window_text(meta), title=title, how_to=how_to,
                             mesh=list(sections) + mesh)
