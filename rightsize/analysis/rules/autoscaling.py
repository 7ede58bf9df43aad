"""Rules for containers an HPA scales: which requests it scales on, and its target moved with them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...schema import WORKLOAD_KEY
from .. import hpa as hpa_math
from ..rounding import round_cpu_up, round_memory_up
from ...usage_stats import RESOURCES
from .base import Rows, rule
from .text import cpu_text, mem_text, num_text


# kinds an HPA can scale (its scaleTargetRef), for the "HPA unknown" reason
SCALABLE_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "Rollout")


@rule(after="confidence", flags=("hpa",),
      reads=("hpa", "hpa_cpu_target_percent", "hpa_memory_target_percent", "cpu_request_cores", "memory_request_bytes",
             "ignored", "hpa_unknown", "kind"),
      writes=("hpa_cpu_on", "hpa_memory_on", "keep_cpu", "keep_memory"), settings=("allow_hpa_request_change", "hpa_request"))
def hpa_scope(rows: Rows) -> None:
    """HPA scope: which requests an HPA scales on, kept or moved with its target.

    Which requests an HPA scales on: CPU or memory utilization targets, unless allow_hpa_request_change.
    With hpa_request = keep such a request stays as it is; with co_adjust (the default) hpa_coadjust
    moves the HPA's target with it.

    Reason: "HPA unknown (HPAs could not be read): ..." for a scalable workload whose HPAs are unknown (no
    kube_horizontalpodautoscaler_* series, or the API refused the list; hpa_coadjust says what happened
    otherwise).
    Flag: hpa (any HPA, whatever it scales on).
    """
    v = rows.v
    allow = rows.pb("allow_hpa_request_change")
    keep_mode = rows.ps("hpa_request") == "keep"
    for res in ("cpu", "memory"):
        target = rows.num(f"hpa_{res}_target_percent")
        on = ~np.isnan(target) & ~allow
        v[f"hpa_{res}_on"] = on
        v[f"keep_{res}"] = on & keep_mode & ~np.isnan(rows.num(f"{res}_request_{RESOURCES[res].unit}"))
    hpa_any = (rows.column("hpa").to_numpy(dtype=bool) | ~np.isnan(rows.num("hpa_cpu_target_percent"))
               | ~np.isnan(rows.num("hpa_memory_target_percent")))
    rows.flag(~v["ignored"] & hpa_any, "hpa")
    unknown = rows.column("hpa_unknown").fillna(False).to_numpy(dtype=bool) & rows.column("kind").isin(SCALABLE_KINDS).to_numpy()
    rows.reason(~v["ignored"] & ~hpa_any & unknown, "HPA unknown (HPAs could not be read): if one scales this workload "
                "on CPU or memory utilization, move its target with the request")


@rule(after="memory_floor",
      reads=tuple(WORKLOAD_KEY) + ("container_type", "hpa_metrics", "hpa_cpu_target_percent", "hpa_memory_target_percent",
                                   "cpu_request_cores", "memory_request_bytes", "cpu_req", "mem_req", "hpa_cpu_on",
                                   "hpa_memory_on", "keep_cpu", "keep_memory", "rec", "floor_req", "mem_raised"),
      writes=("cpu_req_usage", "mem_req_usage", "hpa_cpu_target_new", "hpa_memory_target_new", "cpu_req", "mem_req",
              "keep_cpu", "keep_memory", "mem_raised"),
      settings=("hpa_target_min", "hpa_target_max", "hpa_request"))
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
    v = rows.v
    v["cpu_req_usage"], v["mem_req_usage"] = v["cpu_req"].copy(), v["mem_req"].copy()  # before this rule
    keys = pd.DataFrame({k: rows.column(k) for k in WORKLOAD_KEY})
    groups = pd.MultiIndex.from_frame(keys).factorize()[0] if rows.n else np.zeros(0, dtype=int)
    counted = rows.column("container_type").fillna("main").replace("", "main").to_numpy() == "main"
    _coadjust(rows, "cpu", groups, counted, round_cpu_up, cpu_text)
    _coadjust(rows, "memory", groups, counted, round_memory_up, mem_text)
    _keep_requests(rows)


def _coadjust(rows: Rows, res: str, groups, counted, round_up, text) -> None:
    v, unit = rows.v, RESOURCES[res].unit
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
    one_container = rows.column("hpa_metrics").fillna("").str.contains(f"ContainerResource:{res}", regex=False).to_numpy()
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
    rows.reason(ok, f"HPA target {label} " + num_text(target, 0) + "% -> " + num_text(new_target, 0)
                + "% keeps the scaling point (" + text(point) + " per pod: " + num_text(target, 0) + "% x "
                + text(old_total) + " = " + num_text(new_target, 0) + "% x " + text(new_total) + ")")
    rows.reason(ok & (raw > hi), f"{label} requests raised so the HPA target stays at most " + num_text(hi, 0) + "%")
    rows.reason(ok & (raw < lo), "HPA target would fall to " + num_text(raw, 0) + "%: kept at " + num_text(lo, 0)
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
