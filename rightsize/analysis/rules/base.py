"""What a recommendation rule is: its declaration (what it reads and writes), the rows it works on, and the
pipeline that puts the rules in order and checks that every value a rule reads exists by then.

A rule is a function of :class:`Rows` declared with :func:`rule`::

    @rule(after="memory_floor", reads=("mem_req", "oom_kills"), writes=("mem_req",),
          settings=("margin",), flags=("my_flag",))
    def my_rule(rows: Rows) -> None:
        \"\"\"What it decides, in one line (explain prints it).\"\"\"

- ``reads``: input columns (:data:`INPUTS`: containers joined with usage and workloads) or values an
  earlier rule writes; ``writes``: the values it sets (new ones, or an earlier rule's it changes);
  ``settings``: the policy settings (config.Policy fields) it reads; ``flags``: the flags it may set.
- ``after``: the rule it runs right after (the first rule alone has none). Of several rules after the same
  one, the longest chain (the pipeline's own continuation) runs last and the others first, by name; those
  must not touch each other's values.

The declarations are checked twice: when the pipeline is built (every read written earlier or an input,
every setting a Policy field, every anchor a rule) and while it runs (:class:`Rows` refuses a value, a
column, a setting or a flag the running rule did not declare, and a declared write it left unset).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ...config import Config, Policy
from ...schema import CONTAINER_KEY, TABLES
from ...settings import fields_of
from ...snapshot import Snapshot
from ...usage_stats import column_for, usage_column, usage_statistic_columns

EVIDENCE_COLUMNS = ("samples", "hours_covered", "oom_kills", "restarts", "cpu_throttled_ratio",
                    "cpu_throttled_seconds", "pods_seen", "gpu_engine_mean_ratio", "gpu_memory_total_bytes", "gpu_model",
                    "gpu_engine_metric")
USAGE_COLUMNS = tuple(c for c, _ in usage_statistic_columns()) + EVIDENCE_COLUMNS
WORKLOAD_COLUMNS = ("replicas", "team", "ignore", "policy_override", "hpa", "hpa_cpu_target_percent",
                    "hpa_memory_target_percent", "hpa_metrics", "hpa_unknown")
# Columns of the frame every rule starts from: containers joined with usage and workloads, plus what the join
# and the replica estimate add (recommend._frame).
FRAME_COLUMNS = ("_has_usage", "_has_workload", "average_pods", "_replicas_estimated")
INPUTS = frozenset([c.name for c in TABLES["containers"]] + list(USAGE_COLUMNS) + list(WORKLOAD_COLUMNS)
                   + list(FRAME_COLUMNS))
# Statistics a policy names that the usage table does not carry (another percentile, a decayed one):
# assign_policy adds them to the frame, Rows.policy_statistic reads them.
POLICY_STATISTICS = "policy_statistics"
# A limit holds each pod on its own, so the rules about limits and censoring read the hottest pod's
# statistics (max over pods); the request reads the basis its policy names (pooled by default).
LIMIT_BASIS = "max_over_pods"


class RuleError(Exception):
    """A rule's declaration does not match the pipeline or what the rule does (a programming error)."""


@dataclass(frozen=True)
class Rule:
    """A named step of the pipeline and what it reads and writes; ``doc`` is its docstring (what it decides,
    its reason text and flag), ``purpose`` the docstring's first line."""

    name: str
    apply: Callable[["Rows"], None]
    after: str | None = None
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    settings: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.apply) or ""

    @property
    def purpose(self) -> str:
        return self.doc.split("\n")[0]



def rule(*, after: str | None, reads: Iterable[str] = (), writes: Iterable[str] = (), settings: Iterable[str] = (),
         flags: Iterable[str] = ()) -> Callable[[Callable[["Rows"], None]], Rule]:
    """Declare a function of Rows as a rule (see the module docstring); the function's name is the rule's."""
    def declare(fn: Callable[["Rows"], None]) -> Rule:
        if not inspect.getdoc(fn):
            raise RuleError(f"rule {fn.__name__}: say what it decides in a docstring")
        return Rule(fn.__name__, fn, after, frozenset(reads), frozenset(writes), frozenset(settings), frozenset(flags))
    return declare


def usage_columns(resource: str, stats: Iterable[str], basis: str = LIMIT_BASIS) -> tuple[str, ...]:
    """The usage columns of some statistics of one resource, for a rule's ``reads``."""
    return tuple(usage_column(resource, s, basis) for s in stats)


# --- the rows a rule works on -----------------------------------------------------------------------------


class Values:
    """The values rules compute (arrays, one entry per row), by name; each access is checked against the
    running rule's declaration."""

    def __init__(self, rows: "Rows"):
        self._rows, self._data = rows, {}
        self.written: set[str] = set()

    def __getitem__(self, name: str):
        self._rows.check("reads", name)
        return self._data[name]

    def __setitem__(self, name: str, value) -> None:
        self._rows.check("writes", name)
        self._data[name] = value
        self.written.add(name)

    def update(self, **values) -> None:
        for name, value in values.items():
            self[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self._data


class Rows:
    """One run's working set: the input frame ``f`` (one row per container), the policy settings per row
    ``P`` (set by the first rule), the values ``v`` rules compute, and the reasons, flags and rule firings
    in pipeline order. ``snapshot`` and ``config`` are context (node sizes, the step, annotations' names)."""

    def __init__(self, f: pd.DataFrame, snapshot: Snapshot, config: Config):
        self.f, self.snapshot, self.config = f, snapshot, config
        self.n = len(f)
        self.P = pd.DataFrame(index=f.index)
        self.v = Values(self)
        self.reasons: list[tuple[np.ndarray, object]] = []
        self.flags: list[tuple[np.ndarray, str]] = []
        self.fired: list[tuple[str, np.ndarray]] = []
        self.current: Rule | None = None

    def check(self, what: str, name: str) -> None:
        """Refuse what the running rule did not declare (no rule running: the engine itself, unchecked)."""
        r = self.current
        if r is None:
            return
        allowed = {"reads": r.reads | r.writes, "writes": r.writes, "settings": r.settings, "flags": r.flags}[what]
        if name not in allowed:
            raise RuleError(f"rule {r.name} uses {name!r} without declaring it in its {what}")

    def column(self, col: str) -> pd.Series:
        """An input column as it is."""
        self.check("reads", col)
        return self.f[col]

    def num(self, col: str) -> np.ndarray:
        """An input column as floats, NaN where unknown (a copy)."""
        return self.column(col).to_numpy(dtype=float, na_value=np.nan).copy()

    def stat(self, resource: str, stat: str, basis: str = LIMIT_BASIS) -> np.ndarray:
        """One usage statistic per row (cores or bytes), NaN where unknown."""
        return self.num(usage_column(resource, stat, basis))

    def policy_statistic(self, resource: str, stat: np.ndarray, basis: np.ndarray, half_life: np.ndarray) -> np.ndarray:
        """Per row, the usage statistic its policy names (statistic, per-replica basis, decay), cores or
        bytes; NaN where the snapshot cannot tell (e.g. a derived statistic without histograms)."""
        self.check("reads", POLICY_STATISTICS)
        out = np.full(self.n, np.nan)
        combos = pd.DataFrame({"s": stat, "b": basis, "h": half_life}).drop_duplicates()
        for s_, b_, h_ in combos.itertuples(index=False, name=None):
            col = column_for(resource, s_, b_, h_)
            m = (stat == s_) & (basis == b_) & (half_life == h_)
            if col in self.f:
                out[m] = self.f[col].to_numpy(dtype=float, na_value=np.nan)[m]
        return out

    def add_columns(self, frame: pd.DataFrame) -> None:
        """Merge the policy statistics the usage table does not carry into the input frame (on CONTAINER_KEY)."""
        self.check("writes", POLICY_STATISTICS)
        self.v.written.add(POLICY_STATISTICS)
        if frame.shape[1] > len(CONTAINER_KEY):
            self.f = self.f.merge(frame, on=list(CONTAINER_KEY), how="left")

    def setting(self, key: str) -> pd.Series:
        self.check("settings", key)
        return self.P[key]

    def pf(self, key: str) -> np.ndarray:
        return self.setting(key).to_numpy(dtype=float)

    def ps(self, key: str) -> np.ndarray:
        return self.setting(key).to_numpy().astype(str)

    def pb(self, key: str) -> np.ndarray:
        return self.setting(key).to_numpy().astype(bool)

    def max_bound(self, explicit: np.ndarray, resource: str) -> np.ndarray:
        """Upper bound per row: the policy's max (``explicit``), else the largest node allocatable of the
        row's cluster (all clusters' largest when the cluster has no nodes), else +inf (no nodes at all)."""
        explicit = explicit.astype(float)
        nodes = self.snapshot.tables["nodes"]
        col = "allocatable_cpu_cores" if resource == "cpu" else "allocatable_memory_bytes"
        if nodes.empty or nodes[col].isna().all():
            node_max = np.full(self.n, np.inf)
        else:
            per_cluster = nodes.groupby("cluster")[col].max()
            node_max = self.column("cluster").map(per_cluster).to_numpy(dtype=float, na_value=np.nan)
            node_max = np.where(np.isnan(node_max), float(nodes[col].max()), node_max)
        return np.where(np.isnan(explicit), node_max, explicit)

    def reason(self, mask, text) -> None:
        """Add ``text`` (a string or one per row) to the reason of the rows in ``mask``."""
        mask = np.asarray(mask, dtype=bool)
        self.reasons.append((mask, text))
        self.fired.append((self.current.name if self.current else "", mask))

    def flag(self, mask, name: str) -> None:
        self.check("flags", name)
        mask = np.asarray(mask, dtype=bool)
        self.flags.append((mask, name))
        self.fired.append((self.current.name if self.current else "", mask))

    def run(self, r: Rule) -> None:
        """Apply one rule, then check it set every value it declares."""
        self.current = r
        try:
            r.apply(self)
        finally:
            self.current = None
        missing = r.writes - self.v.written
        if missing:
            raise RuleError(f"rule {r.name} declares {', '.join(sorted(missing))} in its writes but did not set them")


# --- the pipeline -----------------------------------------------------------------------------------------


class Pipeline:
    """Rules in the order their ``after`` anchors give, checked (see the module docstring)."""

    def __init__(self, rules: Iterable[Rule], outputs: Iterable[str] = ()):
        self.rules: tuple[Rule, ...] = _ordered(list(dict.fromkeys(rules)))
        self.outputs = frozenset(outputs)
        _check(self.rules, self.outputs)

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def with_rules(self, *rules: Rule) -> "Pipeline":
        """This pipeline with more rules, each placed after its anchor (a rule of the same name replaces it)."""
        names = {r.name for r in rules}
        return Pipeline([r for r in self.rules if r.name not in names] + list(rules), self.outputs)

    def run(self, rows: Rows) -> Rows:
        for r in self.rules:
            rows.run(r)
        return rows


def _ordered(rules: list[Rule]) -> tuple[Rule, ...]:
    """The rules in anchor order: each right after the rule it names. Of several rules after the same one,
    the longer chain (the rules placed after it, and after those) runs last, the others first by name."""
    by_name = {r.name: r for r in rules}
    if len(by_name) != len(rules):
        raise RuleError(f"two rules share a name: {sorted(r.name for r in rules if list(by_name).count(r.name) > 1)}")
    roots = [r for r in rules if r.after is None]
    if len(roots) != 1:
        raise RuleError(f"exactly one rule has no 'after' (the first); found {[r.name for r in roots]}")
    unknown = [f"{r.name} (after {r.after})" for r in rules if r.after is not None and r.after not in by_name]
    if unknown:
        raise RuleError(f"rules placed after no known rule: {', '.join(unknown)}")
    children: dict[str, list[Rule]] = {}
    for r in rules:
        if r.after is not None:
            children.setdefault(r.after, []).append(r)

    def visit(r: Rule) -> list[Rule]:
        chains = sorted((visit(c) for c in children.get(r.name, [])), key=lambda chain: (len(chain), chain[0].name))
        _independent(r.name, chains)
        return [r] + [x for chain in chains for x in chain]

    out = visit(roots[0])
    if len(out) != len(rules):
        raise RuleError(f"rules in an 'after' loop: {sorted(set(by_name) - {r.name for r in out})}")
    return tuple(out)


def _independent(anchor: str, chains: list[list[Rule]]) -> None:
    """Chains after the same rule run shortest first, by name, which is right only when they do not touch each
    other's values; the one longest chain (the pipeline's own continuation) may read what the others write."""
    if len(chains) > 1 and len(chains[-1]) > len(chains[-2]):
        chains = chains[:-1]
    for i, a in enumerate(chains):
        for b in chains[i + 1:]:
            wa, wb = set().union(*(r.writes for r in a)), set().union(*(r.writes for r in b))
            ta, tb = wa | set().union(*(r.reads for r in a)), wb | set().union(*(r.reads for r in b))
            shared = (wa & tb) | (wb & ta)
            if shared:
                raise RuleError(f"rules {a[0].name} and {b[0].name} both run after {anchor} and share "
                                f"{', '.join(sorted(shared))}: place one after the other")


def _check(rules: tuple[Rule, ...], outputs: frozenset[str]) -> None:
    """Every read an input or written by an earlier rule, every setting a Policy field, every output written."""
    known = {f.name for f in fields_of(Policy)}
    written: set[str] = set()
    for r in rules:
        missing = r.reads - INPUTS - written
        if missing:
            raise RuleError(f"rule {r.name} reads {', '.join(sorted(missing))}: no input column and no earlier rule "
                            "writes it")
        if r.settings - known:
            raise RuleError(f"rule {r.name} reads settings that are no Policy field: {', '.join(sorted(r.settings - known))}")
        if r.writes & INPUTS:
            raise RuleError(f"rule {r.name} writes input columns: {', '.join(sorted(r.writes & INPUTS))}")
        written |= r.writes
    if outputs - INPUTS - written:
        raise RuleError(f"the output reads {', '.join(sorted(outputs - INPUTS - written))}, which no rule writes")

