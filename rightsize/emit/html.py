"""report.html: one self-contained file (inline CSS, a small inline script, charts as PNG data URIs).

Rendered by templates/report.html.j2 (which extends base.html.j2) from the report view-model. Nothing
is fetched when the file is opened: no external scripts, stylesheets, fonts or images, so it can be
mailed, attached to a CI run, or opened from a PVC. Tables sort on a header click (numbers largest
first), the detail tables filter by text and namespace/team/status, and each container row opens
to show the reason and the evidence. The layout holds from a 390 px phone to a wide screen.
"""
from __future__ import annotations

from .templating import render_html as render  # noqa: F401
from .view import build_view


def chart_pngs(analysis, snapshot, config) -> dict[str, bytes | None] | None:
    """Every chart as PNG bytes, or None when ``[report] charts`` is off."""
    if not config.report.charts:
        return None
    from . import charts

    return charts.render_all(analysis, snapshot, config)


def render_html(summary: dict, analysis, snapshot, config, *, comparison=None, crossed: list[str] | None = None,
                title: str = "rightsize report", extra_caveats: list[dict] | None = None) -> str:
    """The whole report.html as text (builds its own view; write_report builds one view for both files)."""
    return render(build_view(summary, analysis, config, snapshot=snapshot, comparison=comparison, crossed=crossed,
                             title=title, extra_caveats=extra_caveats, charts=chart_pngs(analysis, snapshot, config)))
