"""The declaration mechanism for settings: each key is declared once, with type, default, unit and help.

Validation (config.py), the documented config.toml and the CLI's ``config`` help are all derived
from these declarations, so they cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import field
from typing import Any, Callable
from urllib.parse import urlsplit

from .quantity import format_cpu, format_duration, format_memory, parse_cpu, parse_duration, parse_memory
from .usage_stats import MARGIN_KEYS, StatisticName

# kind -> (parse from TOML value, render to TOML text, human description of what is expected)
_KINDS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], str], str]] = {}


def _toml_str(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_bool(v):
    if isinstance(v, bool):
        return v
    raise ValueError("expected true or false")


def _parse_int(v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("expected a whole number")
    return v


def _parse_float(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("expected a number")
    return float(v)


def _parse_str(v):
    if not isinstance(v, str):
        raise ValueError("expected a string")
    return v


def _parse_str_list(v):
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError("expected a list of strings")
    return tuple(v)


def _parse_str_dict(v):
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise ValueError("expected a table of string values")
    return dict(v)


def _parse_float_dict(v):
    if not isinstance(v, dict) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()
    ):
        raise ValueError("expected a table of numbers")
    return {k: float(x) for k, x in v.items()}


class SettingError(ValueError):
    """A value is wrong in a way its own message explains fully (shown as is, never with the raw value)."""


def _parse_margins(v):
    """A policy's margins per usage pattern: keys from the registry (cpu_flat ... memory_growing), fractions >= 0."""
    table = _parse_float_dict(v)
    unknown = sorted(set(table) - set(MARGIN_KEYS))
    if unknown:
        raise SettingError(f"unknown usage pattern {unknown[0]!r}; known: {', '.join(MARGIN_KEYS)}")
    negative = sorted(k for k, x in table.items() if not x >= 0)
    if negative:
        raise SettingError(f"{negative[0]} must be at least 0, got {table[negative[0]]!r}")
    return table


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
CREDENTIALS_IN_URL = ("credentials in a URL are refused (they would end up in logs and meta.json): put the user "
                      "name in [prometheus] username and the password in the environment variable named by "
                      "password_env, or a bearer token in token_env / token_file")


def redact_url(url: str) -> str:
    """``url`` with any user:password@ part replaced by ***@ (for messages)."""
    return re.sub(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#@]*@", lambda m: (m.group(1) or "") + "***@", str(url))


def _parse_url(v, *, optional: bool = False):
    """An http(s) URL with a host and no credentials; '' only where the setting allows it."""
    text = _parse_str(v).strip()
    if not text and optional:
        return ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SettingError(f"not a URL: {redact_url(text)!r} (expected e.g. \"http://prometheus:9090\")") from None
    if parts.username is not None or parts.password is not None:
        raise SettingError(f"{redact_url(text)!r}: {CREDENTIALS_IN_URL}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError(f"not a URL with http:// or https:// and a host: {redact_url(text)!r} (e.g. \"http://prometheus:9090\")")
    return text


def _parse_time(v):
    """An RFC 3339 time with its offset (kept as text) or '' (unset)."""
    text = _parse_str(v).strip()
    if not text:
        return ""
    try:
        if not _RFC3339.fullmatch(text):
            raise ValueError
        dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise SettingError(f"not an RFC 3339 time: {text!r} (expected e.g. \"2026-11-16T00:00:00Z\")") from None
    return text


_MATCHER = re.compile(r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\\n]|\\.)*"\s*')
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def name_problem(value: str, metric: bool = False) -> str:
    """'' when ``value`` is a valid Prometheus metric (``metric``) or label name, else why not."""
    if (_METRIC_NAME if metric else _LABEL_NAME).fullmatch(value or ""):
        return ""
    return f"{value!r} is not a valid {'metric' if metric else 'label'} name"


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def header_problem(name: str, value: str) -> str:
    """'' when ``name: value`` can be sent as an HTTP header, else why not (naming the header, never its value)."""
    from .escape import clean_text

    shown = clean_text(name)
    if not _HEADER_NAME.fullmatch(name):
        return f"header {shown!r}: not a valid header name (letters, digits and !#$%&'*+.^_`|~-)"
    if re.search(r"[\r\n\x00]", value):
        return f"header {shown!r}: its value holds a line break (CR/LF) or NUL, which would end the header"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return f"header {shown!r}: its value has characters outside Latin-1, which HTTP headers cannot carry"
    return ""


def label_matchers_problem(text: str) -> str:
    """'' when ``text`` is empty or a comma-separated list of label matchers (a="x",b!~"y"), else why not."""
    pos = 0
    while text.strip():
        m = _MATCHER.match(text, pos)
        if not m:
            return f"not a list of label matchers like name!=\"value\": {text!r}"
        pos = m.end()
        if pos == len(text):
            break
        if text[pos] != ",":
            return f"expected ',' at position {pos} in {text!r}"
        pos += 1
    return ""


def _parse_statistic(v):
    return StatisticName(_parse_str(v))


def _quantity_parser(parse):
    def run(v):
        if isinstance(v, bool):
            raise ValueError("expected a quantity")
        if v == "":
            return math.nan  # "" means unset (e.g. no maximum)
        return parse(v)

    return run


def _render_float(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def _render_quantity(fmt):
    return lambda v: '""' if isinstance(v, float) and math.isnan(v) else _toml_str(fmt(v))


def _render_list(v) -> str:
    return "[" + ", ".join(_toml_str(x) for x in v) + "]"


def _render_dict(v) -> str:
    return "{" + ", ".join(f"{_toml_str(k)} = {_toml_str(x)}" for k, x in v.items()) + "}"


def _render_float_dict(v) -> str:
    return "{" + ", ".join(f"{_toml_str(k)} = {x!r}" for k, x in v.items()) + "}"


_KINDS.update(
    {
        "bool": (_parse_bool, lambda v: "true" if v else "false", "true or false"),
        "int": (_parse_int, str, "a whole number"),
        "float": (_parse_float, _render_float, "a number"),
        "str": (_parse_str, _toml_str, "a string"),
        "list": (_parse_str_list, _render_list, "a list of strings"),
        "dict": (_parse_str_dict, _render_dict, "a table of strings"),
        "float_dict": (_parse_float_dict, _render_float_dict, "a table of numbers"),
        "margins": (_parse_margins, _render_float_dict, "a table of margins per usage pattern, e.g. {cpu_bursty = 0.3}"),
        "statistic": (_parse_statistic, _toml_str, "max or a percentile like \"p95\" or \"p99.5\""),
        "cpu": (_quantity_parser(parse_cpu), _render_quantity(format_cpu), "a CPU quantity like \"250m\" or \"1.5\""),
        "memory": (_quantity_parser(parse_memory), _render_quantity(format_memory), "a memory quantity like \"512Mi\" or \"2Gi\""),
        "url": (_parse_url, _toml_str, "an http:// or https:// URL with a host"),
        "optional_url": (lambda v: _parse_url(v, optional=True), _toml_str, "an http:// or https:// URL with a host, or \"\""),
        "time": (_parse_time, _toml_str, "an RFC 3339 time like \"2026-11-16T00:00:00Z\", or \"\" for now"),
        "duration": (
            lambda v: parse_duration(v) if not isinstance(v, bool) else (_ for _ in ()).throw(ValueError()),
            lambda v: _toml_str(format_duration(v)),
            "a duration like \"5m\", \"14d\"",
        ),
    }
)


def setting(default: Any, help: str, *, kind: str, unit: str = "", choices: tuple | None = None,
            minimum: float | None = None, maximum: float | None = None, positive: bool = False, example: Any = None,
            infinite: bool = False):
    """Declare one setting. ``default`` is written as it appears in TOML ("10m", "14d", 0.15).

    Quantities and durations are parsed into base units (cores, bytes, seconds) on load.
    ``positive``: the value must be greater than 0 (a zero step or window has no meaning).
    ``infinite``: ``inf`` is a meaningful value (e.g. "never"); otherwise numbers must be finite. NaN never is.
    """
    parse = _KINDS[kind][0]
    value = parse(default)
    meta = {"help": help, "kind": kind, "unit": unit, "choices": choices, "minimum": minimum,
            "maximum": maximum, "positive": positive, "example": example, "infinite": infinite}
    if isinstance(value, (dict, list)):
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=value, metadata=meta)


def section(cls, help: str):
    """Declare a nested section (a TOML table) holding the settings of ``cls``."""
    return field(default_factory=cls, metadata={"help": help, "kind": "section", "cls": cls})


def table_map(cls, help: str, defaults: Callable[[], dict], item: str = "Policy"):
    """Declare a table of named sub-tables of one shape, e.g. ``[policies.NAME]`` (``item``: what one is called)."""
    return field(default_factory=defaults, metadata={"help": help, "kind": "table_map", "cls": cls, "item": item})


def table_list(cls, help: str):
    """Declare an array of tables, e.g. ``[[clusters]]``; empty by default."""
    return field(default_factory=tuple, metadata={"help": help, "kind": "table_list", "cls": cls})


def parse_value(meta: dict, raw: Any) -> Any:
    """Parse and bound-check one raw TOML value against its declaration; ValueError says what was expected."""
    parse, _, expected = _KINDS[meta["kind"]]
    try:
        value = parse(raw)
    except SettingError:
        raise
    except (ValueError, TypeError) as exc:
        detail = str(exc)
        if detail and detail.startswith("not a"):
            raise ValueError(detail) from None
        raise ValueError(f"expected {expected}, got {raw!r}") from None
    if meta.get("choices") and value not in meta["choices"]:
        raise ValueError(f"expected one of {', '.join(map(repr, meta['choices']))}, got {raw!r}")
    for number in (value.values() if isinstance(value, dict) and meta["kind"] == "float_dict" else [value]):
        _check_number(meta, number, raw)
    return value


def _check_number(meta: dict, value: Any, raw: Any) -> None:
    """Bounds of one number: never NaN (except "" for an unset quantity), finite unless declared ``infinite``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if math.isnan(value):
        if raw == "" and meta["kind"] in ("cpu", "memory"):
            return
        raise ValueError(f"expected {_KINDS[meta['kind']][2]}, got {raw!r} (not a number)")
    if math.isinf(value) and not meta.get("infinite"):
        raise ValueError(f"must be finite, got {raw!r}")
    shown = (lambda v: format_duration(v)) if meta["kind"] == "duration" else (lambda v: f"{v:g}")
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise ValueError(f"must be at least {shown(meta['minimum'])}, got {raw!r}")
    if meta.get("maximum") is not None and value > meta["maximum"]:
        raise ValueError(f"must be at most {shown(meta['maximum'])}, got {raw!r}")
    if meta.get("positive") and value <= 0:
        raise ValueError(f"must be greater than 0, got {raw!r}")


def render_value(meta: dict, value: Any) -> str:
    """Render a parsed value back to its TOML form."""
    return _KINDS[meta["kind"]][1](value)


def describe(meta: dict) -> str:
    """One line: what a setting expects (kind, unit, choices)."""
    parts = [_KINDS[meta["kind"]][2]] if meta["kind"] in _KINDS else []
    if meta.get("unit"):
        parts.append(f"unit: {meta['unit']}")
    if meta.get("choices"):
        parts.append("one of " + ", ".join(map(str, meta["choices"])))
    if meta.get("positive"):
        parts.append("greater than 0")
    elif meta.get("minimum") == 0 and meta["kind"] in ("cpu", "memory", "duration"):
        parts.append("not negative")
    elif meta.get("minimum") and meta["kind"] == "duration":
        parts.append(f"at least {format_duration(meta['minimum'])}")
    if meta.get("maximum") and meta["kind"] == "duration":
        parts.append(f"at most {format_duration(meta['maximum'])}")
    return "; ".join(parts)


def fields_of(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata]


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in text.splitlines()]


def _render_fields(obj, cls, header: str, lines: list[str], nested: list) -> None:
    for f in fields_of(cls):
        kind = f.metadata["kind"]
        if kind in ("section", "table_map", "table_list"):
            nested.append(f)
            continue
        meta = f.metadata
        lines += _comment(f"{meta['help']} ({describe(meta)})")
        lines.append(f"{f.name} = {render_value(meta, getattr(obj, f.name))}")


def render_toml(config, intro: tuple[str, ...] = ()) -> str:
    """TOML of a declared config (sections, table maps and lists of ``section``/``table_map``/``table_list``):
    every key with its help, unit and value, after the comment lines ``intro``."""
    lines = list(intro)

    def emit_table(obj, cls, header: str, help_text: str, array: bool = False):
        lines.append("")
        lines.extend(_comment(help_text))
        lines.append(f"[[{header}]]" if array else f"[{header}]")
        nested: list = []
        _render_fields(obj, cls, header, lines, nested)
        for f in nested:
            emit_nested(getattr(obj, f.name), f, f"{header}.{f.name}")

    def emit_nested(value, f, header):
        kind = f.metadata["kind"]
        if kind == "section":
            emit_table(value, f.metadata["cls"], header, f.metadata["help"])
        elif kind == "table_map":
            for name, item in value.items():
                emit_table(item, f.metadata["cls"], f"{header}.{name}", f.metadata["help"] if name == next(iter(value)) else f"{f.metadata.get('item', 'Policy')} {name!r}.")
        elif kind == "table_list":
            lines.append("")
            lines.extend(_comment(f.metadata["help"] + " Example (uncomment to use):"))
            example: list[str] = [f"[[{header}]]"]
            for sub in fields_of(f.metadata["cls"]):
                example.append(f"{sub.name} = {render_value(sub.metadata, getattr(f.metadata['cls'](), sub.name))}  # {sub.metadata['help']}")
            lines.extend(f"# {line}" for line in example)

    for f in fields_of(type(config)):
        emit_nested(getattr(config, f.name), f, f.name)
    return "\n".join(lines) + "\n"


def key_rows(config) -> list[tuple[str, str, str, str]]:
    """(key, value, expected, help) of every scalar setting of a declared config, dotted keys ('a.b[].c')."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(cls, obj, prefix):
        for f in fields_of(cls):
            kind = f.metadata["kind"]
            key = f"{prefix}.{f.name}" if prefix else f.name
            if kind == "section":
                walk(f.metadata["cls"], getattr(obj, f.name), key)
            elif kind == "table_map":
                for name, item in getattr(obj, f.name).items():
                    walk(f.metadata["cls"], item, f"{key}.{name}")
            elif kind == "table_list":
                walk(f.metadata["cls"], f.metadata["cls"](), f"{key}[]")
            else:
                rows.append((key, render_value(f.metadata, getattr(obj, f.name)), describe(f.metadata), f.metadata["help"]))

    walk(type(config), config, "")
    return rows
