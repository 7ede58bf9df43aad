import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsize.analysis.rounding import round_cpu_down, round_cpu_up, round_memory_down, round_memory_up
from rightsize.quantity import GIB, MIB, format_cpu, format_memory


@pytest.mark.parametrize("cores, expected", [
    (0.0001, "5m"), (0.005, "5m"), (0.0051, "10m"), (0.0999, "100m"),   # 5m steps below 100m
    (0.1, "100m"), (0.1001, "110m"), (0.115, "120m"), (0.991, "1"),      # 10m steps below 1 core
    (1.0, "1"), (1.001, "1050m"), (1.26, "1.3"), (2.04, "2050m"),       # 50m steps from 1 core
])
def test_cpu_steps(cores, expected):
    assert format_cpu(round_cpu_up(cores)) == expected


@pytest.mark.parametrize("num_bytes, expected", [
    (1, "1Mi"), (MIB, "1Mi"), (MIB + 1, "2Mi"), (100.2 * MIB, "101Mi"), (GIB - 1, "1Gi"),   # whole Mi below 1Gi
    (GIB, "1Gi"), (GIB + 1, "1040Mi"), (1.5 * GIB + 1, "1552Mi"), (10 * GIB - MIB, "10Gi"),  # 16Mi steps from 1Gi
])
def test_memory_steps(num_bytes, expected):
    assert format_memory(round_memory_up(num_bytes)) == expected


def test_float_noise_does_not_add_a_cpu_step():
    # 0.1 * 3 is 0.30000000000000004 in floating point; a person would write 300m.
    assert round_cpu_up(0.1 * 3) == pytest.approx(0.3)


def test_nan_and_arrays_pass_through():
    out = round_cpu_up(np.array([np.nan, 0.0123, np.inf]))
    assert math.isnan(out[0]) and out[1] == pytest.approx(0.015) and math.isinf(out[2])
    assert math.isnan(round_memory_up(float("nan")))
    assert isinstance(round_cpu_up(0.2), float)


def test_down_rounding_stays_under():
    assert round_cpu_down(7.81) == pytest.approx(7.8)
    assert round_cpu_down(0.0999) == pytest.approx(0.095)
    assert round_memory_down(30 * GIB + 5) == 30 * GIB
    assert round_memory_down(GIB + 20 * MIB) == GIB + 16 * MIB


@given(st.floats(min_value=0, max_value=512, allow_nan=False))
def test_cpu_up_never_below_and_idempotent(cores):
    up = round_cpu_up(cores)
    assert up >= cores - 1e-9
    assert up - cores < 0.05 + 1e-9  # at most one (largest) step
    assert round_cpu_up(up) == pytest.approx(up)
    assert round_cpu_down(cores) <= cores + 1e-9


@given(st.floats(min_value=0, max_value=4 * 1024 * GIB, allow_nan=False))
def test_memory_up_never_below_and_idempotent(num_bytes):
    up = round_memory_up(num_bytes)
    assert up >= num_bytes  # exact: the safety rules compare bytes
    assert up - num_bytes <= 16 * MIB
    assert round_memory_up(up) == up
    assert round_memory_down(num_bytes) <= num_bytes
