"""Spot suitability: a 0-100 score, a verdict and every reason, per workload; plus the spot saving.

The score starts at 100 and loses points for what makes interruptions hurt (StatefulSet, one
replica, a PDB that blocks drains, local state, a shutdown longer than the 2-minute notice, a
pin to on-demand capacity, a high interruption frequency). Penalties that a spec change removes
("fixable") are listed in ``changes_needed``; the verdict is

* ``not_applicable``: DaemonSet (it runs on every node and moves with the nodes);
* ``not_suitable``: a bare Pod, an opt-out annotation, or a score below ``[spot] ready_score``
  even after the listed changes;
* ``already_on_spot``: at least ``[spot] already_on_spot_share`` of its pod-hours run on spot;
* ``ready_with_changes``: ready once ``changes_needed`` is done;
* ``ready``: score at or above ``[spot] ready_score`` with nothing to change.

Saving (USD/month): the workload's monthly cost (recommended requests, else current) taken as
on-demand, minus the same at the spot prices of the instance types its pods run on, weighted by
pod-hours (ratio spot / on-demand from the prices table; the Spot Advisor savings percent when
no spot price is known), for the part not already on spot. Pure functions: no I/O.
"""
from __future__ import annotations

import fnmatch
import json

import numpy as np
import pandas as pd

from ..config import Config
from ..schema import SPOT_COLUMNS, WORKLOAD_KEY
from ..snapshot import Snapshot
from .cost import BATCH_KINDS as COST_BATCH_KINDS

KEY = list(WORKLOAD_KEY)
BUCKETS = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")
BUCKET_PENALTY = (0.0, 5.0, 10.0, 15.0, 20.0)
BATCH_KINDS = set(COST_BATCH_KINDS)  # Jobs, CronJobs and the batch frameworks' groups
GOOD_KINDS = {"Deployment", "ReplicaSet", "Rollout"} | BATCH_KINDS

PENALTY_STATEFULSET = 30.0
PENALTY_BARE_POD = 100.0
PENALTY_OTHER_KIND = 10.0
PENALTY_ONE_REPLICA = 30.0
PENALTY_PDB_BLOCKS = 25.0
PENALTY_NO_PDB = 5.0
PENALTY_HOST_PATH = 40.0
PENALTY_PVC = 30.0
PENALTY_EMPTY_DIR = 10.0
PENALTY_GRACE = 20.0
PENALTY_ON_DEMAND_PIN = 15.0
PENALTY_GPU_NO_CHECKPOINT = 40.0
BONUS_OPT_IN = 10.0


def spot_suitability(snapshot: Snapshot, recommendations: pd.DataFrame, config: Config) -> pd.DataFrame:
    """One row per workload of snapshot.tables["workloads"]: score, verdict, reasons, changes, saving.

    Columns: schema.SPOT_COLUMNS, sorted by savings desc (unknown last), then identity.
    """
    columns = [c.name for c in SPOT_COLUMNS]
    w = snapshot.tables.get("workloads")
    if w is None or w.empty:
        return _empty(columns)
    w = w.reset_index(drop=True).copy()
    for col, default in (("capacity_affinity", ""), ("spot_preference", ""), ("team", "")):
        w[col] = w[col].fillna("").astype(str) if col in w else default
    for col in ("has_memory_empty_dir", "has_pvc", "has_empty_dir", "has_host_path", "pdb", "pdb_unknown", "checkpoints"):
        w[col] = w[col].fillna(False).astype(bool) if col in w else False
    for col in ("pdb_min_available_pods", "pdb_max_unavailable_pods", "pdb_disruptions_allowed"):
        w[col] = w[col].astype(float) if col in w else np.nan

    terms = _price_terms(snapshot.tables.get("prices"), config)
    placed = _placement_terms(snapshot, terms)
    w = w.merge(placed, on=KEY, how="left")
    w = _fill_from_cluster_mix(w, snapshot, terms)
    w = w.merge(_workload_costs(recommendations), on=KEY, how="left")
    w["gpus"] = _uses_gpus(snapshot, w)
    w["non_production"] = _non_production(w, recommendations, snapshot.tables.get("namespaces"), config)
    rules = _Rules(w.index)
    _apply_rules(rules, w, config)
    score = (100.0 - rules.penalty + rules.bonus).clip(0.0, 100.0)
    reachable = (100.0 - rules.penalty + rules.fixable + rules.bonus).clip(0.0, 100.0)

    kind = w["kind"].astype(str)
    daemon = kind == "DaemonSet"
    share = w["spot_share"]
    on_spot = share.fillna(0.0) >= config.spot.already_on_spot_share
    verdict = np.select(
        [daemon, rules.hard, on_spot, reachable < config.spot.ready_score, rules.fixable > 0],
        ["not_applicable", "not_suitable", "already_on_spot", "not_suitable", "ready_with_changes"],
        default="ready",
    )

    on_demand = w["usd_per_month"]
    spot_cost = on_demand * w["spot_ratio"]
    savings = (on_demand - spot_cost) * (1.0 - share.fillna(0.0))

    out = pd.DataFrame({c: w[c] for c in KEY})
    out["team"] = w["team"]
    out["score"] = np.where(daemon, np.nan, score)
    out["verdict"] = verdict
    out["reasons"] = rules.reasons.str.removeprefix("; ")
    out["changes_needed"] = rules.changes.str.removeprefix("; ")
    out["replicas"] = w["replicas"].astype(float)
    out["spot_share"] = share
    out["interruption_bucket"] = w["interruption_bucket"].fillna("")
    out["usd_per_month_on_demand"] = on_demand
    out["usd_per_month_spot"] = spot_cost
    # A DaemonSet has no spot decision of its own: its cost moves with whatever the nodes become.
    out["savings_usd_per_month"] = np.where(daemon, np.nan, savings)
    out["non_production"] = w["non_production"].astype(bool)
    out = out.sort_values(["savings_usd_per_month", *KEY], ascending=[False, True, True, True, True],
                          na_position="last", kind="mergesort")
    return out[columns].reset_index(drop=True)


def bucket_rank(labels: pd.Series) -> pd.Series:
    """Index of a Spot Advisor interruption label in BUCKETS (0 = '<5%' ... 4 = '>20%'); NaN unknown.

    Tolerates spaces and en dashes ('5 – 10 %')."""
    norm = labels.fillna("").astype(str).str.replace(r"\s+", "", regex=True).str.replace("\u2013", "-")
    return norm.map({b: float(i) for i, b in enumerate(BUCKETS)}).astype(float)


# --- prices ------------------------------------------------------------------------------------------

def _price_terms(prices: pd.DataFrame | None, config: Config) -> dict[str, pd.DataFrame]:
    """Lookup tables: on-demand USD/h per (type, region); spot USD/h per (type, region, zone) and per
    (type, region); Spot Advisor savings percent and worst interruption rank per (type, region)."""
    it = ["instance_type", "region"]
    if prices is None or prices.empty:
        empty = pd.DataFrame({"instance_type": pd.Series(dtype=object), "region": pd.Series(dtype=object)})
        return {"od": empty.assign(od_usd=np.nan), "spot_zone": empty.assign(zone="", spot_zone_usd=np.nan),
                "spot_region": empty.assign(spot_region_usd=np.nan), "advisor": empty.assign(pct=np.nan, rank=np.nan),
                "default_region": config.pricing.region}
    p = prices.copy()
    p["zone"] = p["zone"].fillna("").astype(str)
    od = p[p["capacity_type"] == "on-demand"].groupby(it, as_index=False).agg(od_usd=("usd_per_hour", "min"))
    spot = p[p["capacity_type"] == "spot"]
    spot_zone = spot[spot["zone"] != ""].groupby(it + ["zone"], as_index=False).agg(spot_zone_usd=("usd_per_hour", "mean"))
    spot_region = spot.groupby(it, as_index=False).agg(spot_region_usd=("usd_per_hour", "mean"))
    pct = p["spot_savings_percent"] if "spot_savings_percent" in p else pd.Series(np.nan, index=p.index)
    rank = bucket_rank(p["interruption_bucket"]) if "interruption_bucket" in p else pd.Series(np.nan, index=p.index)
    advisor = p.assign(pct=pct, rank=rank).groupby(it, as_index=False).agg(pct=("pct", "mean"), rank=("rank", "max"))
    regions = p["region"].astype(str)
    default_region = config.pricing.region or (regions.mode().iloc[0] if not regions.empty else "")
    return {"od": od, "spot_zone": spot_zone, "spot_region": spot_region, "advisor": advisor,
            "default_region": default_region}


def _rows_with_ratio(rows: pd.DataFrame, terms: dict) -> pd.DataFrame:
    """Add spot_ratio (spot / on-demand, NaN unknown) and rank (interruption bucket) to rows that have
    instance_type, region and zone."""
    rows = rows.copy()
    rows["region"] = rows["region"].fillna("").astype(str).replace("", terms["default_region"])
    rows = rows.merge(terms["od"], on=["instance_type", "region"], how="left")
    rows = rows.merge(terms["spot_zone"], on=["instance_type", "region", "zone"], how="left")
    rows = rows.merge(terms["spot_region"], on=["instance_type", "region"], how="left")
    rows = rows.merge(terms["advisor"], on=["instance_type", "region"], how="left")
    spot_usd = rows["spot_zone_usd"].fillna(rows["spot_region_usd"])
    ratio = spot_usd / rows["od_usd"].where(rows["od_usd"] > 0)
    rows["spot_ratio"] = ratio.fillna(1.0 - rows["pct"] / 100.0).clip(lower=0.0)
    return rows


def _placement_terms(snapshot: Snapshot, terms: dict) -> pd.DataFrame:
    """Per workload: spot_share, pod-hour weighted spot_ratio, worst interruption bucket, instance types."""
    cols = KEY + ["spot_share", "spot_ratio", "interruption_bucket", "instance_types", "placed"]
    placement = snapshot.tables.get("placement")
    if placement is None or placement.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in KEY + ["interruption_bucket", "instance_types"] else float)
                             for c in cols})
    nodes = snapshot.tables.get("nodes")
    node_cols = ["cluster", "node", "instance_type", "region", "capacity_type", "zone"]
    nodes = nodes[node_cols].rename(columns={"zone": "node_zone"}) if nodes is not None and not nodes.empty else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in node_cols}).rename(columns={"zone": "node_zone"})
    p = placement[KEY + ["node", "zone", "pod_hours"]].merge(nodes.drop_duplicates(["cluster", "node"]),
                                                           on=["cluster", "node"], how="left")
    p["zone"] = p["zone"].fillna("").astype(str)
    p["zone"] = p["zone"].where(p["zone"] != "", p["node_zone"].fillna("").astype(str))
    p["instance_type"] = p["instance_type"].fillna("").astype(str)
    p = _rows_with_ratio(p, terms)
    cap = p["capacity_type"].fillna("").astype(str)
    hours = p["pod_hours"].astype(float)
    p["known_cap_hours"] = np.where(cap.isin(["spot", "on-demand"]), hours, 0.0)
    p["spot_hours"] = np.where(cap == "spot", hours, 0.0)
    p["ratio_hours"] = np.where(p["spot_ratio"].notna(), hours, 0.0)
    p["ratio_x_hours"] = p["spot_ratio"].fillna(0.0) * hours
    p["type_or_none"] = p["instance_type"].where(p["instance_type"] != "")
    g = p.groupby(KEY, as_index=False).agg(
        known_cap_hours=("known_cap_hours", "sum"), spot_hours=("spot_hours", "sum"),
        ratio_hours=("ratio_hours", "sum"), ratio_x_hours=("ratio_x_hours", "sum"),
        rank=("rank", "max"),
    )
    g = g.merge(join_distinct(p, KEY, "type_or_none", "instance_types"), on=KEY, how="left")
    g["spot_share"] = g["spot_hours"] / g["known_cap_hours"].where(g["known_cap_hours"] > 0)
    g["spot_ratio"] = g["ratio_x_hours"] / g["ratio_hours"].where(g["ratio_hours"] > 0)
    g["interruption_bucket"] = _bucket_label(g["rank"])
    g["placed"] = 1.0
    return g[cols]


def _fill_from_cluster_mix(w: pd.DataFrame, snapshot: Snapshot, terms: dict) -> pd.DataFrame:
    """Workloads without placement get the ratio and bucket of their cluster's nodes (weighted by hours)."""
    w["placed"] = w["placed"].fillna(0.0) > 0
    nodes = snapshot.tables.get("nodes")
    if w["placed"].all() or nodes is None or nodes.empty:
        return w
    n = nodes[["cluster", "instance_type", "region", "zone", "hours_seen"]].copy()
    n["instance_type"] = n["instance_type"].fillna("").astype(str)
    n = _rows_with_ratio(n, terms)
    hours = n["hours_seen"].fillna(1.0).astype(float)
    n["ratio_hours"] = np.where(n["spot_ratio"].notna(), hours, 0.0)
    n["ratio_x_hours"] = n["spot_ratio"].fillna(0.0) * hours
    n["type_or_none"] = n["instance_type"].where(n["instance_type"] != "")
    mix = n.groupby("cluster", as_index=False).agg(
        ratio_hours=("ratio_hours", "sum"), ratio_x_hours=("ratio_x_hours", "sum"), rank=("rank", "max"))
    mix = mix.merge(join_distinct(n, ["cluster"], "type_or_none", "mix_types"), on="cluster", how="left")
    mix["mix_ratio"] = mix["ratio_x_hours"] / mix["ratio_hours"].where(mix["ratio_hours"] > 0)
    mix["mix_bucket"] = _bucket_label(mix["rank"])
    w = w.merge(mix[["cluster", "mix_ratio", "mix_bucket", "mix_types"]], on="cluster", how="left")
    unplaced = ~w["placed"]
    w["spot_ratio"] = w["spot_ratio"].where(~unplaced, w["mix_ratio"])
    w["interruption_bucket"] = w["interruption_bucket"].where(~unplaced, w["mix_bucket"])
    w["instance_types"] = w["instance_types"].where(~unplaced, w["mix_types"])
    return w.drop(columns=["mix_ratio", "mix_bucket", "mix_types"])


def join_distinct(df: pd.DataFrame, keys: list[str], column: str, name: str) -> pd.DataFrame:
    """Per group of ``keys``: the distinct non-null values of ``column``, sorted and comma separated.

    Loops over the distinct values (a few instance types or zones), never over rows or groups."""
    values = df[keys + [column]].dropna(subset=[column]).drop_duplicates()
    groups = df[keys].drop_duplicates().reset_index(drop=True)
    text = pd.Series("", index=groups.index, dtype=object)
    for value in sorted(values[column].astype(str).unique()):
        hit = groups.merge(values[values[column] == value][keys].assign(_hit=True), on=keys, how="left")["_hit"]
        hit = hit.fillna(False).astype(bool).to_numpy()
        text = text + np.where(hit & (text != ""), ",", "") + np.where(hit, value, "")
    return groups.assign(**{name: text})


def _bucket_label(rank: pd.Series) -> pd.Series:
    labels = pd.Series([""] + list(BUCKETS), index=[-1.0] + [float(i) for i in range(len(BUCKETS))])
    return rank.fillna(-1.0).map(labels).fillna("").astype(object)


def _workload_costs(recommendations: pd.DataFrame | None) -> pd.DataFrame:
    """Monthly cost per workload: per container the recommended cost, else the current; NaN if none known."""
    if recommendations is None or recommendations.empty or "usd_per_month_current" not in recommendations:
        return pd.DataFrame({**{c: pd.Series(dtype=object) for c in KEY}, "usd_per_month": pd.Series(dtype=float)})
    r = recommendations
    rec = r["usd_per_month_recommended"] if "usd_per_month_recommended" in r else pd.Series(np.nan, index=r.index)
    costed = r[KEY].assign(usd_per_month=rec.fillna(r["usd_per_month_current"]))
    return costed.groupby(KEY, as_index=False, sort=False, observed=True)["usd_per_month"].sum(min_count=1)


def _non_production(w: pd.DataFrame, recommendations: pd.DataFrame | None, namespaces: pd.DataFrame | None,
                    config: Config) -> pd.Series:
    """True when the workload's assigned policy is not a production one (recommendations' ``production``,
    decided once by policy assignment). Workloads without recommendation rows fall back to the
    non-production shortcuts (namespace globs and labels)."""
    decided = pd.Series(np.nan, index=w.index, dtype=object)
    flag = pd.Series(False, index=w.index)
    if recommendations is not None and not recommendations.empty and "production" in recommendations:
        nonprod = recommendations[KEY].assign(np_policy=~recommendations["production"].fillna(True).astype(bool))
        nonprod = nonprod.groupby(KEY, as_index=False)["np_policy"].any()
        decided = pd.Series(w[KEY].merge(nonprod, on=KEY, how="left")["np_policy"].to_numpy(dtype=object), index=w.index)
    unique_ns = pd.Series(w["namespace"].astype(str).unique())
    # Globs are matched once per distinct namespace (a handful), not per workload.
    glob_hit = unique_ns[unique_ns.map(lambda ns: any(fnmatch.fnmatchcase(ns, g)
                                                      for g in config.recommend.non_production_namespaces))]
    flag |= w["namespace"].isin(set(glob_hit))
    wanted = config.recommend.non_production_labels
    if wanted and namespaces is not None and not namespaces.empty:
        labels = namespaces["labels_json"].fillna("{}").map(_json_dict)
        hit = labels.map(lambda d: all(d.get(k) == v for k, v in wanted.items()))
        marked = namespaces.loc[hit, ["cluster", "namespace"]].assign(np_label=True)
        merged = w[["cluster", "namespace"]].merge(marked.drop_duplicates(), on=["cluster", "namespace"], how="left")
        flag |= merged["np_label"].fillna(False).astype(bool).to_numpy()
    return decided.where(decided.notna(), flag).astype(bool)


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# --- rules -------------------------------------------------------------------------------------------

class _Rules:
    """Accumulates penalties and texts column-wise (one vector operation per rule, not per workload)."""

    def __init__(self, index: pd.Index):
        self.penalty = pd.Series(0.0, index=index)
        self.fixable = pd.Series(0.0, index=index)
        self.bonus = pd.Series(0.0, index=index)
        self.hard = pd.Series(False, index=index)
        self.reasons = pd.Series("", index=index, dtype=object)
        self.changes = pd.Series("", index=index, dtype=object)

    def add(self, mask, reason, *, penalty: float = 0.0, change=None, hard: bool = False, bonus: float = 0.0):
        mask = pd.Series(mask, index=self.penalty.index).fillna(False).astype(bool)
        self.penalty += np.where(mask, penalty, 0.0)
        self.bonus += np.where(mask, bonus, 0.0)
        if hard:
            self.hard |= mask
        self.reasons = self.reasons + np.where(mask, "; " + _text(reason, mask.index), "")
        if change is not None:
            self.fixable += np.where(mask, penalty, 0.0)
            self.changes = self.changes + np.where(mask, "; " + _text(change, mask.index), "")


def _text(value, index) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.astype(str)
    return pd.Series(value, index=index, dtype=object)


def _count(values: pd.Series) -> pd.Series:
    """Pod counts as text without a trailing .0 ('2', not '2.0'); '?' when unknown."""
    return values.round().astype("Int64").astype(str).replace("<NA>", "?")


def _apply_rules(r: _Rules, w: pd.DataFrame, config: Config) -> None:
    """Every rule, in the order its reasons are listed (each group below adds its own)."""
    for rules in (_controller_rules, _gpu_rules, _pdb_rules, _state_rules, _capacity_rules, _interruption_rules):
        rules(r, w, config)


def _shape(w: pd.DataFrame):
    """(kind, replicas, DaemonSet, batch, replicated) masks the rule groups share."""
    kind = w["kind"].astype(str)
    daemon = kind == "DaemonSet"
    return kind, w["replicas"].astype(float), daemon, kind.isin(BATCH_KINDS), ~daemon & (kind != "Pod")


def _controller_rules(r: _Rules, w: pd.DataFrame, config: Config) -> None:
    """Controller kind and replicas."""
    kind, replicas, daemon, batch, replicated = _shape(w)
    r.add(kind.isin(GOOD_KINDS - BATCH_KINDS), kind + ": pods are replaceable, a good fit for spot")
    r.add(kind == "StatefulSet", "StatefulSet: pods keep identity and usually state, an interruption costs a failover",
          penalty=PENALTY_STATEFULSET)
    r.add(daemon, "DaemonSet: runs on every node and moves with the nodes, no spot decision of its own")
    r.add(kind == "Pod", "bare Pod: nothing recreates it after an interruption (run it under a Deployment or Job)",
          penalty=PENALTY_BARE_POD, hard=True)
    r.add(replicated & ~kind.isin(GOOD_KINDS | {"StatefulSet"}), kind + ": controller not assessed",
          penalty=PENALTY_OTHER_KIND)

    # replicas: a single replica means an interruption is an outage (batch pods are retried instead)
    one = replicated & ~batch & (replicas < 2)
    r.add(one, _count(replicas) + " replica: an interruption is an outage", penalty=PENALTY_ONE_REPLICA,
          change="run at least 2 replicas spread over zones")
    r.add(replicated & ~batch & (replicas >= 2), _count(replicas) + " replicas: survives losing one node")
    r.add(replicated & ~batch & replicas.isna(), "replicas unknown: check it runs at least 2")
    r.add(batch, kind + ": a good fit for spot, an interrupted pod is retried (keep backoffLimit > 0 and the work "
                        "idempotent)")


def _uses_gpus(snapshot: Snapshot, w: pd.DataFrame) -> pd.Series:
    """True for workloads with a container that requests GPUs (whole or MIG slices)."""
    cont = snapshot.tables["containers"].reindex(columns=KEY + ["gpu_request_count"])
    gpu = cont[cont["gpu_request_count"].fillna(0) > 0][KEY].drop_duplicates().assign(_gpu=True)
    return w[KEY].merge(gpu, on=KEY, how="left")["_gpu"].fillna(False).astype(bool).to_numpy()


def _gpu_rules(r: _Rules, w: pd.DataFrame, config: Config) -> None:
    """GPU workloads: training (Jobs, CronJobs) only when it checkpoints; inference behind several replicas
    (the replica rules above). The saving counts the GPUs, at the spot price of the same GPU instances."""
    kind, replicas, _, batch, _ = _shape(w)
    gpu = w["gpus"]
    ann = config.kubernetes.checkpoint_annotation
    r.add(gpu & batch & w["checkpoints"], f"GPU training that checkpoints ({ann}): an interruption loses only the "
          "work since its last checkpoint")
    r.add(gpu & batch & ~w["checkpoints"], "GPU training without checkpoints: an interruption throws away every "
          "GPU-hour since it started", penalty=PENALTY_GPU_NO_CHECKPOINT,
          change=f"checkpoint the training and resume from the last checkpoint (annotate {ann}: \"true\")")
    r.add(gpu & ~batch & (replicas >= 2), "GPU inference behind " + _count(replicas) + " replicas: spot GPU capacity "
          "is scarce, so spread them over several GPU instance types and zones")


def _pdb_rules(r: _Rules, w: pd.DataFrame, config: Config) -> None:
    """PodDisruptionBudget, with percentages already resolved to pods in the workloads table."""
    _, replicas, _, batch, replicated = _shape(w)
    min_av, max_un = w["pdb_min_available_pods"], w["pdb_max_unavailable_pods"]
    evictable = np.where(min_av.notna(), replicas - min_av, np.where(max_un.notna(), max_un, w["pdb_disruptions_allowed"]))
    evictable = pd.Series(evictable, index=w.index)
    pdb = w["pdb"] & replicated
    what = pd.Series(np.where(min_av.notna(), "minAvailable " + _count(min_av) + " of " + _count(replicas) + " replicas",
                              np.where(max_un.notna(), "maxUnavailable " + _count(max_un), "allowed disruptions 0")),
                     index=w.index)
    r.add(pdb & (evictable <= 0), "PDB " + what + " allows no eviction: it blocks draining an interrupted node",
          penalty=PENALTY_PDB_BLOCKS, change="let the PDB allow at least one eviction (e.g. maxUnavailable: 1)")
    r.add(pdb & (evictable >= 1), "PDB leaves " + _count(evictable) + " pod(s) evictable: drains stay orderly")
    r.add(pdb & evictable.isna(), "PDB present, allowed disruptions unknown")
    wanted = ~w["pdb"] & replicated & ~batch & (replicas > 1)
    # unknown is not no: without PDB data (no kube_poddisruptionbudget_* series, or the API refused the list)
    # nothing is suggested or penalised, the row says so
    r.add(wanted & w["pdb_unknown"], "PDB unknown (PDBs could not be read): check that one leaves a pod evictable")
    r.add(wanted & ~w["pdb_unknown"],
          "no PDB: suggest one (e.g. maxUnavailable: 1) so drains on interruption stay orderly", penalty=PENALTY_NO_PDB)


def _state_rules(r: _Rules, w: pd.DataFrame, config: Config) -> None:
    """Local state and termination grace."""
    r.add(w["has_host_path"], "hostPath volume: node-local data is lost with the node", penalty=PENALTY_HOST_PATH)
    r.add(w["has_pvc"], "PersistentVolumeClaim: an EBS volume is bound to one zone and detaches slowly, "
                        "the replacement pod waits for it", penalty=PENALTY_PVC)
    r.add(w["has_empty_dir"], "emptyDir on disk: its data is lost at interruption (fine for caches and scratch)",
          penalty=PENALTY_EMPTY_DIR)
    r.add(w["has_memory_empty_dir"] & ~w["has_empty_dir"], "emptyDir medium: Memory only: no disk state")
    r.add(~(w["has_host_path"] | w["has_pvc"] | w["has_empty_dir"] | w["has_memory_empty_dir"]), "no local state")

    # termination grace against the 2-minute notice
    max_grace = config.spot.max_grace_seconds
    grace = w["termination_grace_seconds"].astype(float)
    r.add(grace > max_grace, "terminationGracePeriodSeconds " + _count(grace) + f" > {max_grace:g} s: the 2-minute "
          "spot notice cuts the shutdown short", penalty=PENALTY_GRACE,
          change=f"lower terminationGracePeriodSeconds to {max_grace:g} s or less")


def _capacity_rules(r: _Rules, w: pd.DataFrame, config: Config) -> None:
    """Capacity pinning, what already runs on spot, the opt-in/out annotation."""
    daemon = _shape(w)[2]
    pinned = w["capacity_affinity"].str.lower() == "on-demand"
    r.add(pinned, "node selector/affinity pins on-demand capacity", penalty=PENALTY_ON_DEMAND_PIN,
          change="remove the on-demand node selector/affinity (and tolerate the spot taint, if any)")
    r.add(w["capacity_affinity"].str.lower() == "spot", "spec already selects spot capacity")

    # already on spot
    share = w["spot_share"]
    pct = (share * 100).round().astype("Int64").astype(str)
    threshold = config.spot.already_on_spot_share
    r.add(share >= threshold, pct + "% of pod-hours already on spot nodes")
    r.add((share > 0) & (share < threshold), pct + "% of pod-hours already on spot; the saving counts the on-demand rest")
    r.add(share == 0, "runs on on-demand nodes")
    r.add(share.isna() & ~daemon, "capacity type of its nodes unknown")

    # opt-in / opt-out annotation
    ann = config.kubernetes.spot_annotation
    pref = w["spot_preference"].str.lower()
    r.add(pref == "out", f"opted out of spot by annotation {ann}", hard=True)
    r.add(pref == "in", f"opted in to spot by annotation {ann}", bonus=BONUS_OPT_IN)


def _interruption_rules(r: _Rules, w: pd.DataFrame, config: Config) -> None:
    """Interruption frequency of its instance types (Spot Instance Advisor), placement, non-production."""
    daemon = _shape(w)[2]
    rank = bucket_rank(w["interruption_bucket"])
    types = w["instance_types"].fillna("").astype(str)
    for i, bucket in enumerate(BUCKETS):
        advice = "; consider more instance types (diversified pools) to cut interruptions" if i >= 3 else ""
        r.add(rank == i, f"Spot Advisor interruption frequency {bucket} for " + types + advice,
              penalty=BUCKET_PENALTY[i])
    r.add(rank.isna() & ~daemon, "interruption frequency unknown (no Spot Advisor data for its instance types)")
    unplaced = ~w["placed"] & ~daemon
    r.add(unplaced, "no placement: prices from the cluster's node mix")

    # non-production: the environment can move as a whole
    r.add(w["non_production"], "non-production namespace: the whole environment can move to spot "
                               "(e.g. a spot-only node pool for it)")


def _empty(columns: list[str]) -> pd.DataFrame:
    declared = {c.name: c.dtype for c in SPOT_COLUMNS}
    pandas = {"str": "object", "float": "float64", "bool": "bool"}
    return pd.DataFrame({c: pd.Series(dtype=pandas[declared[c]]) for c in columns})
