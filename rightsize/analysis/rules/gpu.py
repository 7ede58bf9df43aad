"""Rules for the containers that ask for GPUs: measured or not, idle, shared (a MIG slice, or time-slicing /
MPS), a smaller GPU, or keep; each with its evidence. They run after the CPU and memory rules' status (a
patchable GPU change makes a container a change) and read
the GPU usage the DCGM exporter gave (usage table ``gpu_engine_*``, ``gpu_memory_*``) and the facts of
analysis/gpu_fit.py. One GPU action per container; its dollars are cost.py's (gpu_share_after: what the
container's GPU cost becomes, as a share of today's).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...gpu_resources import WHOLE_GPU_RESOURCES
from .. import gpu_fit
from .base import Rows, rule, usage_columns
from .text import joined, mem_text, pct_text


def _pct(fraction) -> pd.Series:
    """A share as a percentage with one decimal ("4.9%"): GPU thresholds sit at a few percent."""
    return pd.Series(np.round(np.nan_to_num(np.asarray(fraction, dtype=float)) * 100, 1)).astype(str) + "%"

_KEY = ("cluster", "namespace", "kind", "workload")
_ENGINE_P95 = usage_columns("gpu_engine", ("p95",), "pooled")
_ACTIONS = ("gpu_action", "gpu_share_after", "gpu_target", "gpu_resource_rec", "gpu_count_rec")


def _gib(num_bytes: np.ndarray) -> pd.Series:
    return pd.Series(np.round(np.nan_to_num(num_bytes) / 2**30, 1)).astype(str) + " GiB"


@rule(after="status",
      reads=_KEY + ("rec", "gpu_resource", "gpu_request_count", "gpu_model", "gpu_memory_total_bytes", "gpu_engine_metric",
                    "gpu_engine_mean_ratio", "gpu_memory_max_bytes", "hours_covered") + _ENGINE_P95,
      writes=("gpu", "gpu_measured", "gpu_model_name", "gpu_memory", "gpu_sharing", "gpu_price", "gpu_time_sliced",
              "gpu_mig_offered", "gpu_engine_p95", "gpu_engine_mean", "gpu_memory_peak", "gpu_evidence") + _ACTIONS,
      flags=("gpu_unmeasured",))
def gpu_facts(rows: Rows) -> None:
    """GPU facts: which containers ask for GPUs, on which GPU, and what the DCGM exporter measured.

    A container asks for GPUs when its gpu_resource (nvidia.com/gpu, amd.com/gpu or a MIG slice) has a count.
    Its GPU: the model of the nodes its pods ran on (analysis/gpu_fit.py). Measured: it has a recommendation
    (enough history) and engine-active samples; the evidence is the engine active p95 (every replica's samples
    pooled), the frame buffer's peak and size, the model and the days of history.

    Reason: "GPU use not measured (no DCGM exporter series for its pods): no GPU recommendation".
    Flag: gpu_unmeasured.
    """
    v, n = rows.v, rows.n
    gpu = (rows.column("gpu_resource").fillna("").astype(str).to_numpy() != "") & (np.nan_to_num(rows.num("gpu_request_count")) > 0)
    ctx = gpu_fit.gpu_context(rows.snapshot, rows.config, pd.DataFrame({
        **{k: rows.column(k) for k in _KEY}, "gpu_model": rows.column("gpu_model"),
        "gpu_memory_total_bytes": rows.num("gpu_memory_total_bytes")}, index=rows.f.index))
    p95, peak = rows.num(_ENGINE_P95[0]), rows.num("gpu_memory_max_bytes")
    measured = gpu & v["rec"] & ~np.isnan(p95)
    v.update(gpu=gpu, gpu_measured=measured, gpu_model_name=ctx["gpu_model_name"].to_numpy(dtype=object),
             gpu_memory=ctx["gpu_memory_bytes"].to_numpy(dtype=float), gpu_sharing=ctx["sharing"].to_numpy(dtype=object),
             gpu_price=ctx["usd_per_gpu_hour_on_demand"].to_numpy(dtype=float), gpu_time_sliced=ctx["time_sliced"].to_numpy(dtype=bool),
             gpu_mig_offered=ctx["mig_offered"].to_numpy(dtype=object), gpu_engine_p95=np.where(gpu, p95, np.nan),
             gpu_engine_mean=np.where(gpu, rows.num("gpu_engine_mean_ratio"), np.nan), gpu_memory_peak=np.where(gpu, peak, np.nan))
    model = pd.Series(v["gpu_model_name"]).replace("", "GPU")
    days = pd.Series(np.round(np.nan_to_num(rows.num("hours_covered")) / 24.0, 1)).astype(str)
    v["gpu_evidence"] = np.where(measured, joined(
        "engine active p95 " + _pct(p95) + " (" + rows.column("gpu_engine_metric").fillna("").astype(str).reset_index(drop=True)
        + "), frame buffer peak " + _gib(peak) + " of " + _gib(v["gpu_memory"]) + " on " + model, ", " + days + " d").to_numpy(), "")
    v.update(gpu_action=np.where(gpu & ~measured, "unmeasured", "").astype(object), gpu_share_after=np.full(n, np.nan),
             gpu_target=np.full(n, "", dtype=object), gpu_resource_rec=np.full(n, "", dtype=object),
             gpu_count_rec=np.full(n, np.nan))
    unmeasured = gpu & v["rec"] & np.isnan(p95)
    rows.reason(unmeasured, "GPU use not measured (no DCGM exporter series for its pods): no GPU recommendation")
    rows.flag(unmeasured, "gpu_unmeasured")


@rule(after="gpu_facts", reads=("gpu_measured", "gpu_engine_p95", "gpu_request_count") + _ACTIONS,
      writes=("gpu_action", "gpu_share_after", "gpu_target"), settings=("gpu_idle_below",), flags=("gpu_idle",))
def gpu_idle(rows: Rows) -> None:
    """GPU idle: GPUs requested, engine active p95 below gpu_idle_below over the window: release them.

    Reason: "GPU idle: engine active p95 <x>% < <y>%: release its <n> GPU(s) (scale it to zero, delete it, or run
    it only when there is work)".
    Flag: gpu_idle.
    """
    v = rows.v
    idle = v["gpu_measured"] & (v["gpu_engine_p95"] < rows.pf("gpu_idle_below"))
    v["gpu_action"] = np.where(idle, "idle", v["gpu_action"])
    v["gpu_share_after"] = np.where(idle, 0.0, v["gpu_share_after"])
    v["gpu_target"] = np.where(idle, "no GPU", v["gpu_target"])
    count = pd.Series(np.nan_to_num(rows.num("gpu_request_count"))).round().astype(int).astype(str)
    rows.reason(idle, "GPU idle: engine active p95 " + _pct(v["gpu_engine_p95"]) + " < " + _pct(rows.pf("gpu_idle_below"))
                + ": release its " + count + " GPU(s) (scale it to zero, delete it, or run it only when there is work)")
    rows.flag(idle, "gpu_idle")


@rule(after="gpu_idle",
      reads=("gpu_measured", "gpu_resource", "gpu_request_count", "gpu_engine_p95", "gpu_memory_peak", "gpu_memory",
             "gpu_model_name", "gpu_sharing", "gpu_time_sliced", "gpu_mig_offered") + _ACTIONS,
      writes=_ACTIONS, settings=("margin", "gpu_memory_margin", "gpu_time_slices"), flags=("gpu_share",))
def gpu_share(rows: Rows) -> None:
    """GPU share: one GPU asked for, and a smaller slice holds the p95 compute and the peak frame buffer.

    Needs: engine active p95 x (1 + margin) and frame buffer peak x (1 + gpu_memory_margin). On a GPU with MIG
    (A100, H100, H200) the smallest profile holding both (gpu_fit.mig_fit); it is patched (nvidia.com/gpu ->
    nvidia.com/mig-<profile>) only when some node with that GPU offers the slice, otherwise it is report-only and
    says what the cluster needs. Elsewhere (T4, L4, A10G, L40S) time-slicing or MPS, k pods per GPU (at most
    gpu_time_slices; report-only: the device plugin's sharing configuration decides it).

    Reason: "GPU share: a MIG <profile> slice (<share> of a <model>) holds ...", "GPU share: time-slicing or MPS,
    <k> pods per <model> ...".
    Flag: gpu_share.
    """
    v = rows.v
    one = v["gpu_measured"] & (v["gpu_action"] == "") & (rows.num("gpu_request_count") == 1) & ~v["gpu_time_sliced"] \
        & rows.column("gpu_resource").isin(WHOLE_GPU_RESOURCES).to_numpy()
    compute = v["gpu_engine_p95"] * (1 + rows.pf("margin"))
    memory = v["gpu_memory_peak"] * (1 + rows.pf("gpu_memory_margin"))
    sharing = pd.Series(v["gpu_sharing"], dtype=object)
    fit = gpu_fit.mig_fit(pd.Series(v["gpu_model_name"]).where(sharing.str.contains("mig").to_numpy(), ""), compute, memory)
    mig = one & (fit["share"].to_numpy() < 1.0)
    k = np.minimum(gpu_fit.time_slices(compute, memory, v["gpu_memory"], 1 << 20), rows.pf("gpu_time_slices").astype(int))
    slices = one & ~mig & sharing.str.contains("time-slicing").to_numpy() & (k >= 2)
    offered = np.array([r in o for r, o in zip(fit["resource"], v["gpu_mig_offered"])], dtype=bool)
    v["gpu_action"] = np.where(mig, "share_mig", np.where(slices, "share_time_slicing", v["gpu_action"]))
    v["gpu_share_after"] = np.where(mig, fit["share"].to_numpy(), np.where(slices, 1.0 / np.maximum(k, 1), v["gpu_share_after"]))
    v["gpu_target"] = np.where(mig, "MIG " + fit["profile"], np.where(slices, "time-slicing " + pd.Series(k).astype(str) + " per GPU",
                                                                       v["gpu_target"])).astype(object)
    v["gpu_resource_rec"] = np.where(mig & offered, fit["resource"], v["gpu_resource_rec"]).astype(object)
    v["gpu_count_rec"] = np.where(mig & offered, 1.0, v["gpu_count_rec"])
    model = pd.Series(v["gpu_model_name"])
    holds = (" holds engine active p95 " + _pct(v["gpu_engine_p95"]) + " +" + pct_text(rows.pf("margin")) + " and frame buffer peak "
             + mem_text(v["gpu_memory_peak"]) + " +" + pct_text(rows.pf("gpu_memory_margin")))
    rows.reason(mig, "GPU share: a MIG " + fit["profile"].reset_index(drop=True) + " slice (" + pct_text(fit["share"].to_numpy())
                + " of one " + model + ")" + holds + pd.Series(np.where(offered, ": nvidia.com/gpu 1 -> " + fit["resource"].reset_index(drop=True) + " 1",
                "; report only: no node offers " + fit["resource"].reset_index(drop=True) + " yet: partition some " + model
                + " nodes with MIG (e.g. the GPU operator's nvidia.com/mig.config label) to apply it")))
    rows.reason(slices, "GPU share: time-slicing or MPS, " + pd.Series(k).astype(str) + " pods per " + model + " (each" + holds
                + " of " + mem_text(v["gpu_memory"]) + "); report only: set the NVIDIA device plugin's sharing replicas on a node group")
    rows.flag(mig | slices, "gpu_share")


@rule(after="gpu_share",
      reads=("gpu_measured", "gpu_resource", "gpu_request_count", "gpu_engine_p95", "gpu_memory_peak", "gpu_price",
             "gpu_model_name", "cluster") + _ACTIONS,
      writes=_ACTIONS, settings=("gpu_memory_margin", "gpu_smaller_below"), flags=("gpu_smaller",))
def gpu_smaller(rows: Rows) -> None:
    """Smaller GPU: a cheaper GPU family whose memory holds the frame buffer peak, for a GPU not shared above.

    For a container on one whole GPU (inference, typically: a multi-GPU job leans on the GPUs' interconnect)
    whose engine active p95 is below gpu_smaller_below, the cheapest GPU per GPU-hour (of the families
    rightsize suggests, on the same host architecture, priced from the snapshot: gpu_fit.smaller_gpus) whose
    memory holds the frame buffer peak x (1 + gpu_memory_margin) and that costs less than today's. Report-only:
    a smaller GPU is usually slower, so benchmark the workload there before moving its node group.

    Reason: "smaller GPU: <model> (<type>, <memory>) holds frame buffer peak <v> +<m>% at <p> against <q> USD per
    GPU-hour; engine active p95 <x>%: benchmark it there before moving (report only)".
    Flag: gpu_smaller.
    """
    v = rows.v
    todo = v["gpu_measured"] & (v["gpu_action"] == "") & rows.column("gpu_resource").isin(WHOLE_GPU_RESOURCES).to_numpy() \
        & (rows.num("gpu_request_count") == 1) & (v["gpu_engine_p95"] < rows.pf("gpu_smaller_below")) & ~np.isnan(v["gpu_price"])
    if not todo.any():
        return
    need = v["gpu_memory_peak"] * (1 + rows.pf("gpu_memory_margin"))
    cands = gpu_fit.smaller_gpus(rows.snapshot, rows.config)
    region = gpu_fit.regions(rows.snapshot, rows.column("cluster"))
    pick = gpu_fit.cheapest_holding(cands, region, need, v["gpu_price"], pd.Series(v["gpu_model_name"]))
    smaller = todo & pick["family"].ne("").to_numpy()
    v["gpu_action"] = np.where(smaller, "smaller_gpu", v["gpu_action"])
    v["gpu_share_after"] = np.where(smaller, pick["usd_per_gpu_hour"].to_numpy() / v["gpu_price"], v["gpu_share_after"])
    target = pick["gpu_model"] + " (" + pick["instance_type"] + ")"
    v["gpu_target"] = np.where(smaller, target, v["gpu_target"]).astype(object)
    price = pd.Series(np.round(pick["usd_per_gpu_hour"].to_numpy(), 4)).astype(str)
    rows.reason(smaller, "smaller GPU: " + target + ", " + _gib(pick["gpu_memory_bytes"].to_numpy()) + ", holds frame buffer peak "
                + mem_text(v["gpu_memory_peak"]) + " +" + pct_text(rows.pf("gpu_memory_margin")) + " at " + price + " against "
                + pd.Series(np.round(v["gpu_price"], 4)).astype(str) + " USD per GPU-hour; engine active p95 "
                + _pct(v["gpu_engine_p95"]) + ": benchmark it there before moving (report only)")
    rows.flag(smaller, "gpu_smaller")


@rule(after="gpu_smaller", reads=("gpu_measured", "gpu_engine_p95", "gpu_memory_peak", "gpu_memory", "gpu_resource_rec",
                                  "status", "changes") + _ACTIONS,
      writes=("gpu_action", "status", "changes"))
def gpu_outcome(rows: Rows) -> None:
    """GPU outcome: a measured GPU no rule above changes is kept; a patchable GPU change makes the container a change.

    A MIG slice the nodes offer changes the container's resources (its patch sets the MIG resource), so a row
    the CPU and memory thresholds kept becomes a change; the other GPU actions are report-only.

    Reason: "GPU kept: engine active p95 <x>%, frame buffer peak <v> of <w>".
    Flag: none.
    """
    v = rows.v
    keep = v["gpu_measured"] & (v["gpu_action"] == "")
    v["gpu_action"] = np.where(keep, "keep", v["gpu_action"])
    patch = v["gpu_resource_rec"] != ""
    v["status"] = np.where(patch & (v["status"] == "keep"), "change", v["status"])
    v["changes"] = np.where(patch, np.where(v["changes"] == "", "GPU", v["changes"] + ", GPU"), v["changes"])
    rows.reason(keep, "GPU kept: engine active p95 " + _pct(v["gpu_engine_p95"]) + ", frame buffer peak "
                + _gib(v["gpu_memory_peak"]) + " of " + _gib(v["gpu_memory"]))
