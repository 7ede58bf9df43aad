"""Kubernetes quantities: parsing via the kubernetes client, formatting to friendly notation.

CPU is always in cores (float), memory always in bytes (float), as in the snapshot.
"""
from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from kubernetes.utils import parse_quantity

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4  # the one home of the byte units


def parse_cpu(value: str | int | float) -> float:
    """Parse a CPU quantity ("250m", "1.5", 2) into cores. Raises ValueError with the input."""
    try:
        return float(parse_quantity(value))
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a CPU quantity: {value!r} (expected e.g. '250m' or '1.5')") from exc


def parse_memory(value: str | int | float) -> float:
    """Parse a memory quantity ("512Mi", "1G", 1048576) into bytes. Raises ValueError with the input."""
    try:
        return float(parse_quantity(value))
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a memory quantity: {value!r} (expected e.g. '512Mi' or '2Gi')") from exc


def parse_count(value: str | int | float) -> float:
    """Parse a count of devices ("1", 2) into a float; ValueError unless it is a whole number >= 0
    (the API server refuses fractional extended resources such as nvidia.com/gpu)."""
    try:
        n = float(parse_quantity(value))
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a device count: {value!r} (expected a whole number such as 1)") from exc
    if n < 0 or n != int(n):
        raise ValueError(f"not a device count: {value!r} (expected a whole number such as 1)")
    return n


def format_cpu(cores: float) -> str:
    """Format cores as Kubernetes notation: whole millicores below 1 core ("250m"), else cores ("1.5")."""
    if cores is None or (isinstance(cores, float) and math.isnan(cores)):
        raise ValueError("cannot format an unset CPU quantity")
    millis = round(cores * 1000)
    if millis % 1000 == 0:
        return str(millis // 1000)
    if millis < 1000 or millis % 100:
        return f"{millis}m"
    return format(Decimal(millis) / 1000, "f").rstrip("0").rstrip(".")


def format_memory(num_bytes: float) -> str:
    """Format bytes as Kubernetes notation using the largest exact binary unit ("512Mi", "2Gi")."""
    if num_bytes is None or (isinstance(num_bytes, float) and math.isnan(num_bytes)):
        raise ValueError("cannot format an unset memory quantity")
    value = int(round(num_bytes))
    for suffix, factor in (("Ti", TIB), ("Gi", GIB), ("Mi", MIB), ("Ki", KIB)):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{suffix}"
    return str(value)


def parse_duration(value: str | int | float) -> float:
    """Parse a Prometheus-style duration ("90s", "5m", "14d", "1h30m") or a number of seconds into seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = str(value).strip()
    total, number = 0.0, ""
    i = 0
    if not text:
        raise ValueError("empty duration")
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] == "ms" else ch
        if unit not in units or not number:
            raise ValueError(f"not a duration: {value!r} (expected e.g. '5m', '14d')")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"not a duration: {value!r} (a unit is missing: s, m, h, d or w)")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds as the shortest exact Prometheus duration ("14d", "5m", "90s"); rounded to whole seconds."""
    seconds = int(round(seconds))
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % factor == 0:
            return f"{seconds // factor}{unit}"
    return f"{seconds}s"
