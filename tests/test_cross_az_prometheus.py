"""Cross-AZ cost end to end: Istio bytes in both directions, written by both reporters into a real
Prometheus, collected, and priced; every dollar recomputed here by hand from the generator's rates."""
from __future__ import annotations

import pytest

from promdata import TRAFFIC
from promservers import WINDOW_HOURS, make_config, prom_dataset, prom_server  # noqa: F401
from rightsize.analysis.cross_az import cross_az_costs
from rightsize.config import Config
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.targets import ClusterTarget

pytestmark = pytest.mark.integration


def test_cross_az_dollars_from_a_real_collection(prom_server, prom_dataset):
    snap = Snapshot()
    P.collect_usage(make_config(prom_server.url, prom_dataset.end), ClusterTarget("c1", prom_server.url), snap,
                    inventory_from_metrics=True, progress=lambda m: None)
    snap.meta["window_start"], snap.meta["window_end"] = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"  # 24 h
    costs = cross_az_costs(snap, Config()).set_index(["source_workload", "destination_workload"])
    placement = snap.tables["placement"]
    for sn, sw, dn, dw, _proto, request_bps, response_bps in TRAFFIC:
        # bytes: request (client -> server) + response (server -> client) over 24 h, counted once
        # although both proxies reported them
        gb_per_month = (request_bps + response_bps) * WINDOW_HOURS * 3600 / 1e9 * (730 / WINDOW_HOURS)
        # crossing: 1 - sum over zones of (source's share of pod-hours) x (destination's share)
        share = {}
        for ns, wl in ((sn, sw), (dn, dw)):
            rows = placement[(placement["namespace"] == ns) & (placement["workload"] == wl)]
            share[wl] = (rows.groupby("zone")["pod_hours"].sum() / rows["pod_hours"].sum()).to_dict()
        crossing = 1 - sum(p * share[dw].get(z, 0.0) for z, p in share[sw].items())
        usd = gb_per_month * crossing * 0.01 * 2  # USD 0.01 per GB each way
        row = costs.loc[(sw, dw)]
        assert row["gb_per_month"] == pytest.approx(gb_per_month, rel=1e-6)
        assert row["crossing_fraction"] == pytest.approx(crossing, rel=1e-9) and 0 < crossing < 1
        assert row["usd_per_month"] == pytest.approx(usd, rel=1e-6)
        assert row["usd_per_month_high"] == pytest.approx(usd, rel=1e-6)
        # no Service routing known: the low end keeps every flow in-zone where the destination has endpoints
        assert row["usd_per_month_low"] == pytest.approx(0.0, abs=1e-9)
