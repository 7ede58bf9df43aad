"""The recommendation engine: CPU and memory requests and limits for every container, vectorised.

Units: CPU in cores, memory in bytes, history in hours/days as the column names say. NaN in a
``*_recommended`` column means "no recommendation"; leaving a CPU limit unset is
cpu_limit_action = "keep_unset" (value NaN), an explicit removal is "remove".

``compute`` runs PIPELINE, a sequence of named rules, over every container at once. A rule is a
function of ``Rows``: the input columns (containers joined with usage and workloads), the policy
settings per row and the values earlier rules computed. Its docstring says what it decides, the
reason text it adds and the flag it sets; ``explain`` prints the same rules for one workload.

``compute`` returns the wide frame with every intermediate (columns starting with ``_``);
``recommend`` returns exactly schema.RECOMMENDATION_COLUMNS.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..config import Config
from ..quantity import MIB
from ..schema import CONTAINER_KEY, RECOMMENDATION_COLUMNS, TABLES, WORKLOAD_KEY
from ..snapshot import Snapshot, conform
from . import censoring
from . import hpa as hpa_math
from . import policy as policy_mod
from . import runtime_rules
from . import statistics as stats_mod
from .rounding import round_cpu_down, round_cpu_up, round_memory_down, round_memory_up

DAY = 86400.0
_UNIT = {"cpu": "cores", "memory": "bytes"}
_STATS = tuple(stats_mod.STATISTICS)  # p50 ... max
_EVIDENCE_COLUMNS = ["samples", "hours_covered", "oom_kills", "restarts", "cpu_throttled_ratio",
                     "cpu_throttled_seconds", "pods_seen"]
_WORKLOAD_COLUMNS = ["replicas", "team", "ignore", "policy_override", "hpa", "hpa_cpu_target_percent",
                     "hpa_memory_target_percent", "hpa_metrics"]


# A limit holds each pod on its own, so the rules about limits and censoring read the hottest pod's
# statistics (max over pods); the request reads the basis its policy names (per_replica, pooled by default).
LIMIT_BASIS = "max_over_pods"


def usage_column(resource: str, stat: str, basis: str = LIMIT_BASIS) -> str:
    """The usage table's column holding one statistic ("cpu"/"memory", "p50".."max", a per-replica basis);
    the names come from the statistics registry."""
    return stats_mod.usage_column(resource, stat, basis)


_USAGE_COLUMNS = [c for c, _ in stats_mod.usage_statistic_columns()] + _EVIDENCE_COLUMNS


def recommend(snapshot: Snapshot, config: Config) -> pd.DataFrame:
    """One row per container of ``snapshot.tables['containers']`` with RECOMMENDATION_COLUMNS.

    Cost columns are NaN (analysis.cost.add_costs fills them).
    """
    wide = compute(snapshot, config)
    out = pd.DataFrame({c.name: wide[c.name] for c in RECOMMENDATION_COLUMNS}, index=wide.index)
    return out.reset_index(drop=True)


# --- the rows every rule works on --------------------------------------------------------------------


class Rows:
    """One run's working set: ``f`` (input columns, one row per container), ``P`` (policy settings per row,
    set by the first rule), ``v`` (arrays the rules compute, by name) and the reasons, flags and
    rule firings in pipeline order."""

    def __init__(self, f: pd.DataFrame, snapshot: Snapshot, config: Config):
        self.f, self.snapshot, self.config = f, snapshot, config
        self.n = len(f)
        self.P = pd.DataFrame(index=f.index)
        self.v: dict[str, np.ndarray] = {}
        self.reasons: list[tuple[np.ndarray, object]] = []
        self.flags: list[tuple[np.ndarray, str]] = []
        self.fired: list[tuple[str, np.ndarray]] = []
        self.rule = ""

    def num(self, col: str) -> np.ndarray:
        return _num(self.f, col)

    def stat(self, resource: str, stat: str, basis: str = LIMIT_BASIS) -> np.ndarray:
        """One usage statistic per row (cores or bytes), NaN where unknown."""
        return _num(self.f, usage_column(resource, stat, basis))

    def pf(self, key: str) -> np.ndarray:
        return self.P[key].to_numpy(dtype=float)

    def ps(self, key: str) -> np.ndarray:
        return self.P[key].to_numpy().astype(str)

    def pb(self, key: str) -> np.ndarray:
        return self.P[key].to_numpy().astype(bool)

    def reason(self, mask, text) -> None:
        """Add ``text`` (a string or one per row) to the reason of the rows in ``mask``."""
        mask = np.asarray(mask, dtype=bool)
        self.reasons.append((mask, text))
        self.fired.append((self.rule, mask))

    def flag(self, mask, name: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        self.flags.append((mask, name))
        self.fired.append((self.rule, mask))


@dataclass(frozen=True)
class Rule:
    """A named step of the pipeline; ``doc`` is its docstring (what it decides, its reason text and flag)."""

    name: str
    apply: Callable[[Rows], None]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.apply) or ""

    @property
    def summary(self) -> str:
        return self.doc.split("\n")[0]


# --- building the frame -------------------------------------------------------------------------------


def _frame(snapshot: Snapshot, containers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Containers left-joined with usage (on CONTAINER_KEY) and workloads (on WORKLOAD_KEY)."""
    tables = snapshot.tables
    cont = _conformed("containers", containers if containers is not None else tables["containers"])
    usage = _conformed("usage", tables["usage"]).drop_duplicates(list(CONTAINER_KEY))
    work = _conformed("workloads", tables["workloads"]).drop_duplicates(list(WORKLOAD_KEY))
    usage = usage[list(CONTAINER_KEY) + _USAGE_COLUMNS].assign(_has_usage=True)
    work = work[list(WORKLOAD_KEY) + _WORKLOAD_COLUMNS].assign(_has_workload=True)
    f = cont.reset_index(drop=True).merge(usage, on=list(CONTAINER_KEY), how="left")
    f = f.merge(work, on=list(WORKLOAD_KEY), how="left")
    f = _estimate_missing_replicas(snapshot, f)
    f["_has_usage"] = f["_has_usage"].fillna(False).astype(bool)
    f["_has_workload"] = f["_has_workload"].fillna(False).astype(bool)
    f["ignore"] = f["ignore"].fillna(False).astype(bool)
    f["hpa"] = f["hpa"].fillna(False).astype(bool)
    f["team"] = f["team"].fillna("").astype(str)
    f["policy_override"] = f["policy_override"].fillna("").astype(str)
    return f


def _estimate_missing_replicas(snapshot: Snapshot, f: pd.DataFrame) -> pd.DataFrame:
    """Replicas used for cost (cost.pods_for_cost: batch and autoscaled work at the average pods it ran,
    pod-hours / window hours, whatever the inventory says). Marked ``_replicas_estimated``; the average
    itself goes to ``average_pods``."""
    from .cost import pods_for_cost

    pods = pods_for_cost(snapshot, f)
    f["replicas"] = pods["replicas"].to_numpy()
    f["average_pods"] = pods["average_pods"].to_numpy()
    f["_replicas_estimated"] = pods["estimated"].to_numpy(dtype=bool)
    return f


def _conformed(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """The table as the schema describes it; a validated snapshot's tables pass through untouched."""
    if all(c.name in df.columns for c in TABLES[name]):
        return df
    return conform(name, df)


def _num(f: pd.DataFrame, col: str) -> np.ndarray:
    return f[col].to_numpy(dtype=float, na_value=np.nan).copy()


def _usage_stat(f: pd.DataFrame, resource: str, stat: np.ndarray, basis: np.ndarray, half_life: np.ndarray) -> np.ndarray:
    """Per row, the usage statistic its policy names (resource, statistic, per-replica basis, decay),
    cores or bytes; NaN where the snapshot cannot tell (e.g. a derived statistic without histograms)."""
    out = np.full(len(f), np.nan)
    combos = pd.DataFrame({"s": stat, "b": basis, "h": half_life}).drop_duplicates()
    for s_, b_, h_ in combos.itertuples(index=False, name=None):
        col = stats_mod.column_for(resource, s_, b_, h_)
        m = (stat == s_) & (basis == b_) & (half_life == h_)
        if col in f:
            out[m] = _num(f, col)[m]
    return out


def _basis_text(per_replica: np.ndarray, half_life: np.ndarray) -> np.ndarray:
    """' (busiest)', ' (max_over_pods, decayed)' ... after a statistic's name; '' for the pooled default."""
    parts = np.where(per_replica == stats_mod.DEFAULT_BASIS, "", per_replica.astype(object))
    parts = np.where(half_life > 0, np.where(parts == "", "decayed", parts + ", decayed"), parts)
    return np.where(parts == "", "", " (" + parts.astype(object) + ")").astype(str)


def _derived(snapshot: Snapshot, f: pd.DataFrame, P: pd.DataFrame) -> pd.DataFrame:
    """Add the statistics the assigned policies name that the usage table does not carry (another
    percentile, a decayed one), computed from the snapshot's histograms."""
    needed = set()
    for res, key in (("cpu", "cpu_request_percentile"), ("memory", "memory_request_percentile")):
        combos = P[[key, "per_replica", "usage_half_life"]].drop_duplicates()
        needed |= {(res, s_, b_, float(h_)) for s_, b_, h_ in combos.itertuples(index=False, name=None)}
    end = snapshot.meta.get("window_end")
    extra = stats_mod.derived_statistics(snapshot.tables.get("usage_histograms", pd.DataFrame()), needed,
                                         pd.Timestamp(end) if end else None)
    if extra.shape[1] <= len(stats_mod.CONTAINER_KEY):
        return f
    return f.merge(extra, on=list(CONTAINER_KEY), how="left")


def _max_bounds(snapshot: Snapshot, f: pd.DataFrame, pcol: np.ndarray, kind: str) -> np.ndarray:
    """Upper bound per row: the policy's max, else the largest node allocatable of the row's cluster
    (all clusters' largest when the cluster has no nodes), else +inf (no nodes at all)."""
    explicit = pcol.astype(float)
    nodes = snapshot.tables["nodes"]
    col = "allocatable_cpu_cores" if kind == "cpu" else "allocatable_memory_bytes"
    if nodes.empty or nodes[col].isna().all():
        node_max = np.full(len(f), np.inf)
    else:
        per_cluster = nodes.groupby("cluster")[col].max()
        node_max = f["cluster"].map(per_cluster).to_numpy(dtype=float, na_value=np.nan)
        node_max = np.where(np.isnan(node_max), float(nodes[col].max()), node_max)
    return np.where(np.isnan(explicit), node_max, explicit)


def _differs(cur: np.ndarray, rec: np.ndarray, frac: np.ndarray, absolute: np.ndarray) -> np.ndarray:
    """True where ``rec`` is a real change from ``cur``: beyond BOTH the relative and absolute thresholds,
    or setting something currently unset."""
    both = ~np.isnan(cur) & ~np.isnan(rec)
    d = np.abs(np.where(both, rec - cur, 0.0))
    big = both & (d > frac * np.where(both, cur, 0.0)) & (d > absolute)
    return big | (np.isnan(cur) & ~np.isnan(rec))


# --- text helpers --------------------------------------------------------------------------------------


def _finite(values: np.ndarray) -> np.ndarray:
    """Values fit for text: unknown or infinite -> 0 (their rows' masks leave them out), and within int64."""
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), -1e15, 1e15)


def _cpu_text(cores: np.ndarray) -> pd.Series:
    return pd.Series(np.round(_finite(cores) * 1000).astype(np.int64)).astype(str) + "m"


def _mem_text(num_bytes: np.ndarray) -> pd.Series:
    return pd.Series(np.ceil(_finite(num_bytes) / MIB).astype(np.int64)).astype(str) + "Mi"


def _pct_text(fraction: np.ndarray) -> pd.Series:
    return pd.Series(np.round(_finite(fraction) * 100).astype(np.int64)).astype(str) + "%"


def _num_text(values: np.ndarray, digits: int = 1) -> pd.Series:
    rounded = np.round(_finite(values), digits)
    return pd.Series(rounded.astype(np.int64) if digits == 0 else rounded).astype(str)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def _join(parts: list[tuple[np.ndarray, object]], n: int, sep: str) -> np.ndarray:
    """Per row, the texts whose mask is True, joined by ``sep`` (element-wise concatenation of object arrays)."""
    out = np.full(n, "", dtype=object)
    for mask, text in parts:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        if isinstance(text, pd.Series):
            texts = text.to_numpy(dtype=object)
        elif isinstance(text, np.ndarray):
            texts = text.astype(object)
        else:
            texts = np.full(n, text, dtype=object)
        glue = np.where(mask & (out != ""), sep, "").astype(object)
        out = out + glue + np.where(mask, texts, "").astype(object)
    return out


# --- the rules, in pipeline order -----------------------------------------------------------------------


def assign_policy(rows: Rows) -> None:
    """Policy: which policy applies to each container; its settings become columns.

    Which policy applies: a [[overrides]] entry, the workload's policy annotation, [[policy_rules]], the
    non-production shortcuts, else [recommend] default_policy (analysis/policy.py); its settings
    become per-row columns for the rules below.

    Reason: the policy note, e.g. "unknown policy 'x' in annotation rightsize.io/policy ignored".
    Flag: none.
    """
    pol = policy_mod.assign_policies(rows.f, rows.snapshot.tables.get("namespaces"), rows.config)
    rows.P = policy_mod.policy_params(rows.config, pol["policy"])
    rows.f = _derived(rows.snapshot, rows.f, rows.P)  # statistics the usage table does not carry (p97, decayed)
    rows.f["policy"] = pol["policy"].to_numpy()
    rows.f["production"] = rows.P["production"].to_numpy(dtype=bool)
    rows.f["_policy_source"] = pol["policy_source"].to_numpy()
    rows.f["_policy_note"] = pol["policy_note"].to_numpy()
    rows.v["ignored_cfg"] = pol["ignored_by_config"].to_numpy(dtype=bool)
    rows.reason(pol["policy_note"].to_numpy(dtype=object) != "", pol["policy_note"])


def _history_days(rows: Rows) -> np.ndarray:
    """Days of history (VPA: min(lifespan, samples at 1/min); here the snapshot's step instead of a minute)."""
    step = rows.snapshot.meta.get("step_seconds") or 0
    days = np.nan_to_num(rows.num("hours_covered"), nan=0.0) / 24.0
    if step:
        days = np.minimum(days, np.nan_to_num(rows.num("samples"), nan=0.0) * float(step) / DAY)
    return days


def eligibility(rows: Rows) -> None:
    """Eligibility: who gets a recommendation (not opted out, enough usage history).

    Which containers get a recommendation: not opted out (config override or annotation), with usage
    data, at least min_history of history and min_samples samples.

    Reason: "ignored by a config override", "ignored by annotation <annotation>", "no usage data",
    "too little history: <d>d covered, needs <d>d", "too few samples: <n>, needs <n>".
    Flag: none.
    """
    f, v = rows.f, rows.v
    has_usage = f["_has_usage"].to_numpy(dtype=bool)
    ignored_ann = f["ignore"].to_numpy(dtype=bool)
    ignored = v["ignored_cfg"] | ignored_ann
    hours, samples = rows.num("hours_covered"), rows.num("samples")
    cpu_stat, mem_stat = rows.ps("cpu_request_percentile"), rows.ps("memory_request_percentile")
    per_replica, half_life = rows.ps("per_replica"), rows.pf("usage_half_life")
    cpu_obs = _usage_stat(f, "cpu", cpu_stat, per_replica, half_life)
    mem_basis = _usage_stat(f, "memory", mem_stat, per_replica, half_life)
    no_data = ~has_usage | (np.isnan(cpu_obs) & np.isnan(mem_basis))
    short = np.nan_to_num(hours) * 3600 < rows.pf("min_history")
    few = np.nan_to_num(samples) < rows.pf("min_samples")
    no_rec = ~ignored & (no_data | short | few)
    days = _history_days(rows)
    v.update(has_usage=has_usage, ignored=ignored, no_rec=no_rec, rec=~ignored & ~no_rec, days=days,
             cpu_stat=cpu_stat, mem_stat=mem_stat, stat_text=_basis_text(per_replica, half_life), cpu_obs=cpu_obs, cpu_basis=cpu_obs.copy(), mem_basis=mem_basis)
    history_txt = ("too little history: " + _num_text(days) + "d covered, needs "
                   + _num_text(rows.pf("min_history") / DAY) + "d")
    samples_txt = ("too few samples: " + pd.Series(np.nan_to_num(samples).astype(np.int64)).astype(str) + ", needs "
                   + pd.Series(rows.pf("min_samples").astype(np.int64)).astype(str))
    data = ~ignored & has_usage & ~no_data
    rows.reason(v["ignored_cfg"], "ignored by a config override")
    rows.reason(ignored_ann & ~v["ignored_cfg"], f"ignored by annotation {rows.config.kubernetes.ignore_annotation}")
    rows.reason(~ignored & no_data, "no usage data")
    rows.reason(data & short, history_txt)
    rows.reason(data & few, samples_txt)


def confidence(rows: Rows) -> None:
    """Confidence: a short history widens the margin (VPA-style) and lowers the confidence.

    VPA-style confidence: with less than full_confidence_history of history the margin is widened by
    ((1 + m / days) / (1 + m / full days)) ^ e (m = confidence_multiplier, e = confidence_exponent), and
    the confidence is high (full history), medium (from medium_confidence_history) or low.

    Reason: "margin widened to <p>% for <d>d of history".
    Flag: low_confidence.
    """
    v = rows.v
    days, full_days = v["days"], rows.pf("full_confidence_history") / DAY
    safe_days = np.maximum(days, 1.0 / 24.0)
    mult, expo = rows.pf("confidence_multiplier"), rows.pf("confidence_exponent")
    widen = np.where(days < full_days, ((1 + mult / safe_days) / (1 + mult / full_days)) ** expo, 1.0)
    v["widen"] = np.maximum(widen, 1.0)
    v["margin"] = rows.pf("margin")
    conf = np.where(days >= full_days, "high",
                    np.where(days >= rows.pf("medium_confidence_history") / DAY, "medium", "low"))
    v["confidence"] = np.where(v["rec"], conf, "")
    eff = (1 + v["margin"]) * v["widen"]
    rows.reason(v["rec"] & (v["widen"] > 1.0 + 1e-9),
                "margin widened to " + _pct_text(eff - 1) + " for " + _num_text(days) + "d of history")
    rows.flag(v["rec"] & (v["confidence"] == "low"), "low_confidence")


def hpa_scope(rows: Rows) -> None:
    """HPA scope: which requests an HPA scales on, kept or moved with its target.

    Which requests an HPA scales on: CPU or memory utilization targets, unless allow_hpa_request_change.
    With hpa_request = keep such a request stays as it is; with co_adjust (the default) hpa_coadjust
    moves the HPA's target with it.

    Reason: none here (hpa_coadjust says what happened).
    Flag: hpa (any HPA, whatever it scales on).
    """
    v, f = rows.v, rows.f
    allow = rows.pb("allow_hpa_request_change")
    keep_mode = rows.ps("hpa_request") == "keep"
    for res in ("cpu", "memory"):
        target = rows.num(f"hpa_{res}_target_percent")
        on = ~np.isnan(target) & ~allow
        v[f"hpa_{res}_on"] = on
        v[f"keep_{res}"] = on & keep_mode & ~np.isnan(rows.num(f"{res}_request_{_UNIT[res]}"))
    hpa_any = (f["hpa"].to_numpy(dtype=bool) | ~np.isnan(rows.num("hpa_cpu_target_percent"))
               | ~np.isnan(rows.num("hpa_memory_target_percent")))
    rows.flag(~v["ignored"] & hpa_any, "hpa")


def cpu_throttling(rows: Rows) -> None:
    """Censored CPU: a throttled container's usage is a lower bound; estimate what the limit hid.

    A container with a CPU limit, throttled in more than throttling_threshold of its CFS
    periods (without CFS data: whose usage percentiles sit at the limit), used at most its limit, so its
    usage is a lower bound. The CPU held back is estimated from the throttled seconds (else assumed
    throttled_excess_default x the limit): E = throttled seconds / (throttled share x pod-seconds) above
    the limit in a throttled period, and with that excess taken as exponential the demand's q-quantile is
    limit + E ln(share / (1 - q)) (censoring.py). Where the share reaches the request's statistic, the
    statistic becomes that estimate, so the request rises with the hidden demand.

    Reason: "throttled in <r>% of CFS periods (threshold <t>%)", "demand hidden by the limit: ...".
    Flag: throttled, demand_hidden.
    """
    v = rows.v
    limit, ratio = rows.num("cpu_limit_cores"), rows.num("cpu_throttled_ratio")
    at_limit = censoring.share_at_limit({q.name: rows.stat("cpu", q.name) for q in stats_mod.QUANTILES}, limit)
    share = np.where(np.isnan(ratio), at_limit, ratio)
    throttled = v["has_usage"] & ~np.isnan(limit) & (share > rows.pf("throttling_threshold"))
    excess, measured = censoring.cpu_excess(rows.num("cpu_throttled_seconds"), share, rows.num("hours_covered"),
                                            rows.num("replicas"), limit, rows.pf("throttled_excess_default"))
    # the request's statistic as a quantile (any pNN; the max is estimated as the p99)
    q = pd.Series(v["cpu_stat"]).map(lambda s: min(stats_mod.parse_statistic(s), 0.99)).to_numpy(dtype=float)
    est = censoring.demand_quantile(limit, excess, share, q)
    hidden = throttled & ~np.isnan(est) & (est > np.nan_to_num(v["cpu_obs"], nan=np.inf))
    v.update(throttled=throttled, throttled_share=share, cpu_excess=excess, cpu_excess_measured=measured,
             cpu_estimate=np.where(hidden, est, np.nan), demand_hidden=hidden,
             cpu_p99_estimate=np.where(throttled, censoring.demand_quantile(limit, excess, share, 0.99), np.nan))
    v["cpu_basis"] = np.where(hidden, est, v["cpu_obs"])
    rec = v["rec"]
    source = np.where(measured, " held back on average (throttled seconds)",
                      " assumed held back (" + _pct_text(rows.pf("throttled_excess_default")).to_numpy(dtype=object)
                      + " of the limit: no throttled seconds)")
    seen = np.where(np.isnan(ratio), " (usage at the limit, no CFS data)", "").astype(object)
    rows.reason(rec & throttled, "throttled in " + _pct_text(share) + " of CFS periods" + seen
                + " (threshold " + _pct_text(rows.pf("throttling_threshold")) + ")")
    rows.reason(rec & hidden, "demand hidden by the limit: " + _cpu_text(share * excess) + source
                + ", estimated " + pd.Series(v["cpu_stat"]) + " demand " + _cpu_text(est))
    rows.flag(~v["ignored"] & throttled, "throttled")
    rows.flag(rec & hidden, "demand_hidden")


def cpu_request(rows: Rows) -> None:
    """CPU request: the statistic x (1 + margin) x the widening, bounded, rounded up.

    CPU request = the policy's statistic (as cpu_throttling left it) x (1 + margin) x the confidence
    widening, at least min_cpu, at most max_cpu (empty: the largest node's allocatable), rounded up to
    5m / 10m / 50m steps.

    Reason: "CPU from <stat> <value> +<margin>%", "no CPU usage data", "CPU capped at the max".
    Flag: none.
    """
    v = rows.v
    basis = v["cpu_basis"]
    max_cpu = _max_bounds(rows.snapshot, rows.f, rows.pf("max_cpu"), "cpu")
    raw = basis * (1 + v["margin"]) * v["widen"]
    bounded = np.minimum(np.maximum(raw, rows.pf("min_cpu")), max_cpu)
    req = round_cpu_up(bounded)
    v["cpu_req"] = np.where(req > max_cpu, round_cpu_down(max_cpu), req)
    v.update(cpu_raw=raw, max_cpu=max_cpu, cpu_capped=raw > max_cpu)
    rec, keep = v["rec"], v["keep_cpu"]
    rows.reason(rec & ~keep & ~np.isnan(basis), "CPU from " + _joined(v["cpu_stat"], v["stat_text"]) + " " + _cpu_text(basis)
                + " +" + _pct_text(v["margin"]))
    rows.reason(rec & np.isnan(basis), "no CPU usage data")
    rows.reason(rec & v["cpu_capped"], "CPU capped at the max")


def _joined(a, b) -> pd.Series:
    """Element-wise a + b of two arrays of text (numpy < 2 has no string addition; pandas' works on objects)."""
    return pd.Series(np.asarray(a, dtype=object)) + pd.Series(np.asarray(b, dtype=object))


def memory_request(rows: Rows) -> None:
    """Memory request before its floor: the statistic x (1 + margin) x the widening, bounded.

    Memory request before its safety floor = the policy's statistic x (1 + margin) x the widening, within
    [min_memory, max_memory]. The floor: the observed max working set for the limit everywhere and for the
    request where memory_request_covers_max (production: limit = request, so the request holds the peak).

    Reason: "memory from <stat> <value> +<margin>%", "no memory usage data".
    Flag: none.
    """
    v = rows.v
    basis = v["mem_basis"]
    peak = np.fmax.reduce([rows.stat("memory", p) for p in _STATS])  # the max; any statistic if it is missing
    max_mem = _max_bounds(rows.snapshot, rows.f, rows.pf("max_memory"), "memory")
    raw = basis * (1 + v["margin"]) * v["widen"]
    v.update(mem_raw=raw, max_mem=max_mem, mem_pre=np.minimum(np.maximum(raw, rows.pf("min_memory")), max_mem),
             peak=peak, floor_lim=peak, floor_req=np.where(rows.pb("memory_request_covers_max"), peak, np.nan),
             oom=np.zeros(rows.n, dtype=bool))
    rec, keep = v["rec"], v["keep_memory"]
    rows.reason(rec & ~keep & ~np.isnan(basis), "memory from " + _joined(v["mem_stat"], np.where(v["mem_stat"] == "max", "", v["stat_text"]))
                + " " + _mem_text(basis)
                + " +" + _pct_text(v["margin"]))
    rows.reason(rec & np.isnan(basis), "no memory usage data")


def oom_demand(rows: Rows) -> None:
    """Censored memory: an OOM-killed container's peak and limit are lower bounds, escalated with the evidence.

    An OOM-killed container's working set stops at its limit: its observed peak and its
    current limit are lower bounds of its demand. The bound is escalated with the evidence (censoring.py):
    a working set that climbs evenly to the limit is a leak, projected over its pods' life (from pods
    seen and other restarts, at most oom_horizon): bound + (bound - base) x kills in that life; anything
    else is a spike: bound x min(1 + oom_escalation x ln(1 + kills per week per replica), oom_max_factor).
    VPA's max(peak x oom_bump_factor, peak + oom_bump_min) stays the floor; the escalation is capped by the
    largest node's allocatable (or max_memory); the current request and limit are never lowered.

    Reason: "OOM-killed <n>x (<k>/week per replica), <spike|leak>: ...", "... capped at the largest node's
    allocatable <v>".
    Flag: oom_risk, memory_leak.
    """
    v = rows.v
    oom = v["has_usage"] & (np.nan_to_num(rows.num("oom_kills")) > 0)
    peak, max_mem = v["peak"], v["max_mem"]
    est = censoring.memory_demand(
        peak, rows.num("memory_limit_bytes"), rows.stat("memory", "p50", "pooled"), rows.stat("memory", "p90", "pooled"),
        rows.num("oom_kills"), rows.num("restarts"), rows.num("pods_seen"), rows.num("hours_covered"),
        rows.num("replicas"), escalation=rows.pf("oom_escalation"), max_factor=rows.pf("oom_max_factor"),
        horizon_hours=rows.pf("oom_horizon") / 3600.0)
    vpa = np.maximum(peak * rows.pf("oom_bump_factor"), peak + rows.pf("oom_bump_min"))
    capped = oom & (est["demand"] > max_mem)
    demand = np.where(oom, np.fmin(est["demand"], max_mem), np.nan)
    floor = np.fmax(np.fmax(peak, vpa), demand)
    cur_req, cur_lim = rows.num("memory_request_bytes"), rows.num("memory_limit_bytes")
    floor_req = np.where(oom, np.fmax(floor, cur_req), v["floor_req"])
    v.update(oom=oom, oom_vpa=np.where(oom, vpa, np.nan), mem_estimate=demand, oom_bound=est["bound"],
             oom_per_week=est["per_week"], oom_life_hours=est["life_hours"], oom_capped=capped,
             oom_pattern=np.where(oom, est["pattern"], ""), floor_req=floor_req,
             floor_lim=np.where(oom, np.fmax(floor_req, cur_lim), np.where(np.isnan(peak), np.nan, v["floor_lim"])))
    leak = oom & (est["pattern"] == "leak")
    bound_txt = np.where(np.isnan(cur_lim), "observed peak " + _mem_text(peak).to_numpy(dtype=object),
                         "observed peak " + _mem_text(peak).to_numpy(dtype=object) + " and limit "
                         + _mem_text(cur_lim).to_numpy(dtype=object))
    how = np.where(leak, "leak climbing to the limit, projected over " + _num_text(np.minimum(
        est["life_hours"], rows.pf("oom_horizon") / 3600) / 24).to_numpy(dtype=object) + "d of pod life",
        "spike, escalated x" + _num_text(_ratio(est["demand"], est["bound"]), 2).to_numpy(dtype=object))
    rec = v["rec"]
    rows.reason(rec & oom, "OOM-killed " + pd.Series(np.nan_to_num(rows.num("oom_kills")).astype(np.int64)).astype(str)
                + "x (" + _num_text(est["per_week"]) + "/week per replica), " + how + ": " + bound_txt
                + " are lower bounds; memory >= " + _mem_text(floor) + " (VPA floor max(peak x "
                + _num_text(rows.pf("oom_bump_factor"), 2) + ", peak + " + _mem_text(rows.pf("oom_bump_min"))
                + ") = " + _mem_text(vpa) + "), never lowered")
    rows.reason(rec & capped, "OOM escalation capped at the largest node's allocatable " + _mem_text(max_mem))
    rows.flag(~v["ignored"] & oom, "oom_risk")
    rows.flag(~v["ignored"] & leak, "memory_leak")


def memory_floor(rows: Rows) -> None:
    """Memory floor: the request holds its safety floor, rounded up; above the max only for the floor.

    The memory request is at least its safety floor (memory_request, oom_demand), rounded up to whole MiB
    (16 MiB steps from 1 GiB); it exceeds max_memory (the largest node) only when the floor needs it.

    Reason: "memory raised to the observed max working set", "memory capped at the max",
    "memory above the max (largest node) because observed usage needs it".
    Flag: none.
    """
    v = rows.v
    floor_req, pre, max_mem = v["floor_req"], v["mem_pre"], v["max_mem"]
    exact = np.fmax(pre, floor_req)
    exact = np.where(np.isnan(v["mem_basis"]), np.nan, exact)
    raised = ~np.isnan(floor_req) & ~np.isnan(exact) & (floor_req > np.nan_to_num(pre, nan=-1.0))
    req = round_memory_up(exact)
    down = round_memory_down(max_mem)
    req = np.where((req > max_mem) & (down >= np.nan_to_num(floor_req, nan=0.0)), down, req)
    above = req > max_mem
    v.update(mem_req=req, mem_raised=raised, mem_above_max=above, mem_capped=(v["mem_raw"] > max_mem) & ~above)
    rec, keep = v["rec"], v["keep_memory"]
    rows.reason(rec & ~v["oom"] & ~keep & raised, "memory raised to the observed max working set")
    rows.reason(rec & v["mem_capped"], "memory capped at the max")
    rows.reason(rec & above, "memory above the max (largest node) because observed usage needs it")


def hpa_coadjust(rows: Rows) -> None:
    """HPA co-adjustment: the HPA's target moves with the request so the scaling point stays.

    Requests an HPA scales on (hpa_scope). keep: the request stays (a memory request under its safety
    floor is still raised). co_adjust: the requests follow usage and the HPA's target moves so the
    scaling point stays: target x old pod request = new target x new pod request (summed over the main
    containers), clamped to [hpa_target_min, hpa_target_max]; above the max the requests grow to keep
    the point, below the min the point rises with the requests (analysis/hpa.py). A workload where some
    container has no request or no recommendation keeps its requests.

    Reason: "HPA scales on CPU utilization: CPU request kept", "HPA target CPU <t>% -> <t>% keeps the
    scaling point (...)", and what a clamp changed.
    Flag: none (hpa_scope sets hpa).
    """
    v, f = rows.v, rows.f
    v["cpu_req_usage"], v["mem_req_usage"] = v["cpu_req"].copy(), v["mem_req"].copy()  # before this rule
    groups = pd.MultiIndex.from_frame(f[list(WORKLOAD_KEY)]).factorize()[0] if rows.n else np.zeros(0, dtype=int)
    counted = f["container_type"].fillna("main").replace("", "main").to_numpy() == "main"
    _coadjust(rows, "cpu", groups, counted, round_cpu_up, _cpu_text)
    _coadjust(rows, "memory", groups, counted, round_memory_up, _mem_text)
    _keep_requests(rows)


def _coadjust(rows: Rows, res: str, groups, counted, round_up, text) -> None:
    v, unit = rows.v, _UNIT[res]
    key = "cpu_req" if res == "cpu" else "mem_req"
    target, cur = rows.num(f"hpa_{res}_target_percent"), rows.num(f"{res}_request_{unit}")
    v[f"hpa_{res}_target_new"] = np.full(rows.n, np.nan)
    wanted = v[f"hpa_{res}_on"] & ~v[f"keep_{res}"] & v["rec"]
    if not wanted.any():
        return
    lo, hi = rows.pf("hpa_target_min"), rows.pf("hpa_target_max")
    old_total, old_ok = hpa_math.pod_sums(groups, counted, cur)
    rec_total, rec_ok = hpa_math.pod_sums(groups, counted, np.where(wanted, v[key], np.nan))
    # a ContainerResource metric is one container's utilization, not the pod's sum: left as it is
    one_container = rows.f["hpa_metrics"].fillna("").str.contains(f"ContainerResource:{res}", regex=False).to_numpy()
    ok = wanted & old_ok & rec_ok & ~one_container
    _, factor = hpa_math.co_adjust(target, old_total, rec_total, lo, hi)
    v[key] = np.where(ok & counted & (factor > 1), round_up(v[key] * factor), v[key])
    new_total, _ = hpa_math.pod_sums(groups, counted, v[key])
    new_target = np.where(ok, hpa_math.final_target(target, old_total, new_total, lo, hi), np.nan)
    v[f"hpa_{res}_target_new"] = new_target
    v[f"keep_{res}"] = v[f"keep_{res}"] | (wanted & ~ok & ~np.isnan(cur))
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = target * old_total / rec_total
    label = "CPU" if res == "cpu" else "memory"
    point = target / 100 * old_total
    rows.reason(ok, f"HPA target {label} " + _num_text(target, 0) + "% -> " + _num_text(new_target, 0)
                + "% keeps the scaling point (" + text(point) + " per pod: " + _num_text(target, 0) + "% x "
                + text(old_total) + " = " + _num_text(new_target, 0) + "% x " + text(new_total) + ")")
    rows.reason(ok & (raw > hi), f"{label} requests raised so the HPA target stays at most " + _num_text(hi, 0) + "%")
    rows.reason(ok & (raw < lo), "HPA target would fall to " + _num_text(raw, 0) + "%: kept at " + _num_text(lo, 0)
                + "%, the scaling point rises to " + text(lo / 100 * new_total) + " per pod (the pods use more than "
                "the HPA lets them; is it at maxReplicas?)")
    rows.reason(wanted & one_container, f"HPA scales on one container's {label} utilization (ContainerResource): "
                "request kept")
    rows.reason(wanted & ~ok & ~one_container, f"HPA scales on {label} utilization and not every container has a "
                "request and a recommendation: request kept")


def _keep_requests(rows: Rows) -> None:
    v = rows.v
    cur_cpu, cur_mem = rows.num("cpu_request_cores"), rows.num("memory_request_bytes")
    keep_cpu, keep_mem = v["keep_cpu"], v["keep_memory"]
    v["cpu_req"] = np.where(keep_cpu, cur_cpu, v["cpu_req"])
    floor = v["floor_req"]
    needs = keep_mem & ~np.isnan(floor) & (floor > cur_mem)
    # A kept request that needs no raise stays byte-exact: rounding would churn it.
    v["mem_req"] = np.where(keep_mem, np.where(needs, round_memory_up(np.fmax(cur_mem, floor)), cur_mem), v["mem_req"])
    v["mem_raised"] = np.where(keep_mem, needs, v["mem_raised"])
    rec, policy_keep = v["rec"], rows.ps("hpa_request") == "keep"
    rows.reason(rec & keep_cpu & policy_keep, "HPA scales on CPU utilization: CPU request kept")
    rows.reason(rec & keep_mem & policy_keep & ~needs, "HPA scales on memory utilization: memory request kept")
    rows.reason(rec & keep_mem & needs, "HPA scales on memory utilization, but the request is under the observed max: raised")


def memory_limit(rows: Rows) -> None:
    """Memory limit: by policy, never below its safety floor or the request.

    Memory limit by policy: request (equal to it), factor (request x memory_limit_factor) or proportional
    (the current limit:request ratio), never below the limit's safety floor (observed max; after an OOM
    kill the OOM floor and the current limit) nor the request; rounded up.

    Reason: none (the floors say why in memory_floor and oom_demand).
    Flag: none.
    """
    v = rows.v
    mode, req = rows.ps("memory_limit"), v["mem_req"]
    cur_req, cur_lim = rows.num("memory_request_bytes"), rows.num("memory_limit_bytes")
    positive = np.nan_to_num(cur_req) > 0
    ratio = np.where(~np.isnan(cur_lim) & positive, cur_lim / np.where(positive, cur_req, 1.0), 1.0)
    lim = np.where(mode == "factor", req * rows.pf("memory_limit_factor"),
                   np.where(mode == "proportional", req * np.maximum(ratio, 1.0), req))
    lim = np.fmax(lim, v["floor_lim"])
    lim = np.where(np.isnan(req), np.nan, np.fmax(lim, req))
    v.update(mem_lim=round_memory_up(lim), memory_limit_mode=mode)


def cpu_limit(rows: Rows) -> None:
    """CPU limit: by policy; a throttled one is raised to the estimated demand or removed, never lowered.

    CPU limit by policy: unset (none recommended; an existing one stays proportional to the request),
    proportional, factor (request x cpu_limit_factor) or remove. A throttled container's limit is removed
    (throttled_limit_action = remove, or cpu_limit = remove) or raised to at least the estimated p99 demand
    (cpu_throttling), the current limit x (1 + throttled_limit_raise) and the observed max x (1 + margin),
    so next week is not throttled: it is never lowered. Every limit is at least the request and the
    observed p99 usage, and the observed max where cpu_limit_covers_max (non-production).

    Reason: "CPU limit raised to <v> (estimated p99 demand <v>)", "CPU limit removed (throttled)",
    "CPU limit raised to the p99 usage", "CPU limit raised to the observed max usage".
    Flag: none (cpu_throttling sets throttled).
    """
    v = rows.v
    mode, req, cur_req, cur = rows.ps("cpu_limit"), v["cpu_req"], rows.num("cpu_request_cores"), rows.num("cpu_limit_cores")
    has = ~np.isnan(cur)
    base_req = np.where(np.nan_to_num(cur_req) > 0, cur_req, cur)  # an unset request defaults to the limit
    ratio = np.maximum(np.where(has, cur / np.where(base_req > 0, base_req, 1.0), np.nan), 1.0)
    action = np.full(rows.n, "keep_unset", dtype=object)
    proportional = np.isin(mode, ["unset", "proportional"]) & has
    lim = np.where(proportional, req * ratio, np.where(mode == "factor", req * rows.pf("cpu_limit_factor"), np.nan))
    action[proportional | (mode == "factor")] = "set"
    remove = (mode == "remove") & has
    action[remove] = "remove"
    thr = v["throttled"]
    thr_remove = thr & ((rows.ps("throttled_limit_action") == "remove") | remove)
    thr_raise = thr & ~thr_remove
    raised = np.fmax.reduce([np.nan_to_num(lim, nan=0.0), np.nan_to_num(v["cpu_p99_estimate"], nan=0.0),
                             np.nan_to_num(rows.stat("cpu", "max"), nan=0.0) * (1 + v["margin"]),
                             cur * (1 + rows.pf("throttled_limit_raise"))])
    lim = np.where(thr_raise, raised, lim)
    action[thr_raise], action[thr_remove] = "set", "remove"
    p99, top = rows.stat("cpu", "p99"), np.fmax.reduce([rows.stat("cpu", p) for p in _STATS])
    covers = rows.pb("cpu_limit_covers_max") & ~np.isnan(top)
    below_p99 = (action == "set") & (np.nan_to_num(lim, nan=np.inf) < np.nan_to_num(p99, nan=-np.inf))
    below_max = (action == "set") & covers & (np.fmax(np.nan_to_num(lim, nan=np.inf), np.nan_to_num(p99)) < top)
    lim = np.fmax(np.fmax(lim, p99), req)
    lim = round_cpu_up(np.where(action == "set", np.where(covers, np.fmax(lim, top), lim), np.nan))
    action[np.isnan(req)] = "none"
    v.update(cpu_lim=np.where(np.isnan(req), np.nan, lim), cpu_action=action, cpu_limit_mode=mode)
    rec = v["rec"]
    rows.reason(rec & thr_raise, "CPU limit raised to " + _cpu_text(lim) + " (estimated p99 demand "
                + _cpu_text(v["cpu_p99_estimate"]) + ", never lowered)")
    rows.reason(rec & thr_remove, "CPU limit removed (throttled)")
    rows.reason(rec & below_p99 & ~thr_raise, "CPU limit raised to the p99 usage")
    rows.reason(rec & below_max & ~thr_raise, "CPU limit raised to the observed max usage (cpu_limit_covers_max)")


def one_off_job(rows: Rows) -> None:
    """One-off Jobs: a recommendation for the next run, no patch, not in the savings total.

    A Job that no CronJob runs has an immutable pod template: its recommendation is for the next run, in
    the manifest that creates it. Patches skip it and its savings stay out of the totals (summary.py
    shows them apart).

    Reason: "one-off Job: its pod template is immutable; for the next run, change the manifest that creates it".
    Flag: one_off_job.
    """
    mask = rows.v["rec"] & (rows.f["kind"].to_numpy() == "Job")
    rows.reason(mask, "one-off Job: its pod template is immutable; for the next run, change the manifest that creates it")
    rows.flag(mask, "one_off_job")


def status(rows: Rows) -> None:
    """Status: change or keep by the change thresholds; safety beats stability.

    Rows without a recommendation show none. A row is a change when a value moves beyond BOTH
    change_threshold and the absolute threshold (change_threshold_cpu / _memory), sets something unset,
    removes a CPU limit or moves an HPA target, or when the current values are unsafe (under a memory
    safety floor, or throttled): safety beats stability. Otherwise keep.

    Reason: "change below the threshold".
    Flag: none.
    """
    v = rows.v
    rec, no_rec, ignored = v["rec"], v["no_rec"], v["ignored"]
    for key in ("cpu_req", "cpu_lim", "mem_req", "mem_lim", "hpa_cpu_target_new", "hpa_memory_target_new"):
        v[key] = np.where(rec, v[key], np.nan)
    v["cpu_action"] = np.where(rec, v["cpu_action"], "none")
    frac, cpu_abs, mem_abs = rows.pf("change_threshold"), rows.pf("change_threshold_cpu"), rows.pf("change_threshold_memory")
    cur_cpu_lim = rows.num("cpu_limit_cores")
    diffs = {
        "CPU request": _differs(rows.num("cpu_request_cores"), v["cpu_req"], frac, cpu_abs),
        "CPU limit": (v["cpu_action"] == "remove") | ((v["cpu_action"] == "set") & _differs(cur_cpu_lim, v["cpu_lim"], frac, cpu_abs)),
        "memory request": _differs(rows.num("memory_request_bytes"), v["mem_req"], frac, mem_abs),
        "memory limit": _differs(rows.num("memory_limit_bytes"), v["mem_lim"], frac, mem_abs),
        "HPA target": _target_moves(rows),
    }
    unsafe = rec & ((np.nan_to_num(rows.num("memory_request_bytes"), nan=np.inf) < np.nan_to_num(v["floor_req"], nan=-np.inf))
                    | (np.nan_to_num(rows.num("memory_limit_bytes"), nan=np.inf) < np.nan_to_num(v["floor_lim"], nan=-np.inf))
                    | v["throttled"])
    changed = rec & (np.logical_or.reduce(list(diffs.values())) | unsafe)
    v["status"] = np.where(ignored, "ignored", np.where(no_rec, "no_recommendation", np.where(changed, "change", "keep")))
    v["unsafe"] = unsafe
    v["changes"] = _join([(d & rec, name) for name, d in diffs.items()], rows.n, ", ")
    rows.reason(rec & (v["status"] == "keep"), "change below the threshold")


def _target_moves(rows: Rows) -> np.ndarray:
    moves = np.zeros(rows.n, dtype=bool)
    for res in ("cpu", "memory"):
        new, cur = rows.v[f"hpa_{res}_target_new"], rows.num(f"hpa_{res}_target_percent")
        moves |= ~np.isnan(new) & (new != cur)
    return moves


def provisioning_flags(rows: Rows) -> None:
    """Flags about today's values: no limit or request, over- or under-provisioned, estimated replicas.

    Flags about the current values: no memory limit where the policy wants one equal to the request,
    no request, more than over_provisioned_factor x the recommendation, under the usage (or OOM-killed),
    and replicas estimated from pod-hours.

    Reason: none.
    Flag: no_limit, no_request, over_provisioned, under_provisioned, replicas_estimated, imbalanced_replicas
    (the hottest pod's CPU p95 more than 1.5 x the pooled p95).
    """
    v = rows.v
    active, rec = ~v["ignored"], v["rec"]
    cur_cpu, cur_mem = rows.num("cpu_request_cores"), rows.num("memory_request_bytes")
    over_f = rows.config.recommend.over_provisioned_factor
    with np.errstate(invalid="ignore"):
        over = rec & ((cur_cpu > over_f * v["cpu_req"]) | (cur_mem > over_f * v["mem_req"]))
        under = rec & ((cur_cpu < v["cpu_basis"]) | (cur_mem < v["mem_basis"]) | (cur_mem < v["peak"]) | v["oom"])
    rows.flag(active & np.isnan(rows.num("memory_limit_bytes")) & (rows.ps("memory_limit") == "request"), "no_limit")
    rows.flag(active & (np.isnan(cur_cpu) | np.isnan(cur_mem)), "no_request")
    rows.flag(over, "over_provisioned")
    rows.flag(under, "under_provisioned")
    rows.flag(active & rows.f["_replicas_estimated"].to_numpy(dtype=bool), "replicas_estimated")
    rows.flag(active & _imbalanced(rows), "imbalanced_replicas")


def _imbalanced(rows: Rows) -> np.ndarray:
    """The hottest pod's CPU p95 well above every replica's pooled p95 (a leader, a hot shard): a request
    sized for the average replica leaves that one short; max_over_pods sizes for it."""
    hot, pooled = rows.stat("cpu", "p95", "max_over_pods"), rows.stat("cpu", "p95", "pooled")
    with np.errstate(invalid="ignore"):
        return (rows.num("pods_seen") >= 2) & (hot > IMBALANCE * pooled) & (hot - pooled >= 0.01)


IMBALANCE = 1.5  # hottest pod's p95 / pooled p95 from which replicas count as imbalanced


PIPELINE: tuple[Rule, ...] = tuple(Rule(fn.__name__, fn) for fn in (
    assign_policy, eligibility, confidence, hpa_scope, cpu_throttling, cpu_request, memory_request,
    runtime_rules.runtime_memory, oom_demand, memory_floor, hpa_coadjust, memory_limit, runtime_rules.runtime_setting,
    cpu_limit, one_off_job, status, provisioning_flags,
))


# --- the engine ----------------------------------------------------------------------------------------


def compute(snapshot: Snapshot, config: Config, containers: pd.DataFrame | None = None) -> pd.DataFrame:
    """The wide frame: RECOMMENDATION_COLUMNS plus every intermediate (columns starting with ``_``).

    ``containers`` restricts the run to some rows of the containers table (explain uses it).
    """
    rows = Rows(_frame(snapshot, containers), snapshot, config)
    for rule in PIPELINE:
        rows.rule = rule.name
        rule.apply(rows)
    return _types(_output(rows))


def _output(rows: Rows) -> pd.DataFrame:
    v, out, n = rows.v, rows.f, rows.n
    cur = {k: rows.num(k) for k in ("cpu_request_cores", "cpu_limit_cores", "memory_request_bytes", "memory_limit_bytes")}
    with np.errstate(divide="ignore", invalid="ignore"):
        change = {res: np.where(np.nan_to_num(cur[c]) > 0, (v[k] - cur[c]) / cur[c] * 100, np.nan)
                  for res, c, k in (("cpu", "cpu_request_cores", "cpu_req"), ("memory", "memory_request_bytes", "mem_req"))}
    columns = {
        "status": v["status"], "reason": _join(rows.reasons, n, "; "), "confidence": v["confidence"],
        "flags": _join([(m, name) for m, name in rows.flags], n, ","),
        "cpu_request_cores_current": cur["cpu_request_cores"], "cpu_request_cores_recommended": v["cpu_req"],
        "cpu_limit_cores_current": cur["cpu_limit_cores"], "cpu_limit_cores_recommended": v["cpu_lim"],
        "cpu_limit_action": v["cpu_action"].astype(str),
        "memory_request_bytes_current": cur["memory_request_bytes"], "memory_request_bytes_recommended": v["mem_req"],
        "memory_limit_bytes_current": cur["memory_limit_bytes"], "memory_limit_bytes_recommended": v["mem_lim"],
        "cpu_change_percent": change["cpu"], "memory_change_percent": change["memory"],
        "cpu_basis": np.where(v["has_usage"], v["cpu_stat"], ""), "cpu_basis_cores": v["cpu_basis"],
        "memory_basis": np.where(v["has_usage"], v["mem_stat"], ""), "memory_basis_bytes": v["mem_basis"],
        "memory_max_bytes": v["peak"], "cpu_demand_estimate_cores": v["cpu_estimate"],
        "memory_demand_estimate_bytes": v["mem_estimate"], "oom_pattern": v["oom_pattern"],
        "hpa_cpu_target_percent_current": rows.num("hpa_cpu_target_percent"),
        "hpa_cpu_target_percent_recommended": v["hpa_cpu_target_new"],
        "hpa_memory_target_percent_current": rows.num("hpa_memory_target_percent"),
        "hpa_memory_target_percent_recommended": v["hpa_memory_target_new"],
        "usd_per_month_current": np.nan, "usd_per_month_recommended": np.nan, "savings_usd_per_month": np.nan,
    }
    intermediates = {f"_{k}": v[k] for k in (
        "days", "widen", "margin", "cpu_raw", "mem_raw", "max_cpu", "max_mem", "throttled", "throttled_share",
        "cpu_excess", "cpu_excess_measured", "cpu_p99_estimate", "cpu_obs", "oom", "oom_vpa", "oom_bound", "oom_per_week",
        "oom_life_hours", "oom_capped", "keep_cpu", "keep_memory", "cpu_limit_mode", "memory_limit_mode", "unsafe", "changes",
        "cpu_req_usage", "mem_req_usage")}
    intermediates.update(_min_cpu=rows.pf("min_cpu"), _min_mem=rows.pf("min_memory"),
                         _mem_floor_request=v["floor_req"], _mem_floor_limit=v["floor_lim"],
                         _rules=_join(_fired(rows), n, ","))
    new = {**columns, **intermediates, **runtime_rules.output(v, cur["memory_limit_bytes"])}
    # one concat, not a column at a time: pandas warns (and slows) past a hundred inserts
    return pd.concat([out.drop(columns=[c for c in new if c in out]), pd.DataFrame(new, index=out.index)], axis=1)


def _fired(rows: Rows) -> list[tuple[np.ndarray, str]]:
    """Per rule, the rows it added a reason or a flag to, as (mask, rule name) pairs in pipeline order."""
    masks: dict[str, np.ndarray] = {}
    for name, mask in rows.fired:
        masks[name] = masks.get(name, np.zeros(rows.n, dtype=bool)) | mask
    return [(m, name) for name, m in masks.items()]


def _types(out: pd.DataFrame) -> pd.DataFrame:
    for c in RECOMMENDATION_COLUMNS:
        if c.dtype == "str":
            out[c.name] = out[c.name].fillna("").astype(str)
        elif c.dtype == "float":
            out[c.name] = pd.to_numeric(out[c.name], errors="coerce").astype("float64")
    return out
