"""The demo's runtimes (JVM, Go): their spec (image, env, command, as the demo manifests write them) and their
own memory per pod and hour (runtime_hourly), consistent with the working set the demo generates for them.

A JVM's working set is its committed heap plus everything else (the generated series, ``memory_mean`` being
that non-heap part); its live set follows a slow daily wave around ``live``; Go's heap in use is a share of
its working set. No random draw is taken here, so the rest of the demo does not move.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .quantity import MIB, parse_memory
from .sources.runtime_specs import runtime_row

HOUR_SECONDS = 3600.0


@dataclass
class DemoRuntime:
    """A container's runtime: ``kind`` jvm or go, its image, env and command as written in the manifest; for a
    JVM its ``committed`` heap and ``live`` set, and whether its exporter reports the live set (Micrometer) or
    only the heap (the JMX exporter: the troughs are read); for Go the share of the working set its heap is."""

    kind: str
    image: str
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    committed: str = ""
    live: str = ""
    live_data: bool = True
    heap_share: float = 0.7

    def spec(self) -> dict:
        """image, env and command of the container, as a manifest has them."""
        out: dict = {"image": self.image}
        if self.command:
            out["command"] = list(self.command)
        if self.env:
            out["env"] = [{"name": k, "value": v} for k, v in self.env.items()]
        return out

    def working_set(self, non_heap: np.ndarray) -> np.ndarray:
        """The container's working set from the generated series: a JVM adds its committed heap to it."""
        return non_heap + parse_memory(self.committed) if self.kind == "jvm" else non_heap


def runtime_tables(pods_by_container, grid, cluster: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runtimes and runtime_hourly tables of the demo's containers that have a runtime."""
    specs, hourly = [], []
    for (w, c), pods in pods_by_container:
        r = getattr(c, "runtime", None)
        if r is None:
            continue
        ident = {"cluster": cluster, "namespace": w.namespace, "kind": w.kind, "workload": w.name}
        row = runtime_row({"name": c.name, **r.spec()}, ident)
        specs.append(row)
        limit = parse_memory(c.memory_limit or c.memory_request)
        heap_max = row["memory_setting_bytes"] if row["memory_setting_percent"] != row["memory_setting_percent"] else \
            row["memory_setting_percent"] / 100 * limit
        for i, (pod, steps, _cpu, mem, _kills) in enumerate(pods):
            hourly.append(_pod_hours(r, {**ident, "container": c.name, "pod": pod}, steps, mem, grid, i, heap_max))
    return pd.DataFrame(specs), (pd.concat(hourly, ignore_index=True) if hourly else pd.DataFrame())


def _pod_hours(r: DemoRuntime, key: dict, steps: np.ndarray, mem: np.ndarray, grid, index: int, heap_max: float) -> pd.DataFrame:
    """One pod's hours: the extremes of its series in each hour bin (counted back from the window end)."""
    t = grid.first + steps * grid.step
    hour = ((grid.end - t) // HOUR_SECONDS).astype(np.int64)
    frame = pd.DataFrame({"hour": hour})
    if r.kind == "jvm":
        committed = parse_memory(r.committed)
        live = parse_memory(r.live) * (1 + 0.03 * np.sin(2 * np.pi * t / 86400 + index))
        frame = frame.assign(live=live, trough=live + 16 * MIB, top=np.minimum(committed, live + 0.35 * committed),
                             non_heap=mem - committed, pools=0.6 * (mem - committed))
        g = frame.groupby("hour")
        out = pd.DataFrame({"runtime": "jvm", "heap_used_min_bytes": g["trough"].min(), "heap_used_max_bytes": g["top"].max(),
                            "heap_committed_max_bytes": committed, "runtime_max_bytes": heap_max,
                            "live_set_max_bytes": g["live"].max() if r.live_data else np.nan,
                            "non_heap_max_bytes": g["non_heap"].max(), "non_heap_pools_max_bytes": g["pools"].max()})
    else:
        g = frame.assign(inuse=mem * r.heap_share).groupby("hour")
        out = pd.DataFrame({"runtime": "go", "heap_used_max_bytes": g["inuse"].max(), "runtime_max_bytes": heap_max})
    out = out.reset_index()
    out["hour"] = pd.to_datetime(grid.end - (out["hour"].to_numpy(dtype=float) + 1) * HOUR_SECONDS, unit="s", utc=True)
    return out.assign(**key)
