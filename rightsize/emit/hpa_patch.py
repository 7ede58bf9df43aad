"""The HPA patch that goes with a workload's patch: JSON6902 ops moving its target utilization so the
scaling point stays (analysis/hpa.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..formatting import number
from .patch_model import WorkloadPatch, name_pattern
from .patch_text import Doc


HPA_API = ("autoscaling", "HorizontalPodAutoscaler")


@dataclass
class HpaPatch:
    """JSON6902 ops moving an HPA's target utilization with the workload's requests (analysis/hpa.py)."""

    name: str
    namespace: str
    ops: list[dict]
    changes: list[str]

    @property
    def stem(self) -> str:
        return f"hpa-{self.name}"


def hpa_patch(patch: WorkloadPatch, spec: dict | None, why_not: str = "") -> tuple[HpaPatch | None, list[str]]:
    """The HPA patch that goes with a workload patch, or notes for a person when the HPA's name or the place
    of its target is unknown (e.g. a kube-state-metrics inventory) or ``why_not`` says it is not written.
    Each target gets a ``test`` op on its current value, so the build fails if the HPA changed since the
    snapshot."""
    moves = []
    for res in ("cpu", "memory"):
        values = [(number(r.get(f"hpa_{res}_target_percent_current")), number(r.get(f"hpa_{res}_target_percent_recommended")))
                  for r in patch.rows]
        cur, new = next(((c, n) for c, n in values if not math.isnan(n)), (math.nan, math.nan))
        if not math.isnan(new) and new != cur:
            moves.append((res, cur, new))
    if not moves:
        return None, []
    name = str((spec or {}).get("hpa_name") or "")
    ops, changes, notes = [], [], []
    for res, cur, new in moves:
        path = str((spec or {}).get(f"hpa_{res}_target_path") or "")
        text = f"{res} {cur:.0f}% -> {new:.0f}%"
        if why_not or not name or not path:
            why = why_not or f"the HPA's {'name' if not name else 'target'} is not in the snapshot"
            notes.append(f"{patch.ref}: set its HPA's target {res} utilization {cur:.0f}% → {new:.0f}% together with "
                         f"this patch, or the scaling point moves ({why})")
            continue
        ops += [{"op": "test", "path": path, "value": int(cur)}, {"op": "replace", "path": path, "value": int(new)}]
        changes.append(text)
    return (HpaPatch(name, patch.namespace, ops, changes) if ops else None), notes


def hpa_doc(hpa: HpaPatch, patch: WorkloadPatch) -> Doc:
    """The JSON6902 ops of an HPA's target utilization, with the comment saying why."""
    comments = [f"rightsize: HPA {hpa.namespace}/{hpa.name} of {patch.kind} {patch.workload}: target utilization "
                f"{', '.join(hpa.changes)}, so that target x pod request (the usage at which it scales) stays",
                "as the requests change in the workload's patch; the test ops fail the build if the HPA changed."]
    return Doc(hpa.ops, comments)


def hpa_target(hpa: HpaPatch) -> dict:
    group, kind = HPA_API
    t = {"group": group, "kind": kind, "name": name_pattern(hpa.name)}  # any version: v1 and v2 have their own paths
    if hpa.namespace:
        t["namespace"] = name_pattern(hpa.namespace)
    return t
