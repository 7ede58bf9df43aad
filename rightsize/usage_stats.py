"""The one registry of usage statistics: resources, statistics, bases, their column names, and the key of a
container. The base layer: the schema, config, settings, collect and analysis all read it from here.

**Bases** (how the replicas of one container are combined):

- ``pooled``: every replica's samples in one distribution, as VPA pools its histogram. The
  default: it does not grow with the replica count.
- ``max_over_pods``: the statistic of each pod, then the largest over pods (KRR's statistic). Pods
  with less than ``sketch.MIN_POD_SAMPLES`` samples are left out unless no pod has that many, so a pod
  that lived through one start-up spike does not decide the request.
- ``busiest``: the busiest replica's value at each step (the largest over the pods alive at that
  step), then the statistic over steps. Grows with the replica count.

A statistic a policy names (``max``, ``p95``, ``p99.5``...) is parsed once, where the config is read, into a
:class:`StatisticName`: the name as text, with its quantile.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

WORKLOAD_KEY = ("cluster", "namespace", "kind", "workload")
CONTAINER_KEY = WORKLOAD_KEY + ("container",)
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class Resource:
    name: str
    unit: str  # column suffix: cores / bytes / ratio
    floor: float  # upper edge of bucket 0, in the unit
    description: str
    max_note: str = "largest raw sample of any pod (finer than the step)"  # what its max column holds
    core: bool = True  # every container has it (False: GPU usage, only containers with GPUs; optional columns)


@dataclass(frozen=True)
class Statistic:
    name: str  # p50 ... max
    quantile: float
    description: str


@dataclass(frozen=True)
class Basis:
    name: str
    description: str


RESOURCES = {
    "cpu": Resource("cpu", "cores", 1e-4, "CPU usage: rate() of the cAdvisor CPU counter over [prometheus] rate_window",
                    "largest step value of any pod"),
    "memory": Resource("memory", "bytes", 65536.0, "working set (container_memory_working_set_bytes)"),
    # GPU usage from NVIDIA's DCGM exporter, per pod the busiest (fullest) of its GPUs at each step
    "gpu_engine": Resource("gpu_engine", "ratio", 1e-4, "GPU engine active: share of the time the GPU's graphics/compute "
                           "engine was busy (DCGM_FI_PROF_GR_ENGINE_ACTIVE, else DCGM_FI_DEV_GPU_UTIL / 100), the busiest "
                           "of the pod's GPUs", "largest step value of any pod", core=False),
    "gpu_memory": Resource("gpu_memory", "bytes", 65536.0, "GPU frame buffer used (DCGM_FI_DEV_FB_USED), the fullest of the "
                           "pod's GPUs", "largest raw sample of any pod's fullest GPU (finer than the step)", core=False),
}
GPU_RESOURCES = tuple(r for r, res in RESOURCES.items() if not res.core)


STATISTICS = {s.name: s for s in (
    Statistic("p50", 0.50, "median"),
    Statistic("p90", 0.90, "90th percentile"),
    Statistic("p95", 0.95, "95th percentile"),
    Statistic("p99", 0.99, "99th percentile"),
    Statistic("max", 1.00, "maximum"),
)}


QUANTILES = tuple(s for s in STATISTICS.values() if s.quantile < 1.0)


BASES = {b.name: b for b in (
    Basis("pooled", "every replica's samples pooled"),
    Basis("max_over_pods", "largest of each pod's own statistic"),
    Basis("busiest", "busiest replica at each step"),
)}


DEFAULT_BASIS = "pooled"


_STAT_NAME = re.compile(r"^(max|p(\d{1,2}(\.\d+)?))$")


def parse_statistic(name: str) -> float:
    """The quantile of a statistic name: 'p95' -> 0.95, 'p99.9' -> 0.999, 'max' -> 1.0; ValueError otherwise."""
    m = _STAT_NAME.match(str(name))
    if not m or (m.group(2) is not None and not 0 < float(m.group(2)) < 100):
        raise ValueError(f"not a usage statistic: {name!r} (expected max or pNN such as p50, p95, p99.9)")
    return 1.0 if m.group(1) == "max" else float(m.group(2)) / 100.0


class StatisticName(str):
    """A statistic's name ('p95', 'p99.5', 'max') that was parsed: the text as it is, plus its ``quantile``.

    A str, so it is written, compared and hashed as its name; ``StatisticName(name)`` of one is that one
    (not parsed again). ValueError for a name that is no statistic."""

    quantile: float

    def __new__(cls, name: str) -> "StatisticName":
        if isinstance(name, StatisticName):
            return name
        value = super().__new__(cls, name)
        value.quantile = parse_statistic(name)
        return value

    def __deepcopy__(self, memo) -> "StatisticName":
        return self  # immutable (dataclasses.asdict deep-copies a config's values)

    def __reduce__(self):
        return StatisticName, (str(self),)


def usage_column(resource: str, stat: str, basis: str = DEFAULT_BASIS) -> str:
    """Name of the usage-table column holding ``stat`` of ``resource`` on ``basis``.

    The max is the same on every basis: ``cpu_max_cores`` (largest step value of any pod) and
    ``memory_max_bytes`` (largest raw sample of any pod, finer than the step)."""
    unit = RESOURCES[resource].unit
    if stat == "max":
        return f"{resource}_max_{unit}"
    return f"{resource}_{basis}_{stat}_{unit}"


def usage_statistic_columns(core_only: bool = False) -> list[tuple[str, str]]:
    """(column, description) of every statistic column of the usage table, in schema order (``core_only``:
    those of the resources every container has, CPU and memory)."""
    out = []
    for res in RESOURCES.values():
        if core_only and not res.core:
            continue
        for basis in BASES.values():
            for stat in QUANTILES:
                out.append((usage_column(res.name, stat.name, basis.name),
                            f"{res.description}: {stat.description}, {basis.description}; {res.unit}"))
        out.append((usage_column(res.name, "max"), f"{res.description}: {res.max_note}; {res.unit}"))
    return out


def column_for(resource: str, stat: str, basis: str = DEFAULT_BASIS, half_life: float = 0.0) -> str:
    """The usage-frame column holding ``stat`` of ``resource`` on ``basis`` (decayed with ``half_life``
    seconds): the usage table's own column when the snapshot carries it, else a derived column that
    :func:`derived_statistics` computes from the histograms. The max never decays."""
    if stat == "max" or (stat in STATISTICS and not half_life):
        return usage_column(resource, stat, basis)
    return f"{resource}_{basis}_{stat}_hl{int(half_life)}_{RESOURCES[resource].unit}"


def is_stored(resource: str, stat: str, basis: str = DEFAULT_BASIS, half_life: float = 0.0) -> bool:
    """Whether the usage table carries this statistic (else it is computed from the snapshot's histograms)."""
    return column_for(resource, stat, basis, half_life) == usage_column(resource, stat, basis)


def policies_need_histograms(policies) -> bool:
    """Whether any of ``policies`` (config Policy objects) asks for a statistic the usage table does not
    carry, so that it is computed from the histograms."""
    return any(not is_stored(res, stat, p.per_replica, p.usage_half_life)
               for p in policies for res, stat in (("cpu", p.cpu_request_percentile), ("memory", p.memory_request_percentile)))


# Usage patterns (analysis/patterns.py classifies each container's CPU and memory into one): a policy's margin
# is chosen per resource and pattern, under the key margin_key(resource, pattern) of its ``margins``.
PATTERNS = ("flat", "diurnal", "bursty", "growing")


def margin_key(resource: str, pattern: str) -> str:
    """The key of a pattern's margin in a policy's ``margins`` table, e.g. 'cpu_bursty'."""
    return f"{resource}_{pattern}"


# CPU does not grow with pod age in rightsize's model: only memory has a growing pattern
MARGIN_KEYS = tuple(margin_key(r, p) for r in RESOURCES for p in PATTERNS if not (r == "cpu" and p == "growing"))
