"""Synthetic JVM and Go services with exactly known heap, live set and non-heap, on top of promdata's cAdvisor and
kube-state-metrics series (same 60 s grid), for the runtime tests against a real Prometheus.

- ``jvm/orders`` (2 pods, container ``app``): Micrometer names by area and pool id, a 2 GiB heap fully
  committed, a live set of 480 / 512 MiB rising by 8 MiB each hour of a 4-hour cycle, Eden a 10-minute
  saw-tooth, and ``jvm_gc_live_data_size_bytes``; its working set is the committed heap plus a non-heap of
  260 MiB with one spike to 300 MiB. Pod 0 is scraped twice (two jobs): rightsize must count it once.
- ``jvm/billing`` (1 pod): the JMX exporter's names (per area, no pools, no live data), a 1 GiB heap.
- ``go/gateway`` (1 pod): GOMEMLIMIT 900 MiB, Go heap in use 200-260 MiB; ``go/worker`` (1 pod): no GOMEMLIMIT
  (the metric reads math.MaxInt64).
- one more series of ``jvm/orders`` without a container label, which no container can claim.

``expected_hourly`` gives every runtime_hourly value Prometheus must return (its [1h] windows are closed
at both ends, so an hour's extremes include the sample on its left edge).
"""
from __future__ import annotations

import numpy as np

from promdata import STEP, ContainerSpec, Dataset, PodSpec

MIB, GIB = 2**20, 2**30
HEAP_ORDERS, HEAP_BILLING = 2 * GIB, 1 * GIB
LIVE_ORDERS = (480 * MIB, 512 * MIB)  # per pod, plus 8 MiB x (hour % 4)
NON_HEAP_ORDERS, NON_HEAP_SPIKE = 260 * MIB, 300 * MIB
LIVE_BILLING = 300 * MIB
GO_LIMIT = 900 * MIB
GO_NO_LIMIT = 9223372036854775807


def runtime_pods() -> list[PodSpec]:
    def pod(ns, name, workload, rs, node="node-a", mem=1.5 * GIB):
        return PodSpec(ns, name, "Deployment", workload, "ReplicaSet", rs, "Deployment", workload, node=node,
                       containers=[ContainerSpec("app", 0.3, 0.1, mem, 0.0, 0.5, float("nan"), 2.5 * GIB, 2.5 * GIB)])
    return [pod("jvm", "orders-5f-0", "orders", "orders-5f"), pod("jvm", "orders-5f-1", "orders", "orders-5f", "node-b"),
            pod("jvm", "billing-7c-0", "billing", "billing-7c"),
            pod("go", "gateway-6d-0", "gateway", "gateway-6d", mem=400 * MIB), pod("go", "worker-8b-0", "worker", "worker-8b", mem=300 * MIB)]


class RuntimeDataset(Dataset):
    """promdata.Dataset with the runtime series above; ``expected_hourly`` for the window."""

    def __init__(self, end: int, hours: float):
        super().__init__(end, hours, pods=runtime_pods())
        self.runtime: dict[tuple, dict] = {}
        minute = (self.ts // STEP).astype(np.int64)
        hour = (self.end - self.ts) // 3600  # 0 = the last hour
        for (ns, pod, cname), ser in self._series.items():
            w = ser["pod"].workload
            if w in ("orders", "billing"):
                i = int(pod[-1])
                live = (LIVE_ORDERS[i] if w == "orders" else LIVE_BILLING) + 8 * MIB * (hour % 4)
                eden = (minute % 10) * 36 * MIB
                heap = HEAP_ORDERS if w == "orders" else HEAP_BILLING
                non_heap = np.full(self.n, float(NON_HEAP_ORDERS))
                non_heap[self.n // 3 + 7 * i] = NON_HEAP_SPIKE
                ser["mem"] = (heap + non_heap).astype(float)  # the working set: committed heap + everything else
                self.runtime[(ns, pod, cname)] = dict(kind="jvm", workload=w, live=live.astype(float), eden=eden.astype(float),
                                                      survivor=np.full(self.n, 16.0 * MIB), heap=float(heap),
                                                      metaspace=np.full(self.n, 120.0 * MIB), code=40.0 * MIB + minute % 7 * MIB,
                                                      non_heap=non_heap)
            else:
                inuse = 200 * MIB + (minute % 60) * MIB
                limit = GO_LIMIT if w == "gateway" else GO_NO_LIMIT
                self.runtime[(ns, pod, cname)] = dict(kind="go", workload=w, inuse=inuse.astype(float), limit=float(limit))

    def _lines(self, ts_ms: bool):
        yield from super()._lines(ts_ms)
        mult = 1000 if ts_ms else 1
        tsv = [str(int(t) * mult) for t in self.ts]

        def emit(name, labels, values):
            for v, t in zip(np.broadcast_to(values, (self.n,)), tsv):
                yield f"{name}{{{labels}}} {_fmt(v)} {t}\n"

        for (ns, pod, cname), r in self.runtime.items():
            jobs = ("a", "b") if pod == "orders-5f-0" else ("a",)
            for job in jobs:
                base = f'namespace="{ns}",pod="{pod}",container="{cname}",job="{job}",instance="10.1.0.{len(job)}:8080"'
                if r["kind"] == "go":
                    yield from emit("go_memstats_heap_inuse_bytes", base, r["inuse"])
                    yield from emit("go_gc_gomemlimit_bytes", base, r["limit"])
                elif r["workload"] == "orders":
                    yield from self._micrometer(emit, base, r)
                else:
                    yield from self._jmx(emit, base, r)
        r = self.runtime[("jvm", "orders-5f-1", "app")]  # scraped without a container label: unattributable
        yield from emit("jvm_gc_live_data_size_bytes", 'namespace="jvm",pod="orders-5f-1",container="",job="c"', r["live"])

    @staticmethod
    def _micrometer(emit, base, r):
        pools = {"G1 Eden Space": (r["eden"], 600.0 * MIB, -1.0), "G1 Old Gen": (r["live"], 1400.0 * MIB, r["heap"]),
                 "G1 Survivor Space": (r["survivor"], r["heap"] - 2000.0 * MIB, -1.0)}
        for pool, (used, committed, top) in pools.items():
            yield from emit("jvm_memory_used_bytes", f'{base},area="heap",id="{pool}"', used)
            yield from emit("jvm_memory_committed_bytes", f'{base},area="heap",id="{pool}"', committed)
            yield from emit("jvm_memory_max_bytes", f'{base},area="heap",id="{pool}"', top)
        for pool, used in (("Metaspace", r["metaspace"]), ("CodeCache", r["code"])):
            yield from emit("jvm_memory_used_bytes", f'{base},area="nonheap",id="{pool}"', used)
        yield from emit("jvm_gc_live_data_size_bytes", base, r["live"])

    @staticmethod
    def _jmx(emit, base, r):
        yield from emit("jvm_memory_bytes_used", f'{base},area="heap"', r["live"] + r["eden"])
        yield from emit("jvm_memory_bytes_committed", f'{base},area="heap"', r["heap"])
        yield from emit("jvm_memory_bytes_max", f'{base},area="heap"', r["heap"])
        yield from emit("jvm_memory_bytes_used", f'{base},area="nonheap"', r["metaspace"] + r["code"])

    # --- what Prometheus must answer ------------------------------------------------------------------
    def expected_hourly(self, window_hours: int, closed: bool = True) -> dict[tuple, dict]:
        """{(namespace, pod, container, hours before the end): {runtime_hourly column: value}}, each hour
        closed at both ends ([t - 1h, t]) as Prometheus' range selectors are, or left-open ((t - 1h, t]) as
        VictoriaMetrics' are (``closed`` False)."""
        out = {}
        for (ns, pod, cname), r in self.runtime.items():
            for k in range(window_hours):
                hi = self.n - 1 - k * 60
                sl = slice(hi - 60 if closed else hi - 59, hi + 1)
                if r["kind"] == "go":
                    limit = r["limit"] if r["limit"] < 2**62 else float("nan")
                    out[(ns, pod, cname, k)] = {"runtime": "go", "heap_used_max_bytes": r["inuse"][sl].max(), "runtime_max_bytes": limit}
                    continue
                micrometer = r["workload"] == "orders"
                used = (r["eden"][sl].min() + r["live"][sl].min() + r["survivor"][sl].min()) if micrometer else \
                    (r["live"] + r["eden"])[sl].min()  # the pools' minima summed / the area's own minimum
                top = (r["eden"][sl].max() + r["live"][sl].max() + r["survivor"][sl].max()) if micrometer else \
                    (r["live"] + r["eden"])[sl].max()
                pools = (r["metaspace"][sl].max() + r["code"][sl].max()) if micrometer else (r["metaspace"] + r["code"])[sl].max()
                out[(ns, pod, cname, k)] = {
                    "runtime": "jvm", "heap_used_min_bytes": used, "heap_used_max_bytes": top,
                    "heap_committed_max_bytes": r["heap"], "runtime_max_bytes": r["heap"],
                    "live_set_max_bytes": r["live"][sl].max() if micrometer else float("nan"),
                    "non_heap_max_bytes": r["non_heap"][sl].max(), "non_heap_pools_max_bytes": pools}
        return out


def _fmt(v: float) -> str:
    return repr(float(v)) if v != int(v) else str(int(v))
