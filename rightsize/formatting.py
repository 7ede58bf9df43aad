"""The one home of display formatting: money, CPU, memory, percentages, counts and the wording of a change.

Shared by the report view-model (and so report.md, report.html, the terminal summary), PATCHES.md, the
patches' evidence comments, --explain, the charts and the notebook helpers. Inputs are the tables' units:
USD, cores, bytes. Unknown (None/NaN) is never shown as 0: it reads "n/a", or "unset" for a request or limit
that is not set. Most strings are for people ("2.35"); k8s_cpu and k8s_memory show a value in the
Kubernetes notation a manifest holds ("2350m", exact: rightsize.quantity's), as the patches and --explain do.
"""
from __future__ import annotations

import math

import pandas as pd

from .quantity import GIB, KIB, MIB, TIB, format_cpu, format_memory
ARROW = "→"
LEAVE_UNSET = "leave unset"  # the one wording for "no limit, and none is proposed" (CPU, or memory that grows)
UNKNOWN = "n/a"


def number(v) -> float:
    """A cell as a float; NaN when it is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def unknown(v) -> bool:
    """None, NaN, pd.NA or an empty string."""
    if v is None or v is pd.NA:
        return True
    if isinstance(v, str):
        return v == ""
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def usd(v, decimals: int = 2) -> str:
    """'$1,234.56', '-$5.00' (sign before the currency); 'n/a' when unknown."""
    if unknown(v):
        return UNKNOWN
    v = float(v)
    return ("-" if v < -0.5 * 10**-decimals else "") + f"${abs(v):,.{decimals}f}"


def signed_usd(v, decimals: int = 2) -> str:
    """'+$5.00' / '-$5.00' / '$0.00'; 'n/a' when unknown."""
    if unknown(v):
        return UNKNOWN
    return ("+" if float(v) >= 0.5 * 10**-decimals else "") + usd(v, decimals)


def cpu(v, unset: str = "unset") -> str:
    """Cores as people read Kubernetes CPU: '250m' below one core, else '1.5' / '2'; ``unset`` when NaN."""
    if unknown(v):
        return unset
    v = float(v)
    if abs(v) < 1:
        return f"{round(v * 1000)}m"
    return f"{v:.3f}".rstrip("0").rstrip(".")


def memory(v, unset: str = "unset") -> str:
    """Bytes as '512Mi', '1.5Gi', '2Ti' (two decimals at most, binary units); ``unset`` when NaN."""
    if unknown(v):
        return unset
    v = float(v)
    for factor, suffix in ((TIB, "Ti"), (GIB, "Gi")):
        if abs(v) >= factor:
            return f"{v / factor:.2f}".rstrip("0").rstrip(".") + suffix
    if abs(v) >= MIB:
        return f"{v / MIB:.0f}Mi"
    if abs(v) >= KIB:
        return f"{v / KIB:.0f}Ki"
    return f"{v:.0f}"


def percent(v, decimals: int = 0) -> str:
    """A share (0.41) as '41%'; 'n/a' when unknown."""
    return UNKNOWN if unknown(v) else f"{float(v) * 100:.{decimals}f}%"


def count(v) -> str:
    """'1,234'; 'n/a' when unknown."""
    return UNKNOWN if unknown(v) else f"{float(v):,.0f}"


def signed_count(v) -> str:
    return UNKNOWN if unknown(v) else f"{float(v):+,.0f}"


def days(v) -> str:
    """'7.0 d'; 'n/a' when unknown."""
    return UNKNOWN if unknown(v) else f"{float(v):,.1f} d"


def signed_days(v) -> str:
    return UNKNOWN if unknown(v) else f"{float(v):+,.1f} d"


def change(current, recommended, fmt) -> str:
    """'1 → 250m'; just the value when nothing changes; 'n/a' after the arrow without a recommendation."""
    cur, rec = fmt(current), fmt(recommended, UNKNOWN)
    return cur if cur == rec else f"{cur} {ARROW} {rec}"


def cpu_limit_change(action: str, current, recommended) -> str:
    """The CPU limit column, worded the same everywhere (report.md, report.html, PATCHES.md, patch comments).

    ``action`` is the recommendation's ``cpu_limit_action``: set -> '500m → 2.35'; remove -> '2 → remove';
    keep_unset -> 'leave unset' (the policy wants no CPU limit and there is none); none (no
    recommendation) -> the current value and 'no recommendation'.
    """
    cur = cpu(current)
    if action == "set":
        return change(current, recommended, cpu)
    if action == "remove":
        return f"{cur} {ARROW} remove"
    if action == "keep_unset":
        return LEAVE_UNSET if cur == "unset" else f"{cur} (kept)"
    return f"{cur} (no recommendation)"


def memory_limit_change(action: str, current, recommended) -> str:
    """The memory limit column, worded like the CPU limit's: keep_unset (a growing working set without a limit
    today: none is introduced) -> 'leave unset'; otherwise '1Gi → 512Mi' as any change."""
    if action == "keep_unset":
        return LEAVE_UNSET
    return change(current, recommended, memory)


def figure(v, fmt: str = "{:.0f}") -> str:
    """A number with ``fmt`` ('{:.1f}'); 'n/a' when unknown."""
    return UNKNOWN if unknown(v) else fmt.format(float(v))


def usd_per_month(v) -> str:
    """'$12.50/month', '-$3.00/month (costs more)'; 'unknown' when unknown (a patch's saving)."""
    if unknown(v):
        return "unknown"
    return f"{usd(v)}/month" + (" (costs more)" if float(v) < 0 else "")


def k8s_cpu(v, unset: str = "unset", fine: bool = False) -> str:
    """Cores in Kubernetes notation ('250m', '1.5'); ``unset`` when unknown, 'none' when infinite (no bound).
    ``fine``: below one millicore with two decimals ('0.05m') instead of rounded."""
    if unknown(v):
        return unset
    v = float(v)
    if math.isinf(v):
        return "none"
    return f"{v * 1000:.2f}m" if fine and v < 0.001 else format_cpu(v)


def k8s_memory(v, unset: str = "unset", fine: bool = False) -> str:
    """Bytes in Kubernetes notation ('512Mi', exact, else whole bytes); ``unset`` when unknown, 'none' when
    infinite. ``fine``: a value in no whole unit as MiB with one decimal ('212.4Mi')."""
    if unknown(v):
        return unset
    v = float(v)
    if math.isinf(v):
        return "none"
    text = format_memory(v)
    return text if not fine or text.endswith("i") else f"{v / MIB:.1f}Mi"


def mebibytes(v, unset: str = "unknown") -> str:
    """Bytes as whole MiB ('212Mi'), bytes below one MiB ('512'); ``unset`` when unknown."""
    if unknown(v):
        return unset
    v = float(v)
    return f"{v / MIB:.0f}Mi" if v >= MIB else f"{v:.0f}"


def flag_words(flags) -> list[str]:
    """'oom_risk,throttled' -> ['oom_risk', 'throttled'] (empty entries dropped)."""
    if unknown(flags):
        return []
    return [f.strip() for f in str(flags).split(",") if f.strip()]


def words(text) -> str:
    """'ready_with_changes' -> 'ready with changes'."""
    return "" if unknown(text) else str(text).replace("_", " ")


FILTERS = {
    "usd": usd, "signed_usd": signed_usd, "cpu": cpu, "memory": memory, "percent": percent,
    "count": count, "signed_count": signed_count, "words": words,
}
