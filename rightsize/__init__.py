"""rightsize: right-size Kubernetes containers and find AWS savings, as reports and kustomize patches.

The public API (``rightsize.load``, ``rightsize.analyze``, ``rightsize.recommend``, ...) lives in
rightsize.api and is imported lazily, so the CLI starts fast.
"""
__version__ = "0.1.0"

_API = ("load", "analyze", "recommend", "costs", "spot", "cross_az", "load_balancers", "node_groups", "what_if", "totals",
        "workload_ref", "plot_usage", "plot_cross_az_matrix", "fetch_series")
_TYPES = {"Config": "config", "Policy": "config", "load_config": "config", "Snapshot": "snapshot", "Analysis": "analysis"}


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _TYPES:
        import importlib

        return getattr(importlib.import_module(f".{_TYPES[name]}", __name__), name)
    raise AttributeError(f"module 'rightsize' has no attribute {name!r}")


__all__ = ["__version__", *_API, *_TYPES]
