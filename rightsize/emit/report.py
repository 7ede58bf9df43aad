"""Write a whole weekly report folder: report.md, report.html, the CSVs and summary.json.

By default the folder is ``<[report] output_dir>/<[report] layout>/`` (e.g. reports/2026-W47, or
s3://bucket/rightsize/2026-W47/prod with ``layout = "{week}/{cluster}"``), and the same folder of the
latest earlier week is compared with automatically.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..analysis.summary import summarize
from ..analysis.thresholds import crossed_thresholds
from ..errors import RightsizeError
from ..escape import clean_text
from ..forked import Beside, beside
from ..atomic import write_text_atomic
from ..storage import location, make_folder, replace_folder, same
from . import metrics_prom, tables
from ..memory import bulk
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


def default_report_dir(config, now: dt.datetime | None = None):
    """<[report] output_dir>/<[report] layout>/ for ``now`` (UTC now when omitted): a Path, or an
    S3Path when output_dir is s3://..."""
    now = now or dt.datetime.now(dt.timezone.utc)
    root = location(config.report.output_dir, expand_user=True)
    folder = config.report.layout.format(week=week_label(now), cluster=config.general.cluster_name)
    return root / folder if folder.strip("/") else root


def snapshot_week(meta: dict, now: dt.datetime | None = None) -> str:
    """The ISO week of the snapshot's window end (the week its report belongs to), else of ``now``."""
    import pandas as pd

    end = pd.to_datetime(meta.get("window_end"), utc=True, errors="coerce")
    return week_label(end.to_pydatetime() if not pd.isna(end) else now or dt.datetime.now(dt.timezone.utc))


def report_title(meta: dict) -> str:
    """'rightsize report prod-eu 2026-W47': the cluster(s) and the week of the snapshot's window end, whatever
    the folder is called; 'rightsize fleet report 2026-W47 (12 clusters)' for a fleet."""
    clusters = [str(c) for c in meta.get("clusters") or []]
    week = snapshot_week(meta)
    if meta.get("fleet"):
        return f"rightsize fleet report {week} ({len(clusters)} cluster{'s' if len(clusters) != 1 else ''})"
    names = ", ".join(clusters) if len(clusters) <= 3 else f"{len(clusters)} clusters"
    return f"rightsize report {names} {week}" if names else f"rightsize report {week}"


def write_report(snapshot, analysis, config, out_dir: str | Path | None = None, compare_dir: str | Path | None = None,
                 *, now: dt.datetime | None = None, extra_caveats: list[dict] | None = None,
                 progress: Callable[[str], None] | None = None, into: Path | None = None, csv_copies: dict | None = None) -> ReportResult:
    """Write every report file into ``out_dir`` (default: default_report_dir) and return the paths.

    ``compare_dir``: an earlier report folder; when omitted the latest earlier week folder beside
    ``out_dir`` is used if there is one. ``extra_caveats``: more {code, message, affects} entries
    (e.g. inputs the run could not read) for the caveats section. ``progress`` gets one line per step.
    ``into``: a folder already staged to replace ``out_dir`` as a whole (``rightsize run``: snapshot, report and
    patches in one swap); the files go there, named as ``out_dir``'s. ``csv_copies``: tables.write_tables' copies.
    """
    from . import html, markdown  # html pulls in matplotlib; keep importing this module cheap

    step = progress or (lambda _msg: None)
    out = location(out_dir) if out_dir is not None else default_report_dir(config, now)
    if into is None:
        try:
            make_folder(out)
        except OSError as exc:
            raise RightsizeError(f"{out}: cannot create report folder: {exc.strerror or exc}") from None

    summary = analysis.summary or summarize(analysis, snapshot, config)
    summary = dict(summary)
    crossed = crossed_thresholds(summary, analysis, config)
    summary["thresholds_crossed"] = crossed

    previous = location(compare_dir) if compare_dir is not None else find_previous_dir(out)
    if previous is not None and same(previous, out):
        raise RightsizeError(f"{previous}: --compare points at the report folder being written")
    comparison, skipped = _compared(previous, summary, analysis, step)
    if comparison is not None:
        summary["week_over_week"] = comparison.as_dict()
    if skipped:
        extra_caveats = [*(extra_caveats or []), skipped]
        summary["warnings"] = [*summary.get("warnings", []), skipped]

    title = report_title(snapshot.meta)

    # Every file goes into a temporary sibling folder that replaces ``out`` only when all are written (snapshot/,
    # patches/ and anything else in ``out`` are kept): a failure or a signal leaves the earlier report whole.
    def fill(stage: Path) -> None:
        step("writing CSV files and summary.json")
        names = list(tables.write_tables(analysis, snapshot, config, stage, summary=summary, copies=csv_copies))
        write_text_atomic(stage / "report.md", markdown.render(view))
        write_text_atomic(stage / "report.html", html.render(view))
        write_text_atomic(stage / metrics_prom.FILE_NAME, child.result()[1])
        paths.update({name: out / name for name in names + ["report.md", "report.html", metrics_prom.FILE_NAME]})

    step("drawing charts" if config.report.charts else "building the report")
    paths: dict[str, Path] = {}
    with _beside(analysis, snapshot, config) as child, bulk():  # gc: tens of thousands of cells (memory.bulk)
        charts = (lambda: child.result()[0]) if config.report.charts else None
        view = build_view(summary, analysis, config, snapshot=snapshot, comparison=comparison, crossed=crossed,
                          title=title, extra_caveats=extra_caveats, charts=charts)
        step("writing report.md and report.html")
        if into is not None:
            fill(into)
        else:
            replace_folder(out, fill, what="report", keep_others=True)
    return ReportResult(out_dir=out, paths=paths, summary=summary, crossed=crossed, comparison=comparison, view=view)


def _beside(analysis, snapshot, config) -> Beside[tuple[dict | None, str]]:
    """A forked child (forked.py) drawing the charts (matplotlib, the second core) and rendering the metrics file
    while this process builds the rest; its result: (PNG bytes by chart name or None, the metrics text)."""
    from . import html

    return beside(lambda: (html.chart_pngs(analysis, snapshot, config), metrics_prom.render(analysis, snapshot)), "report")


def _compared(previous, summary: dict, analysis, step) -> tuple[Comparison | None, dict | None]:
    """Week-over-week deltas against ``previous`` (None: no earlier report); an earlier report that cannot be
    read or compared is a caveat, and this week's report is written without the comparison."""
    if previous is None:
        return None, None
    step(f"comparing with {previous}")
    try:
        prev_summary, prev_recs = load_previous(previous)
        return compare(summary, analysis.recommendations, prev_summary, prev_recs,
                       previous_label=_week_of(previous), previous_dir=str(previous)), None
    except (RightsizeError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        message = clean_text(f"week over week skipped: {exc if isinstance(exc, RightsizeError) else f'{previous}: cannot compare: {exc!r}'}")
        step(f"warning: {message}")
        return None, {"code": "comparison_skipped", "message": message, "affects": "week-over-week deltas"}


def _week_of(folder) -> str:
    """The ISO week a report folder belongs to ('2026-W46' of .../2026-W46/prod), else its name."""
    from .compare import WEEK_DIR

    weeks = [part for part in folder.parts if WEEK_DIR.match(part)]
    return weeks[-1] if weeks else folder.name

