"""Cross-AZ traffic cost: which workload pairs pay the inter-AZ transfer price, and how to stop it.

For each traffic pair (bytes over the window between two workloads) the share of bytes that
crosses zones is either measured (the traffic rows carry source_zone / destination_zone) or
expected from where the pods ran: with traffic spread evenly over endpoints, a flow from a
source pod in zone z stays in z with probability p_dst(z), so

    crossing fraction = 1 - sum_z p_src(z) * p_dst(z)

where p(z) is the workload's share of pod-hours in zone z (placement table). A crossing byte
pays the inter-AZ price twice (out of one zone, into the other).

With topology-aware routing on the destination Service (trafficDistribution: PreferClose /
PreferSameZone, or topology-mode: Auto) traffic from zone z stays in z whenever the destination
has endpoints there, so the crossing left after the fix is the source's share in zones where
the destination has none:  residual = sum over {z: p_dst(z) = 0} of p_src(z).

Units: bytes in, GB (10^9 bytes) and USD/month out. Pure functions: no I/O.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..config import Config
from ..schema import CROSS_AZ_COLUMNS
from ..snapshot import Snapshot

GB = 1e9
PAIR = ["cluster", "source_namespace", "source_workload", "destination_namespace", "destination_workload"]
WL = ["cluster", "namespace", "workload"]
# trafficDistribution values and topology-mode values that keep traffic in-zone
_DISTRIBUTION_HINTS = {"preferclose", "prefersamezone", "prefersamenode"}
_TOPOLOGY_MODE_HINTS = {"auto"}
_EPS = 1e-9

CAVEAT_TRAFFIC_DISTRIBUTION = (
    "needs ready endpoints in every zone the clients run in (about {n:g} per zone); "
    "no overload protection: a zone's endpoints take all of that zone's traffic even when busy"
)
CAVEAT_TOPOLOGY_MODE = (
    "needs endpoints in every zone, about {n:g} per zone and in proportion to each zone's CPU, "
    "or kube-proxy drops the hints; no overload protection: a zone's endpoints take all of that zone's traffic"
)


def cross_az_costs(snapshot: Snapshot, config: Config) -> pd.DataFrame:
    """One row per traffic pair with its monthly inter-AZ cost (both directions), sorted by usd_per_month desc.

    Columns: schema.CROSS_AZ_COLUMNS. Pairs whose crossing share cannot be known (no measured
    zones and no placement for one side) keep NaN costs rather than zeros.
    """
    columns = [c.name for c in CROSS_AZ_COLUMNS]
    traffic = snapshot.tables.get("traffic")
    if traffic is None or traffic.empty:
        return _empty(columns)
    usd_per_gb = 2.0 * config.pricing.inter_az_usd_per_gb  # out of one zone + into the other

    pairs = _routed_pairs(snapshot, traffic)
    # bytes over the hours each pair's cluster was observed (the window, or less: Snapshot.observed_hours)
    hours = pd.Series(snapshot.hours_of(pairs["cluster"]), index=pairs.index).fillna(config.general.window / 3600.0)
    per_month = config.general.hours_per_month / hours
    hinted, local = pairs["hint"] != "", pairs["local"]
    low, high, assumption = _crossing_range(pairs, hinted, local)
    unmeasured_bytes = pairs["bytes"] - pairs["measured_bytes"]

    def crossing_bytes(fraction):
        return pairs["measured_cross"] + np.where(unmeasured_bytes > _EPS, unmeasured_bytes * fraction, 0.0)

    # The point estimate is the high end: without a known topology hint kube-proxy picks endpoints uniformly.
    cross_bytes = crossing_bytes(high)
    crossing_fraction = np.where(pairs["bytes"] > 0, cross_bytes / pairs["bytes"].where(pairs["bytes"] > 0), 0.0)

    out = pd.DataFrame({c: pairs[c] for c in PAIR})
    out["gb_per_month"] = pairs["bytes"] / GB * per_month
    out["crossing_fraction"] = crossing_fraction
    out["measured"] = (pairs["measured_bytes"] >= pairs["bytes"] - _EPS) & (pairs["bytes"] > 0)
    out["cross_az_gb_per_month"] = cross_bytes / GB * per_month
    out["usd_per_month"] = out["cross_az_gb_per_month"] * usd_per_gb
    out["usd_per_month_low"] = crossing_bytes(low) / GB * per_month * usd_per_gb
    out["usd_per_month_high"] = out["usd_per_month"]
    out["assumption"] = assumption
    # Crossing left after the fix: traffic from source zones where the destination has no endpoints.
    residual = pairs["residual"].fillna(0.0)
    after_fix_gb = out["gb_per_month"] * residual
    saving = ((out["cross_az_gb_per_month"] - after_fix_gb).clip(lower=0.0)) * usd_per_gb
    out["saving_usd_per_month"] = np.where(hinted | local, 0.0, saving)
    out["destination_zones"] = pairs["destination_zones"]
    covers = pairs["covered"].fillna(0.0) >= 1.0 - 1e-6
    out["destination_covers_source_zones"] = covers.astype(bool)
    version = kubernetes_version(snapshot, config)
    out["fix"] = _fix_text(pairs, hinted, covers, version)
    out["caveat"] = _caveat_text(pairs, hinted, covers, version, config.cross_az.min_endpoints_per_zone)
    out = out.sort_values(["usd_per_month", "gb_per_month"], ascending=False, na_position="last", kind="mergesort")
    return out[columns].reset_index(drop=True)


def _routed_pairs(snapshot: Snapshot, traffic: pd.DataFrame) -> pd.DataFrame:
    """Traffic pairs with their zone fractions, destination zones and the routing of the destination Service."""
    dest = ["cluster", "destination_namespace", "destination_workload"]
    pairs = _pairs(traffic)
    dist = zone_distribution(snapshot)
    pairs = pairs.merge(_expected_fractions(pairs[PAIR], dist), on=PAIR, how="left")
    pairs = pairs.merge(_uncovered_zones(pairs[PAIR], dist), on=PAIR, how="left")
    pairs = pairs.merge(_destination_zones(dist), on=dest, how="left")
    pairs = pairs.merge(_destination_hints(snapshot.tables.get("services")), on=dest, how="left")
    for col in ("hint", "service", "destination_zones", "thin_zones", "uncovered"):
        pairs[col] = pairs[col].astype(object).where(pairs[col].notna(), "")
    pairs["local"] = pairs["local"].astype(object).where(pairs["local"].notna(), False).astype(bool)
    return pairs


def _crossing_range(pairs: pd.DataFrame, hinted: pd.Series, local: pd.Series):
    """Per pair, the crossing fraction of the bytes without measured zones at the low end (same zone
    wherever the destination has endpoints there: topology hints, or a mesh's locality load balancing)
    and the high end (uniform over endpoints), and the assumption behind the point estimate (= high).

    Known routing collapses the range: a topology hint on the Service keeps traffic in-zone where it
    can (low = high = same zone), internalTrafficPolicy: Local keeps it on the node (0)."""
    same_zone, uniform = pairs["residual"], pairs["expected"]
    low = np.where(local, 0.0, same_zone)
    high = np.where(local, 0.0, np.where(hinted, same_zone, uniform))
    dest = pairs["destination_namespace"] + "/" + pairs["destination_workload"]
    service = "Service " + pairs["destination_namespace"] + "/" + pairs["service"]
    text = np.where(local, "node-local: internalTrafficPolicy: Local on " + service,
           np.where(hinted, "same zone where " + dest + " has endpoints: " + pairs["hint"] + " on " + service,
           np.where(pairs["service"] != "", "uniform over endpoints (no topology hint on " + service + ")",
                    "uniform over endpoints (routing unknown: no Service known for " + dest + ")")))
    measured_all = (pairs["measured_bytes"] >= pairs["bytes"] - _EPS) & (pairs["bytes"] > 0)
    partly = (pairs["measured_bytes"] > 0) & ~measured_all
    text = np.where(measured_all, "measured zones", np.where(partly, "measured zones for part; the rest " + text, text))
    return low, high, pd.Series(text, index=pairs.index)


def top_pairs(pairs: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The report's top list: pairs costing at least [cross_az] min_usd_per_month, at most top_n of them."""
    keep = pairs["usd_per_month"] >= config.cross_az.min_usd_per_month
    return pairs[keep].head(config.cross_az.top_n).reset_index(drop=True)


def zone_distribution(snapshot: Snapshot) -> pd.DataFrame:
    """Each workload's share of pod-hours per zone (columns cluster, namespace, workload, zone, share, pods).

    ``pods`` is the average number of pods in the zone (pod-hours / the hours its cluster was observed,
    Snapshot.observed_hours).
    Kinds are merged: traffic metrics name workloads without their kind. Unknown zones are left out.
    """
    cols = WL + ["zone", "share", "pods"]
    placement = snapshot.tables.get("placement")
    if placement is None or placement.empty:
        return _empty(cols)
    p = placement[placement["zone"].fillna("") != ""]
    p = p[p["pod_hours"] > 0]
    if p.empty:
        return _empty(cols)
    by_zone = p.groupby(WL + ["zone"], as_index=False)["pod_hours"].sum()
    total = by_zone.groupby(WL)["pod_hours"].transform("sum")
    by_zone["share"] = by_zone["pod_hours"] / total
    by_zone["pods"] = by_zone["pod_hours"] / snapshot.hours_of(by_zone["cluster"])
    return by_zone[cols]


def _pairs(traffic: pd.DataFrame) -> pd.DataFrame:
    """Aggregate traffic rows to pairs: total bytes, bytes with measured zones, measured crossing bytes."""
    t = traffic.copy()
    for col in PAIR:
        t[col] = t[col].astype(str)
    measured = _measured_mask(t)
    src_zone = t["source_zone"].fillna("").astype(str) if "source_zone" in t else ""
    dst_zone = t["destination_zone"].fillna("").astype(str) if "destination_zone" in t else ""
    t["measured_bytes"] = np.where(measured, t["bytes"], 0.0)
    t["measured_cross"] = np.where(measured & (src_zone != dst_zone), t["bytes"], 0.0)
    return t.groupby(PAIR, as_index=False)[["bytes", "measured_bytes", "measured_cross"]].sum()


def _measured_mask(traffic: pd.DataFrame) -> pd.Series:
    if "source_zone" not in traffic or "destination_zone" not in traffic:
        return pd.Series(False, index=traffic.index)
    return (traffic["source_zone"].fillna("").astype(str) != "") & (traffic["destination_zone"].fillna("").astype(str) != "")


def _expected_fractions(pairs: pd.DataFrame, dist: pd.DataFrame) -> pd.DataFrame:
    """Per pair: expected crossing fraction, the source's share in zones the destination covers, residual.

    NaN when either side has no placement (unknown is not zero).
    """
    src = dist.rename(columns={"namespace": "source_namespace", "workload": "source_workload", "share": "p_src"})
    dst = dist.rename(columns={"namespace": "destination_namespace", "workload": "destination_workload", "share": "p_dst"})
    both = pairs.merge(src[["cluster", "source_namespace", "source_workload", "zone", "p_src"]],
                       on=["cluster", "source_namespace", "source_workload"], how="inner")
    both = both.merge(dst[["cluster", "destination_namespace", "destination_workload", "zone", "p_dst"]],
                      on=["cluster", "destination_namespace", "destination_workload", "zone"], how="inner")
    both["same"] = both["p_src"] * both["p_dst"]
    same = both.groupby(PAIR, as_index=False).agg(same=("same", "sum"), covered=("p_src", "sum"))
    out = pairs.drop_duplicates().copy()
    src_known = out.set_index(["cluster", "source_namespace", "source_workload"]).index.isin(
        src.set_index(["cluster", "source_namespace", "source_workload"]).index)
    dst_known = out.set_index(["cluster", "destination_namespace", "destination_workload"]).index.isin(
        dst.set_index(["cluster", "destination_namespace", "destination_workload"]).index)
    out = out.merge(same, on=PAIR, how="left")
    known = src_known & dst_known
    # Both sides placed but no zone in common: nothing stays in-zone.
    out["same"] = np.where(known, out["same"].fillna(0.0), np.nan)
    out["covered"] = np.where(known, out["covered"].fillna(0.0), np.nan)
    out["expected"] = 1.0 - out["same"]
    out["residual"] = (1.0 - out["covered"]).clip(lower=0.0)
    return out[PAIR + ["expected", "covered", "residual"]]


def _uncovered_zones(pairs: pd.DataFrame, dist: pd.DataFrame) -> pd.DataFrame:
    """Per pair, 'zone (share%)' of the source's zones where the destination has no endpoints: the
    traffic that keeps crossing whatever the routing ('' when every source zone is covered)."""
    cols = PAIR + ["uncovered"]
    if dist.empty:
        return _empty(cols)
    src = dist.rename(columns={"namespace": "source_namespace", "workload": "source_workload", "share": "p_src"})
    dst = dist.rename(columns={"namespace": "destination_namespace", "workload": "destination_workload"})
    both = pairs.drop_duplicates().merge(src[["cluster", "source_namespace", "source_workload", "zone", "p_src"]],
                                         on=["cluster", "source_namespace", "source_workload"], how="inner")
    both = both.merge(dst[["cluster", "destination_namespace", "destination_workload", "zone"]].assign(_dst=True),
                      on=["cluster", "destination_namespace", "destination_workload", "zone"], how="left")
    lonely = both[both["_dst"].isna()].sort_values(PAIR + ["zone"], kind="mergesort")
    if lonely.empty:
        return _empty(cols)
    lonely = lonely.assign(uncovered=lonely["zone"] + " (" + (lonely["p_src"] * 100).round(0).astype(int).astype(str) + "%)")
    return lonely.groupby(PAIR, as_index=False)["uncovered"].agg(", ".join)[cols]


def _destination_zones(dist: pd.DataFrame) -> pd.DataFrame:
    """Per destination: its zones (comma separated), its fewest pods in a zone, and 'zone (pods)' as text."""
    cols = ["cluster", "destination_namespace", "destination_workload", "destination_zones", "min_pods", "thin_zones"]
    if dist.empty:
        return _empty(cols)
    # One column per zone (a handful): the text is built by looping over zones, not over workloads.
    wide = dist.pivot_table(index=WL, columns="zone", values="pods", aggfunc="sum")
    zones_text = pd.Series("", index=wide.index, dtype=object)
    pods_text = pd.Series("", index=wide.index, dtype=object)
    for zone in sorted(wide.columns):
        pods = wide[zone]
        here = pods.notna().to_numpy()
        zones_text = zones_text + np.where(here & (zones_text != ""), ",", "") + np.where(here, zone, "")
        label = zone + " (" + pods.round(1).astype(str) + ")"
        pods_text = pods_text + np.where(here & (pods_text != ""), ", ", "") + np.where(here, label, "")
    out = pd.DataFrame({"destination_zones": zones_text, "min_pods": wide.min(axis=1), "thin_zones": pods_text})
    out = out.reset_index().rename(columns={"namespace": "destination_namespace", "workload": "destination_workload"})
    return out[cols]


def _destination_hints(services: pd.DataFrame | None) -> pd.DataFrame:
    """Per destination workload: its Service name, the topology hint already set on it ('' none) and whether
    internalTrafficPolicy is Local (traffic stays on the client's node)."""
    cols = ["cluster", "destination_namespace", "destination_workload", "service", "hint", "local"]
    if services is None or services.empty:
        return _empty(cols)
    s = services.copy()
    workload = s["workload"].fillna("").astype(str) if "workload" in s else pd.Series("", index=s.index)
    # A Service whose selector was not resolved to a workload is matched by name (the common convention).
    s["destination_workload"] = workload.where(workload != "", s["service"].astype(str))
    dist_hint = s["traffic_distribution"].fillna("").astype(str) if "traffic_distribution" in s else pd.Series("", index=s.index)
    mode_hint = s["topology_mode"].fillna("").astype(str) if "topology_mode" in s else pd.Series("", index=s.index)
    s["hint"] = np.where(dist_hint.str.lower().isin(_DISTRIBUTION_HINTS), "spec.trafficDistribution: " + dist_hint,
                         np.where(mode_hint.str.lower().isin(_TOPOLOGY_MODE_HINTS),
                                  "service.kubernetes.io/topology-mode: " + mode_hint, ""))
    policy = s["internal_traffic_policy"].fillna("").astype(str) if "internal_traffic_policy" in s else pd.Series("", index=s.index)
    s["local"] = policy.str.lower() == "local"
    s = s.rename(columns={"namespace": "destination_namespace"})
    # Prefer a Service whose routing keeps traffic close, then the one named like the workload.
    s["rank"] = np.where(s["local"], 0, np.where(s["hint"] != "", 1, np.where(s["service"] == s["destination_workload"], 2, 3)))
    s = s.sort_values(["rank", "service"], kind="mergesort")
    s = s.drop_duplicates(["cluster", "destination_namespace", "destination_workload"])
    return s[cols]


def kubernetes_version(snapshot: Snapshot, config: Config) -> tuple[int, int] | None:
    """(major, minor) from [cross_az] kubernetes_version, else meta versions, else None."""
    candidates = [config.cross_az.kubernetes_version]
    versions = snapshot.meta.get("versions") or {}
    if isinstance(versions, dict):
        for key in ("kubernetes", "kubernetes_server", "server", "kubelet"):
            value = versions.get(key)
            if isinstance(value, dict):  # e.g. {"cluster-a": "v1.30.4"}: take the oldest
                value = min((str(v) for v in value.values()), default="", key=lambda v: _parse_version(v) or (99, 99))
            candidates.append(value or "")
    for text in candidates:
        parsed = _parse_version(str(text or ""))
        if parsed:
            return parsed
    return None


def _parse_version(text: str) -> tuple[int, int] | None:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _fix_for_version(version: tuple[int, int] | None, target: pd.Series) -> pd.Series:
    if version is None:
        return ("set spec.trafficDistribution: PreferClose on " + target
                + " (Kubernetes >= 1.31; PreferSameZone from 1.34), or annotate it "
                  "service.kubernetes.io/topology-mode: Auto on older clusters")
    if version >= (1, 34):
        return "set spec.trafficDistribution: PreferSameZone on " + target
    if version >= (1, 31):
        return "set spec.trafficDistribution: PreferClose on " + target
    if version >= (1, 27):
        return "annotate " + target + " with service.kubernetes.io/topology-mode: Auto"
    return "annotate " + target + " with service.kubernetes.io/topology-aware-hints: auto (Kubernetes 1.23-1.26)"


def _fix_text(pairs: pd.DataFrame, hinted: pd.Series, covers: pd.Series, version) -> pd.Series:
    dest = pairs["destination_namespace"] + "/" + pairs["destination_workload"]
    source = pairs["source_namespace"] + "/" + pairs["source_workload"]
    service = pairs["service"]
    target = np.where(service != "", "Service " + pairs["destination_namespace"] + "/" + service,
                      "the Service in front of " + dest)
    target = pd.Series(target, index=pairs.index)
    placed = pairs["covered"].notna()
    fix = _fix_for_version(version, target)
    # Never recommend what is already set: name what still crosses instead (zones without endpoints).
    still = np.where(pairs["uncovered"] != "",
                     "; still crossing: traffic from " + pairs["uncovered"] + " of " + source + "'s pods, zones where "
                     + dest + " has no endpoints",
                     np.where(placed, "; nothing left to fix: " + dest + " has endpoints in every zone " + source + " runs in", ""))
    already = "already applied: " + pairs["hint"] + " on " + target + " (the saving is taken)" + still
    fix = pd.Series(np.where(hinted, already, fix), index=pairs.index)
    local = "none needed: internalTrafficPolicy: Local on " + target + " keeps the traffic on the client's node"
    fix = pd.Series(np.where(pairs["local"], local, fix), index=pairs.index)
    spread = ("; spread " + dest + " over the source's zones (topologySpreadConstraints on "
              "topology.kubernetes.io/zone): it runs only in " + pairs["destination_zones"])
    fix = fix + pd.Series(np.where(placed & ~covers & ~pairs["local"], spread, ""), index=pairs.index)
    return fix


def _caveat_text(pairs: pd.DataFrame, hinted: pd.Series, covers: pd.Series, version, min_per_zone: float) -> pd.Series:
    base = CAVEAT_TRAFFIC_DISTRIBUTION if version is None or version >= (1, 31) else CAVEAT_TOPOLOGY_MODE
    caveat = pd.Series(base.format(n=min_per_zone), index=pairs.index)
    dest = pairs["destination_namespace"] + "/" + pairs["destination_workload"]
    thin = pairs["min_pods"].fillna(np.inf) < min_per_zone
    caveat = caveat + pd.Series(np.where(thin, "; " + dest + " averages few pods per zone: " + pairs["thin_zones"], ""),
                                index=pairs.index)
    placed = pairs["covered"].notna()
    uncovered = placed & ~covers
    caveat = caveat + pd.Series(np.where(
        uncovered, "; " + dest + " has no endpoints in some of the source's zones, so traffic from there keeps crossing", ""),
        index=pairs.index)
    unknown = ~placed
    caveat = caveat + pd.Series(np.where(
        unknown, "; placement of one side unknown: zone coverage not checked" , ""), index=pairs.index)
    partly = (pairs["measured_bytes"] > 0) & (pairs["measured_bytes"] < pairs["bytes"] - _EPS)
    caveat = caveat + pd.Series(np.where(partly, "; zones measured for part of the traffic only", ""), index=pairs.index)
    return caveat


def _empty(columns: list[str]) -> pd.DataFrame:
    """An empty frame with these columns; dtypes from CROSS_AZ_COLUMNS, else by name (numbers vs text)."""
    declared = {c.name: c.dtype for c in CROSS_AZ_COLUMNS}
    text = {"cluster", "namespace", "workload", "zone", "destination_namespace", "destination_workload",
            "destination_zones", "thin_zones", "service", "hint", "uncovered", "assumption"}
    pandas = {"str": "object", "float": "float64", "bool": "bool"}
    return pd.DataFrame({
        c: pd.Series(dtype=pandas[declared[c]] if c in declared else ("object" if c in text else "float64"))
        for c in columns
    })
