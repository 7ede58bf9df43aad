"""GPU extended resource names: what the device plugins advertise and pods request.

- ``nvidia.com/gpu`` (NVIDIA device plugin: a whole GPU, or a time-sliced / MPS replica of one) and
  ``amd.com/gpu`` (AMD device plugin);
- ``nvidia.com/mig-<g>g.<m>gb`` (NVIDIA device plugin, MIG "mixed" strategy: one Multi-Instance GPU
  slice of <g> compute slices and <m> GB). With the "single" strategy every GPU of a node is cut the
  same way and its slices are advertised as ``nvidia.com/gpu``; the node label
  ``nvidia.com/mig.strategy`` (GPU feature discovery) tells which.

kube-state-metrics writes a resource name as a Prometheus label value with every character outside
``[a-zA-Z0-9_]`` replaced by ``_`` (``nvidia.com/gpu`` -> ``nvidia_com_gpu``, ``nvidia.com/mig-1g.5gb``
-> ``nvidia_com_mig_1g_5gb``); :func:`from_ksm` reads them back. Counts are whole devices (extended
resources cannot be fractional or overcommitted: a request equals its limit).
"""
from __future__ import annotations

import math
import re

from .quantity import parse_count

WHOLE_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
_MIG = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)$")
_KSM_MIG = re.compile(r"^nvidia_com_mig_(\d+g)_(\d+gb)$")
_KSM_WHOLE = {"nvidia_com_gpu": "nvidia.com/gpu", "amd_com_gpu": "amd.com/gpu"}
#: RE2 alternation of the sanitised names, for a kube-state-metrics ``resource=~`` matcher.
KSM_PATTERN = "nvidia_com_gpu|amd_com_gpu|nvidia_com_mig_.+"


def is_gpu_resource(name: str) -> bool:
    """A whole GPU or a MIG slice (``nvidia.com/gpu``, ``amd.com/gpu``, ``nvidia.com/mig-1g.5gb``)."""
    return name in WHOLE_GPU_RESOURCES or bool(_MIG.match(name))


def mig_profile(name: str) -> str:
    """The MIG profile of a MIG resource name ("nvidia.com/mig-1g.5gb" -> "1g.5gb"); '' for any other."""
    m = _MIG.match(str(name))
    return m.group(1) if m else ""


def mig_resource(profile: str) -> str:
    """The extended resource of a MIG profile with the mixed strategy ("1g.5gb" -> "nvidia.com/mig-1g.5gb")."""
    return f"nvidia.com/mig-{profile}"


def from_ksm(label: str) -> str:
    """A kube-state-metrics ``resource`` label value back to the resource name; '' when it is no GPU."""
    if label in _KSM_WHOLE:
        return _KSM_WHOLE[label]
    m = _KSM_MIG.match(str(label))
    return f"nvidia.com/mig-{m.group(1)}.{m.group(2)}" if m else ""


def count(value) -> float:
    """A device count from a quantity ("1", 2); NaN for None; ValueError for anything but a whole number."""
    return math.nan if value is None else parse_count(value)


def gpu_names(*resource_lists: dict) -> list[str]:
    """The GPU resources named in a container's ``requests`` / ``limits`` (or a node's allocatable):
    whole GPUs first, then MIG slices, each by name. A container normally asks for one; the first is
    the one rightsize costs and sizes."""
    names = {str(k) for res in resource_lists for k in (res or {}) if is_gpu_resource(str(k))}
    return sorted(names, key=lambda n: (n not in WHOLE_GPU_RESOURCES, n))
