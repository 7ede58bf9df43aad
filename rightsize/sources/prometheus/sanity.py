"""What a metrics store says is checked before it counts: duplicate scrapes, impossible samples, names.

- **Duplicate scrapes.** A kubelet scraped by two jobs (or two Prometheus replicas behind one query)
  gives each container instance several series that differ only in their scrape labels
  (``[prometheus] scrape_labels``: job, instance, service, endpoint, ...). The rule: such series are
  one series seen twice, so rightsize counts it once: usage samples by the max of the duplicates at each
  step (``usage.reduce_chunk``), counters' increases by ``max without (scrape_labels)`` before they are
  summed over a container's series (``promql``). ``scrape_duplicates`` finds them in the series-API
  answer and the snapshot says so, naming the jobs.
- **Impossible samples.** NaN, +Inf, -Inf and negative usage samples are dropped one by one (the pod's
  other samples count), with a count per pod in one warning: one bad pod never aborts a collection.

Names are checked for every source at once, when the clusters are merged (``collect.drop_invalid_names``).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pandas as pd

from ...errors import SourceError
from ...escape import clean_text
from ...quantity import format_duration as dur
from .client import RangeSeries


def scrape_duplicates(found: list[dict], metric: str, key: list[str], scrape_labels: tuple[str, ...]) -> str:
    """'' or a warning: the container instances (``key`` labels) of ``metric`` with several series that differ
    only in ``scrape_labels``, and the jobs that scrape them."""
    rows = [s for s in found if s.get("__name__") == metric]
    if not rows:
        return ""
    ignore = set(scrape_labels) | {"__name__"}
    seen: dict[tuple, set] = {}
    jobs: dict[tuple, set] = {}
    for s in rows:
        k = tuple(s.get(lab, "") for lab in key)
        rest = tuple(sorted((n, v) for n, v in s.items() if n not in ignore))
        seen.setdefault((k, rest), set()).add(tuple(sorted((n, v) for n, v in s.items() if n in ignore)))
        jobs.setdefault((k, rest), set()).add(s.get("job", s.get("instance", "?")))
    twice = [k for k, scrapes in seen.items() if len(scrapes) > 1]
    if not twice:
        return ""
    names = sorted({j for k in twice for j in jobs[k]})
    return (f"{len(twice)} container instance(s) have {metric} from several scrapes (jobs {', '.join(map(repr, map(clean_text, names)))}): "
            f"each is counted once (the max of the duplicates at each step; counters once before summing), as if "
            f"scraped once; drop the duplicate scrape job to silence this")


def clean_samples(result: list[RangeSeries], dropped: Counter) -> list[RangeSeries]:
    """``result`` without NaN, ±Inf and negative samples (counted per series key in ``dropped``); untouched,
    and cheap, when every sample is fine."""
    if not result:
        return result
    values = np.concatenate([s.values for s in result])
    if np.isfinite(values).all() and not (values < 0).any():
        return result
    out = []
    for s in result:
        ok = np.isfinite(s.values) & (s.values >= 0)
        if ok.all():
            out.append(s)
            continue
        dropped[s.key] += int((~ok).sum())
        if ok.any():
            out.append(RangeSeries(s.key, s.values[ok], s.timestamps[ok] if s.timestamps is not None else None))
    return out


def clean_rows(frame: pd.DataFrame, dropped: Counter, key: list[str]) -> pd.DataFrame:
    """Rows of an instant answer (a ``value`` column) whose value is NaN-free, finite and not negative;
    the others counted per ``key`` in ``dropped``. NaN stays (a missing statistic), ±Inf and < 0 go."""
    if frame.empty:
        return frame
    value = frame["value"].astype(float)
    bad = np.isinf(value) | (value < 0)
    if not bad.any():
        return frame
    for k, n in frame.loc[bad, key].value_counts().items():
        dropped[tuple(k)] += int(n)
    return frame[~bad].reset_index(drop=True)


def dropped_warning(cluster: str, dropped: Counter, limit: int = 5) -> str:
    """One line naming the pods whose samples were dropped and how many, or ''."""
    if not dropped:
        return ""
    worst = sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    named = ", ".join(f"{clean_text('/'.join(k[:2]))} ({clean_text(k[2]) if len(k) > 2 else ''}): {n}" for k, n in worst)
    more = f" and {len(dropped) - limit} more" if len(dropped) > limit else ""
    return (f"cluster {cluster}: {sum(dropped.values())} NaN, infinite or negative usage sample(s) were dropped, "
            f"the pods' other samples kept: {named}{more}")


def check_found(run, snapshot, usage: pd.DataFrame, allow_partial: bool) -> None:
    """The sanity warnings (duplicate scrapes, dropped samples), and zero containers found is an error
    (with the hints of an empty server; with allow_partial a flagged partial result)."""
    for code, text in (("duplicate_series", run.duplicates and f"cluster {run.cluster}: {run.duplicates}"),
                       ("samples_dropped", dropped_warning(run.cluster, run.dropped))):
        if text:
            snapshot.warn(code, text, affects="usage")
            run.log(f"warning: {text}")
    if len(usage):
        return
    p = run.config.prometheus
    scope = f"namespaces {', '.join(repr(clean_text(n)) for n in p.namespaces)}" if p.namespaces else "any namespace"
    text = (f"{run.client.url}: cluster {run.cluster}: found 0 containers with usage in {scope} over the window: "
            f"is [prometheus] namespaces / exclude_namespaces right (a typo?), is the window ({dur(run.config.general.window)}, "
            f"ending {dt.datetime.fromtimestamp(run.grid.end, dt.timezone.utc).isoformat()}) inside the data the server keeps, "
            "and do kube_pod_owner series name the pods (kube-state-metrics)? Every sample may also have been NaN")
    if not allow_partial:
        raise SourceError(text)
    snapshot.warn("no_containers", text, affects="usage")
    snapshot.meta.setdefault("partial", {}).setdefault("clusters", []).append(run.cluster)
