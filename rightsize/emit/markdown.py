"""report.md: the summary for a CI job summary or a pull-request comment.

Rendered by templates/report.md.j2 from the report view-model (emit/view.py), the same one report.html
and the terminal summary use. Every list is capped (``[report] top_n`` rows, longer lists say how many
were left out and in which file), and the whole text stays under GitHub's 1 MiB step-summary limit.
File names are plain text, not links: relative links do not resolve in a job summary.
"""
from __future__ import annotations

from .templating import render_markdown as render  # noqa: F401
from .view import build_view

# (anchor, title) of the report.md sections, in order (report.html adds charts and details)
SECTIONS = (
    ("totals", "Totals"),
    ("week-over-week", "Week over week"),
    ("top-savings", "Top savings"),
    ("oom-throttled", "OOM risk and throttled containers"),
    ("spot", "Spot candidates"),
    ("cross-az", "Top cross-AZ pairs"),
    ("load-balancers", "Load balancers"),
    ("idle", "Idle node capacity"),
    ("caveats", "Data caveats"),
    ("files", "Detail files"),
)


def render_markdown(summary: dict, analysis, config, *, comparison=None, crossed: list[str] | None = None,
                    title: str = "rightsize report", extra_caveats: list[dict] | None = None) -> str:
    """The whole report.md as text (builds its own view; write_report builds one view for both files)."""
    return render(build_view(summary, analysis, config, comparison=comparison, crossed=crossed, title=title,
                             extra_caveats=extra_caveats))
