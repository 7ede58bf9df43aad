"""The bundled GPU facts (rightsize/data/, sources in SOURCES.md there), loaded once per process.

- ``gpu_families.csv``: per EC2 GPU instance family (the part of the type's name before the dot), its GPU
  (vendor, model, memory per GPU in GiB), host processor, the general-purpose **reference type** whose unit
  prices its CPU and memory take when a node's price is split (analysis/price_split.py), and how its GPUs
  can be shared (``mig``, ``time-slicing``, ``mps``, ';' separated).
- ``mig_profiles.csv``: the Multi-Instance GPU profiles of the models that have them: SM slices (of 7),
  memory slices (of 8), the nominal memory in the profile's name (GB) and how many fit on one GPU.

Facts, not prices: the price catalogue is sources/price_catalogue.py.
"""
from __future__ import annotations

import functools
from importlib import resources

import pandas as pd

from .errors import SourceError

#: The general-purpose type whose unit prices CPU and memory take on a GPU family the table does not list.
FALLBACK_GPU_REFERENCE = "m7i.xlarge"


@functools.cache
def gpu_families() -> pd.DataFrame:
    """family, gpu_vendor, gpu_model, gpu_memory_gib (GiB per GPU), host_cpu, reference_type, sharing."""
    frame = _read("gpu_families.csv", dtype=str, keep_default_na=False)
    frame["gpu_memory_gib"] = pd.to_numeric(frame["gpu_memory_gib"])
    return frame


@functools.cache
def mig_profiles() -> pd.DataFrame:
    """gpu_model, profile, sm_slices (of 7), memory_eighths (of 8), memory_gb (nominal, the profile's name), max_instances."""
    return _read("mig_profiles.csv", dtype={"gpu_model": str, "profile": str})


def _read(name: str, **kwargs) -> pd.DataFrame:
    try:
        with resources.files("rightsize").joinpath("data", name).open("r", encoding="utf-8") as f:
            return pd.read_csv(f, **kwargs)
    except (OSError, ValueError) as exc:
        raise SourceError(f"rightsize/data/{name}: bundled GPU facts unreadable: {exc}") from None


def instance_family(instance_types: pd.Series) -> pd.Series:
    """The family of each instance type: the part of its name before the dot ("p4d.24xlarge" -> "p4d")."""
    return instance_types.fillna("").astype(str).str.split(".", n=1).str[0]


def gpu_reference_types(instance_types: pd.Series, overrides: dict | None = None) -> pd.DataFrame:
    """Per instance type (index aligned with ``instance_types``): ``reference_type``, the general-purpose
    type whose unit prices its CPU and memory take (``overrides``, family -> type, win over the
    declared table; a family in neither gets FALLBACK_GPU_REFERENCE), and ``reference_declared``
    (False for that fallback). Meaningful for GPU types only; the caller decides which those are."""
    declared = gpu_families().set_index("family")["reference_type"].to_dict()
    declared.update(overrides or {})
    ref = instance_family(instance_types).map(declared)
    return pd.DataFrame({"reference_type": ref.fillna(FALLBACK_GPU_REFERENCE).astype(str),
                         "reference_declared": ref.notna().to_numpy()}, index=instance_types.index)


def gpu_alternatives(shapes: pd.DataFrame) -> list[str]:
    """Per GPU family rightsize may suggest moving to (``suggest`` yes), its smallest type with GPUs in
    ``shapes`` (instance_type, vcpu, gpus: the price catalogue's): the types whose price tells what one GPU
    of each family costs."""
    suggested = gpu_families().loc[lambda f: f["suggest"] == "yes", "family"]
    gpu = shapes[shapes["gpus"].fillna(0) > 0].assign(family=lambda d: instance_family(d["instance_type"]))
    gpu = gpu[gpu["family"].isin(set(suggested))].sort_values(["family", "gpus", "vcpu", "instance_type"])
    return gpu.drop_duplicates("family")["instance_type"].tolist()
