"""notebooks/explore.ipynb: committed without outputs, and runs top to bottom on the demo snapshot (real kernel)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from promservers import make_config, prom_dataset, prom_server  # noqa: F401

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


def _read():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_committed_notebook_has_no_outputs():
    nb = _read()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"cells {dirty} of {NOTEBOOK.name} carry outputs or execution counts; clear them before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    # nbformat adds a missing cell id on read (with a warning), so the file itself is checked
    raw = json.loads(NOTEBOOK.read_text())
    assert [i for i, c in enumerate(raw["cells"]) if not c.get("id")] == [], "cells without an id"


def test_parameter_cell_defaults_to_demo():
    nb = _read()
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert 'SNAPSHOT = "demo"' in params[0].source


def _run(nb, monkeypatch):
    # The kernel is a child process: it inherits PYTHONPATH, so `rightsize` imports from this checkout
    # without being installed; it runs in notebooks/ as Jupyter would.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    return nb


def _text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _cell(nb, needle: str):
    hits = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert hits, f"no cell containing {needle!r}"
    return hits[0]


def test_notebook_runs_on_the_demo_snapshot(monkeypatch):
    nb = _run(_read(), monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert "containers" in _text(_cell(nb, "rs.totals(analysis)"))
    what_if = _text(_cell(nb, "production everywhere"))
    for column in ("baseline", "stricter", "looser", "savings_usd_per_month", "cpu_request_cores_after"):
        assert column in what_if
    formatted = _cell(nb, "rs.formatted(table)").outputs
    assert any("$" in o.get("data", {}).get("text/html", "") and "Gi<" in o.get("data", {}).get("text/html", "")
               for o in formatted), "what_if was not shown formatted"
    assert "cart" in _text(_cell(nb, "over = recs["))
    assert "verdict" in _text(_cell(nb, 'spot["verdict"].value_counts()'))
    gpus = _text(_cell(nb, "gpus = rs.gpu("))  # the demo's GPU block: one row per GPU container, its action
    assert all(w in gpus for w in ("finetune-llm", "embeddings", "llm-serving", "share_mig"))
    assert "gpu-a100" in _text(_cell(nb, 'rs.gpu(snapshot, config, by="node_group")'))
    for needle in ("rs.plot_usage(", "rs.plot_cross_az_matrix(", "rs.savings_by_namespace("):
        outputs = _cell(nb, needle).outputs
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{needle} drew no figure"


def test_parameter_cell_takes_a_snapshot_folder(monkeypatch, tmp_path):
    from rightsize import api

    demo = api.load("demo")
    folder = demo.write(tmp_path / "snapshot")
    nb = _read()
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells[params].source = nb.cells[params].source.replace('SNAPSHOT = "demo"', f"SNAPSHOT = {str(folder)!r}")
    # up to the cell that loads and analyses the snapshot, then a probe of what it loaded
    setup = next(i for i, c in enumerate(nb.cells) if "rs.load(SNAPSHOT" in c.source)
    nb.cells = nb.cells[: setup + 1] + [nbformat.v4.new_code_cell(
        "print(SNAPSHOT, type(snapshot).__name__, len(snapshot.containers), len(analysis.recommendations))")]
    nb = _run(nb, monkeypatch)
    probe = _text(nb.cells[-1]).split()
    n = str(len(demo.containers))
    assert probe == [str(folder), "Snapshot", n, n]


def test_notebook_runs_end_to_end_on_a_snapshot_collected_from_a_real_prometheus(monkeypatch, tmp_path, prom_server, prom_dataset):
    """A snapshot as `rightsize collect` writes it from a real Prometheus, without --series: every cell runs,
    and the usage plot cell says why there is no plot instead of stopping the notebook (nbconvert exit 1)."""
    from rightsize.collect import collect

    config = make_config(prom_server.url, prom_dataset.end)
    snapshot = collect(config, log=lambda _m: None)
    assert snapshot.tables.get("series") is None or snapshot.tables["series"].empty
    folder = snapshot.write(tmp_path / "snapshot")
    nb = _read()
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells[params].source = nb.cells[params].source.replace('SNAPSHOT = "demo"', f"SNAPSHOT = {str(folder)!r}")
    nb = _run(nb, monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    plot = _text(_cell(nb, "rs.plot_usage("))
    assert "No usage plot: workload 'shop/Deployment/search': not in this snapshot" in plot
    assert str(len(snapshot.tables["containers"])) + " containers" in _text(_cell(nb, "rs.load(SNAPSHOT"))
