"""The recommendation rules, one module per family, each rule declaring what it reads and writes (base.py).

Families: scope.py (policy, eligibility, confidence), growth.py (growing memory, usage patterns and their
margins, no limit introduced below a growth), autoscaling.py (HPA scope and co-adjustment), cpu.py
(throttling, request, limit), memory.py (request, OOM demand, floor, limit), runtimes.py (a JVM's heap,
Go/Node.js/.NET runtime limits), selfcheck.py (the last days replayed against the recommendation),
outcome.py (one-off Jobs, status, flags), gpu.py (the containers that ask for GPUs, after status). Their
order, from each rule's ``after``: assign_policy, eligibility, memory_growth, usage_pattern, confidence,
hpa_scope, cpu_throttling, cpu_request, memory_request, runtime_memory, oom_demand, growth_demand,
memory_floor, hpa_coadjust, memory_limit, growing_memory_limit, cpu_limit, self_check, one_off_job, status,
provisioning_flags, runtime_setting, gpu_facts, gpu_idle, gpu_share, gpu_smaller, gpu_outcome.

**Adding a rule touches one file**: write it, declared with ``@rule(after=..., reads=..., writes=...)``,
in the family module it belongs to, or in a new module of this package: every module here (but base.py
and text.py) is read for rules, and the pipeline (recommend.PIPELINE) places each after its anchor and
checks its declaration. explain prints it with the others.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import Rule

_NOT_RULES = {"base", "text"}  # the machinery and the reason texts


def _discover() -> tuple[Rule, ...]:
    """Every Rule defined at the top of a module of this package (modules by name, rules as defined)."""
    found: list[Rule] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_RULES:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += [r for r in vars(module).values() if isinstance(r, Rule) and r.apply.__module__ == module.__name__]
    return tuple(found)


RULES = _discover()
