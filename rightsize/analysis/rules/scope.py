"""Rules that decide who gets a recommendation and under which policy: the policy, eligibility, confidence."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import policy as policy_mod
from .. import statistics as stats_mod
from ...usage_stats import CONTAINER_KEY, DAY_SECONDS, DEFAULT_BASIS, is_stored
from .base import POLICY_STATISTICS, Rows, rule
from .text import num_text, pct_text

_POLICY_STATISTIC = ("cpu_request_percentile", "memory_request_percentile", "per_replica", "usage_half_life")


@rule(after=None, reads=("cluster", "namespace", "kind", "workload", "container", "policy_override"),
      writes=("policy", "production", "_policy_source", "_policy_note", "ignored_cfg", POLICY_STATISTICS),
      settings=("production",) + _POLICY_STATISTIC)
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
    rows.add_columns(_derived(rows))  # statistics the usage table does not carry (p97, decayed)
    rows.v.update(policy=pol["policy"].to_numpy(), production=rows.setting("production").to_numpy(dtype=bool),
                  _policy_source=pol["policy_source"].to_numpy(), _policy_note=pol["policy_note"].to_numpy(),
                  ignored_cfg=pol["ignored_by_config"].to_numpy(dtype=bool))
    rows.reason(pol["policy_note"].to_numpy(dtype=object) != "", pol["policy_note"])


def _derived(rows: Rows) -> pd.DataFrame:
    """The statistics the assigned policies name that the usage table does not carry (another percentile,
    a decayed one), computed from the snapshot's histograms, per container."""
    needed = set()
    for res, key in (("cpu", "cpu_request_percentile"), ("memory", "memory_request_percentile")):
        combos = pd.DataFrame({k: rows.setting(k) for k in (key, "per_replica", "usage_half_life")}).drop_duplicates()
        needed |= {(res, s_, b_, float(h_)) for s_, b_, h_ in combos.itertuples(index=False, name=None)}
    if all(is_stored(*n) for n in needed):  # the usage table has them all: the histograms stay unread
        return pd.DataFrame(columns=list(CONTAINER_KEY))
    end = rows.snapshot.meta.get("window_end")
    return stats_mod.derived_statistics(rows.snapshot.tables.get("usage_histograms", pd.DataFrame()), needed,
                                        pd.Timestamp(end) if end else None)


def _history_days(rows: Rows) -> np.ndarray:
    """Days of history (VPA: min(lifespan, samples at 1/min); here the snapshot's step instead of a minute)."""
    step = rows.snapshot.meta.get("step_seconds") or 0
    days = np.nan_to_num(rows.num("hours_covered"), nan=0.0) / 24.0
    if step:
        days = np.minimum(days, np.nan_to_num(rows.num("samples"), nan=0.0) * float(step) / DAY_SECONDS)
    return days


def _basis_text(per_replica: np.ndarray, half_life: np.ndarray) -> np.ndarray:
    """' (busiest)', ' (max_over_pods, decayed)' ... after a statistic's name; '' for the pooled default."""
    parts = np.where(per_replica == DEFAULT_BASIS, "", per_replica.astype(object))
    parts = np.where(half_life > 0, np.where(parts == "", "decayed", parts + ", decayed"), parts)
    return np.where(parts == "", "", " (" + parts.astype(object) + ")").astype(str)


@rule(after="assign_policy", reads=("_has_usage", "ignore", "ignored_cfg", "hours_covered", "samples", POLICY_STATISTICS),
      writes=("has_usage", "ignored", "no_rec", "rec", "days", "cpu_stat", "mem_stat", "stat_text", "cpu_obs",
              "cpu_basis", "mem_basis"),
      settings=_POLICY_STATISTIC + ("min_history", "min_samples"))
def eligibility(rows: Rows) -> None:
    """Eligibility: who gets a recommendation (not opted out, enough usage history).

    Which containers get a recommendation: not opted out (config override or annotation), with usage
    data, at least min_history of history and min_samples samples.

    Reason: "ignored by a config override", "ignored by annotation <annotation>", "no usage data",
    "too little history: <d>d covered, needs <d>d", "too few samples: <n>, needs <n>".
    Flag: none.
    """
    v = rows.v
    has_usage = rows.column("_has_usage").to_numpy(dtype=bool)
    ignored_ann = rows.column("ignore").to_numpy(dtype=bool)
    ignored = v["ignored_cfg"] | ignored_ann
    hours, samples = rows.num("hours_covered"), rows.num("samples")
    cpu_stat, mem_stat = rows.ps("cpu_request_percentile"), rows.ps("memory_request_percentile")
    per_replica, half_life = rows.ps("per_replica"), rows.pf("usage_half_life")
    cpu_obs = rows.policy_statistic("cpu", cpu_stat, per_replica, half_life)
    mem_basis = rows.policy_statistic("memory", mem_stat, per_replica, half_life)
    no_data = ~has_usage | (np.isnan(cpu_obs) & np.isnan(mem_basis))
    short = np.nan_to_num(hours) * 3600 < rows.pf("min_history")
    few = np.nan_to_num(samples) < rows.pf("min_samples")
    no_rec = ~ignored & (no_data | short | few)
    days = _history_days(rows)
    v.update(has_usage=has_usage, ignored=ignored, no_rec=no_rec, rec=~ignored & ~no_rec, days=days,
             cpu_stat=cpu_stat, mem_stat=mem_stat, stat_text=_basis_text(per_replica, half_life), cpu_obs=cpu_obs,
             cpu_basis=cpu_obs.copy(), mem_basis=mem_basis)
    history_txt = ("too little history: " + num_text(days) + "d covered, needs "
                   + num_text(rows.pf("min_history") / DAY_SECONDS) + "d")
    samples_txt = ("too few samples: " + pd.Series(np.nan_to_num(samples).astype(np.int64)).astype(str) + ", needs "
                   + pd.Series(rows.pf("min_samples").astype(np.int64)).astype(str))
    data = ~ignored & has_usage & ~no_data
    rows.reason(v["ignored_cfg"], "ignored by a config override")
    rows.reason(ignored_ann & ~v["ignored_cfg"], f"ignored by annotation {rows.config.kubernetes.ignore_annotation}")
    rows.reason(~ignored & no_data, "no usage data")
    rows.reason(data & short, history_txt)
    rows.reason(data & few, samples_txt)


@rule(after="usage_pattern", reads=("days", "rec"), writes=("widen", "margin", "confidence"), flags=("low_confidence",),
      settings=("full_confidence_history", "medium_confidence_history", "confidence_multiplier", "confidence_exponent",
                "margin"))
def confidence(rows: Rows) -> None:
    """Confidence: a short history widens the margin (VPA-style) and lowers the confidence.

    VPA-style confidence: with less than full_confidence_history of history the margins are widened by
    ((1 + m / days) / (1 + m / full days)) ^ e (m = confidence_multiplier, e = confidence_exponent), and
    the confidence is high (full history), medium (from medium_confidence_history) or low.

    Reason: "margins widened x<f> for <d>d of history".
    Flag: low_confidence.
    """
    v = rows.v
    days, full_days = v["days"], rows.pf("full_confidence_history") / DAY_SECONDS
    safe_days = np.maximum(days, 1.0 / 24.0)
    mult, expo = rows.pf("confidence_multiplier"), rows.pf("confidence_exponent")
    widen = np.where(days < full_days, ((1 + mult / safe_days) / (1 + mult / full_days)) ** expo, 1.0)
    v["widen"] = np.maximum(widen, 1.0)
    v["margin"] = rows.pf("margin")
    conf = np.where(days >= full_days, "high",
                    np.where(days >= rows.pf("medium_confidence_history") / DAY_SECONDS, "medium", "low"))
    v["confidence"] = np.where(v["rec"], conf, "")
    rows.reason(v["rec"] & (v["widen"] > 1.0 + 1e-9),
                "margins widened x" + num_text(v["widen"], 2) + " for " + num_text(days) + "d of history")
    rows.flag(v["rec"] & (v["confidence"] == "low"), "low_confidence")
