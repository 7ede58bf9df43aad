"""Friendly quantities: recommendations rounded to steps people would write by hand.

CPU (cores): steps of 5m below 100m, 10m below 1 core, 50m from 1 core up.
Memory (bytes): whole MiB below 1 GiB, 16 MiB steps from 1 GiB up.

Rounding is always UP for recommendations (a rounded request never undercuts the computed one);
``*_down`` exists only to fit under an upper bound. NaN stays NaN (no recommendation).
All functions take scalars or array-likes and return float numpy arrays (or floats for scalars).
"""
from __future__ import annotations

import numpy as np

from ..quantity import GIB, MIB

# CPU: float noise (0.1 * 3 = 0.30000000000000004 cores) must not push a value one step up; the
# tolerance undercuts by at most 1e-9 of a step. Memory is rounded exactly (no tolerance) because
# the safety rules compare it with the observed max working set byte for byte.
_CPU_EPS = 1e-9


def _cpu_step_millis(millis: np.ndarray) -> np.ndarray:
    return np.where(millis < 100, 5.0, np.where(millis < 1000, 10.0, 50.0))


def _mem_step_bytes(num_bytes: np.ndarray) -> np.ndarray:
    return np.where(num_bytes < GIB, float(MIB), 16.0 * MIB)


def _apply(values, fn):
    arr = np.asarray(values, dtype=float)
    out = fn(arr)
    return float(out) if np.ndim(values) == 0 else out


def round_cpu_up(cores):
    """Round cores up to the next friendly CPU step (5m / 10m / 50m). NaN and inf pass through."""

    def run(arr):
        millis = arr * 1000.0
        step = _cpu_step_millis(millis)
        with np.errstate(invalid="ignore"):
            up = np.ceil(millis / step - _CPU_EPS) * step
        # A value just below a band edge (e.g. 99.7m) rounds to the edge, which is a step of both bands.
        return np.where(np.isfinite(arr), np.maximum(up, 0.0) / 1000.0, arr)

    return _apply(cores, run)


def round_cpu_down(cores):
    """Round cores down to a friendly CPU step (used only to stay under a maximum)."""

    def run(arr):
        millis = arr * 1000.0
        step = _cpu_step_millis(millis)
        with np.errstate(invalid="ignore"):
            down = np.floor(millis / step + _CPU_EPS) * step
        return np.where(np.isfinite(arr), np.maximum(down, 0.0) / 1000.0, arr)

    return _apply(cores, run)


def round_memory_up(num_bytes):
    """Round bytes up to whole MiB below 1 GiB, to 16 MiB steps from 1 GiB. NaN and inf pass through."""
    return _round_memory(num_bytes, up=True)


def round_memory_down(num_bytes):
    """Round bytes down to a friendly memory step (used only to stay under a maximum)."""
    return _round_memory(num_bytes, up=False)


def _round_memory(num_bytes, up: bool):
    def run(arr):
        step = _mem_step_bytes(arr)
        with np.errstate(invalid="ignore"):
            if up:
                out = np.ceil(arr / step) * step
                # the division can round a hair down; never return less than the input
                out = np.where(out < arr, out + step, out)
            else:
                out = np.floor(arr / step) * step
        return np.where(np.isfinite(arr), np.maximum(out, 0.0), arr)

    return _apply(num_bytes, run)
