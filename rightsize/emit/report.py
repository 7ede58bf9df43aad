"""Write a whole weekly report folder: report.md, report.html, the CSVs and summary.json.

By default the folder is ``<[report] output_dir>/<ISO year>-W<ISO week>/`` (e.g. reports/2026-W47),
and the latest earlier week folder next to it is compared with automatically.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..analysis.summary import summarize
from ..analysis.thresholds import crossed_thresholds
from ..errors import RightsizeError
from ..folders import replace_folder
from . import tables
from .compare import Comparison, compare, find_previous_dir, load_previous
from .view import ReportView, build_view


@dataclass
class ReportResult:
    """What write_report produced. ``crossed`` non-empty means the CLI exits 3 (EXIT_THRESHOLD)."""

    out_dir: Path
    paths: dict[str, Path]
    summary: dict
    crossed: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    view: ReportView | None = None  # what report.md / report.html show; the terminal summary prints from it

    @property
    def thresholds_crossed(self) -> list[str]:
        return self.crossed


def week_label(now: dt.datetime) -> str:
    """ISO year-week, e.g. '2026-W47' (the ISO year, which differs from the calendar year around New Year)."""
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


def default_report_dir(config, now: dt.datetime | None = None) -> Path:
    """<[report] output_dir>/<ISO year-week>/ for ``now`` (UTC now when omitted)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return Path(config.report.output_dir).expanduser() / week_label(now)


def write_report(snapshot, analysis, config, out_dir: str | Path | None = None, compare_dir: str | Path | None = None,
                 *, now: dt.datetime | None = None, extra_caveats: list[dict] | None = None,
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Write every report file into ``out_dir`` (default: default_report_dir) and return the paths.

    ``compare_dir``: an earlier report folder; when omitted the latest earlier week folder beside
    ``out_dir`` is used if there is one. ``extra_caveats``: more {code, message, affects} entries
    (e.g. inputs the run could not read) for the caveats section. ``progress`` gets one line per step.
    """
    from . import html, markdown  # html pulls in matplotlib; keep importing this module cheap

    step = progress or (lambda _msg: None)
    out = Path(out_dir) if out_dir is not None else default_report_dir(config, now)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RightsizeError(f"{out}: cannot create report folder: {exc.strerror or exc}") from None

    summary = analysis.summary or summarize(analysis, snapshot, config)
    summary = dict(summary)
    crossed = crossed_thresholds(summary, analysis, config)
    summary["thresholds_crossed"] = crossed

    comparison = None
    previous = Path(compare_dir) if compare_dir is not None else find_previous_dir(out)
    if previous is not None:
        if previous.resolve() == out.resolve():
            raise RightsizeError(f"{previous}: --compare points at the report folder being written")
        step(f"comparing with {previous}")
        prev_summary, prev_recs = load_previous(previous)
        comparison = compare(summary, analysis.recommendations, prev_summary, prev_recs,
                             previous_label=previous.name, previous_dir=str(previous))
        summary["week_over_week"] = comparison.as_dict()

    title = f"rightsize report {out.name}"

    # Every file goes into a temporary sibling folder that replaces ``out`` only when all are written
    # (snapshot/, patches/ and anything else already in ``out`` are kept): a failure or a signal
    # leaves the earlier report whole.
    def fill(stage: Path) -> None:
        step("writing CSV files and summary.json")
        names = list(tables.write_tables(analysis, snapshot, config, stage, summary=summary))
        tables.write_text_atomic(stage / "report.md", markdown.render(view))
        tables.write_text_atomic(stage / "report.html", html.render(view))
        paths.update({name: out / name for name in names + ["report.md", "report.html"]})

    step("drawing charts" if config.report.charts else "building the report")
    view = build_view(summary, analysis, config, snapshot=snapshot, comparison=comparison, crossed=crossed,
                      title=title, extra_caveats=extra_caveats, charts=html.chart_pngs(analysis, snapshot, config))
    step("writing report.md and report.html")
    paths: dict[str, Path] = {}
    replace_folder(out, fill, what="report", keep_others=True)
    return ReportResult(out_dir=out, paths=paths, summary=summary, crossed=crossed, comparison=comparison, view=view)
