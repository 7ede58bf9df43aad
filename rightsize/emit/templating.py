"""The Jinja2 environment of the reports: templates under emit/templates/, shared formatting filters.

report.md and report.html are rendered from the same view-model (emit/view.py) with the filters of
formatting.py (usd, cpu, memory, percent, ...), so a figure is formatted in one place only.
HTML is autoescaped; Markdown is escaped for table cells by the ``mdcell`` / ``mdtext`` filters.
"""
from __future__ import annotations

import base64
import functools
import gzip
import json
import math
import re

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from ..escape import md_code, md_text
from ..formatting import FILTERS

MD_MAX_BYTES = 1024 * 1024 - 4096  # GitHub's job summary refuses more than 1 MiB; keep a margin


def mdtext(text) -> str:
    """Text safe inside a Markdown table cell or list item (escape.md_text)."""
    return md_text(text)


def mdcell(cell) -> str:
    """A view Cell in Markdown: names as code spans that stay closed (escape.md_code), flags after them."""
    if cell.code:
        return md_code(cell.text) + "".join(f" _{t.replace('_', ' ')}_" for t in cell.tags)
    return mdtext(cell.text)


def mdtable(table) -> str:
    """A view Table as a GitHub Markdown table: the columns marked ``md``, at most ``md_limit`` rows."""
    idx = table.md_index
    lines = ["| " + " | ".join(mdtext(table.columns[i].label) for i in idx) + " |",
             "|" + "|".join(" ---: " if table.columns[i].num else " --- " for i in idx) + "|"]
    lines += ["| " + " | ".join(mdcell(row.cells[i]) for i in idx) + " |" for row in table.md_rows]
    return "\n".join(lines)


def bold(text) -> Markup:
    """'**x**' -> <b>x</b>, everything else escaped (intros are written once for both formats)."""
    return Markup(re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", str(escape(text))))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def table_data(table) -> str:
    """A view Table's rows for report.html's paged tables: JSON, gzip, base64 (no '<' can appear, so the
    data cannot end its script element; the page shows every value as text, never as markup).

    Each row is {"c": cells, "d": detail (label, text) pairs, "a": filter attributes}; a cell is
    [text, sort value or null, CSS class, 1 for a name in code style, tags]."""
    rows = [{"c": [[c.text, c.sort if c.sort is None or math.isfinite(c.sort) else None, c.cls, int(c.code), list(c.tags)]
                   for c in row.cells], "d": [list(pair) for pair in row.detail], "a": row.attrs} for row in table.rows]
    raw = json.dumps({"rows": rows}, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("rightsize.emit", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    env.filters.update({"mdcell": mdcell, "mdtext": mdtext, "mdcode": md_code, "mdtable": mdtable, "bold": bold,
                        "data_uri": data_uri, "table_data": table_data})
    return env


def render_markdown(view) -> str:
    """report.md of a ReportView, at most MD_MAX_BYTES (whole sections are dropped from the end, and said so)."""
    text = environment().get_template("report.md.j2").render(view=view)
    text = re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"
    if len(text.encode()) <= MD_MAX_BYTES:
        return text
    cut = text.encode()[:MD_MAX_BYTES - 200].decode("utf-8", "ignore")
    cut = cut[: cut.rfind("\n## ")] if "\n## " in cut else cut
    return cut.rstrip() + "\n\n_The report was cut to fit 1 MiB; report.html and the CSV files have everything._\n"


def render_html(view) -> str:
    """report.html of a ReportView (one self-contained page)."""
    return environment().get_template("report.html.j2").render(view=view)
