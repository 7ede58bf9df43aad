"""Text from a cluster is data, never syntax: the one escaping of each output kind.

Names arrive through Prometheus labels, which relabelling, multi-tenant stores and misconfiguration can
fill with anything (newlines, ESC sequences, backticks, formula prefixes). They are validated where
they enter (``names.py``) and, whatever got through, escaped by every writer with these helpers:

- ``clean_text``: terminal and log text: control characters (C0, DEL, C1, bidi overrides) shown as
  ``\\xNN`` / ``\\uNNNN`` escapes, so a name can neither forge a log line nor move the cursor;
- ``csv_cell``: a CSV cell starting with ``= + - @``, a tab or a CR gets a leading ``'`` (OWASP's rule
  against formula injection); plain numbers such as ``-0.25`` are left as they are;
- ``md_code``: a Markdown code span that survives backticks (a fence longer than the longest backtick run,
  padded with spaces), with newlines and pipes neutralised so it stays inside one table cell;
- ``yaml_comment``: the text of one YAML comment line (ruamel's comment API writes it; no newline survives).

HTML is escaped by Jinja2's autoescape, as before.
"""
from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the Unicode bidi / line separators a terminal or editor acts on
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escaped(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean_text(text: object) -> str:
    """``text`` with every control character escaped (``\\n`` -> ``\\x0a``, ESC -> ``\\x1b``): one line, inert."""
    return _CONTROL.sub(_escaped, str(text))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.I)


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet reads as text, never as a formula (OWASP CSV injection): a string
    starting with ``= + - @``, tab or CR gets a leading ``'``, unless it is a plain number."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _one_line(text: object) -> str:
    return clean_text(str("" if text is None else text).replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


def md_code(text: object) -> str:
    """``text`` as one inline Markdown code span that stays closed whatever it holds: the fence is one
    backtick longer than the longest run inside (padded with a space where the text starts or ends with a
    backtick or a space, as CommonMark strips one); newlines become spaces and pipes ``\\|``, so the
    span stays within one line and one table cell. Nothing inside a code span is HTML or a link."""
    body = _one_line(text).replace("|", "\\|")
    longest = max((len(r) for r in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body[:1] in ("`", " ") or body[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def md_text(text: object) -> str:
    """``text`` as plain Markdown inside a table cell or a line: control characters escaped, newlines and
    pipes neutralised, and what would start an HTML tag, a link, an image or a code span escaped
    (``<tag`` as ``&lt;tag``, ``[`` ``]`` and backticks with a backslash); emphasis the report writes stays.
    A backslash is escaped too, first: else a name's own backslash would cancel the escape that follows it
    (``\\](x)`` would close a link) or vanish before punctuation (``\\>`` shows as ``>``)."""
    body = re.sub(r"([\\`\[\]*~])", r"\\\1", _one_line(text))
    body = body.replace("|", "\\|").replace("&", "&amp;")
    body = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", body)
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", body)  # an intraword _ is never emphasis


def yaml_comment(text: object) -> str:
    """One comment line's text: control characters (newline, CR, ESC, ...) escaped, so the comment can
    never end early and put a key into the document."""
    return clean_text(text)
