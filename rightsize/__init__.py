"""rightsize: right-size Kubernetes containers and find AWS savings, as reports and kustomize patches.

The public API (``rightsize.load``, ``rightsize.analyze``, ``rightsize.recommend``, ...) lives in
rightsize.api, the plots in rightsize.plots; both are imported lazily, so the CLI starts fast.
"""
from .version import __version__

_API = ("load", "analyze", "recommend", "costs", "gpu", "spot", "cross_az", "load_balancers", "node_groups", "what_if", "backtest", "totals",
        "workload_ref", "fetch_series", "formatted", "margin_sweep")
_PLOTS = ("plot_usage", "plot_cross_az_matrix")
# the report's charts (rightsize.emit.charts via rightsize.plots), loaded with matplotlib on first use
_CHARTS = ("savings_by_namespace", "requested_vs_used", "request_usage_ratios", "spot_readiness", "cross_az_by_pair",
           "top_workload_percentiles")
_TYPES = {"Config": "config", "Policy": "config", "load_config": "config", "Snapshot": "snapshot", "Analysis": "analysis",
          "RightsizeError": "errors"}  # the notebook catches rs.RightsizeError (a workload its snapshot lacks)


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _PLOTS or name in _CHARTS:
        from . import plots

        return getattr(plots, name)
    if name in _TYPES:
        import importlib

        return getattr(importlib.import_module(f".{_TYPES[name]}", __name__), name)
    raise AttributeError(f"module 'rightsize' has no attribute {name!r}")


def __dir__():
    # the lazily loaded API too, so tab completion and dir() show it
    return sorted(set(globals()) | set(_API) | set(_PLOTS) | set(_TYPES) | set(_CHARTS))


__all__ = ["__version__", *_API, *_PLOTS, *_TYPES]
