"""Runtime memory settings: the one home of every form a JVM, Go, Node.js or .NET memory setting takes.

Parsing (text -> bytes or percent), formatting (bytes -> the text the runtime reads) and rewriting (one
flag replaced inside a larger value, every other character kept). Pure functions; a value that does not
parse raises :class:`SettingFormError` naming the setting and the form it expects, never a guess.

Each form as its runtime reads it:

- **JVM sizes** (``-Xmx``, ``-Xms``, ``-XX:MaxHeapSize=``, ``-XX:InitialHeapSize=``, ``-XX:MaxRAM=``): digits
  (or ``0x`` hex) with at most one suffix ``k``, ``m``, ``g`` or ``t`` in either case, no suffix = bytes
  (HotSpot's ``atojulong``): ``-Xmx2g`` = ``-Xmx2048m`` = 2 GiB; ``-Xmx2gb`` is refused by the JVM.
- ``-XX:MaxRAMPercentage=75.0``: a number, the heap's share of the container's memory limit (the JVM's
  default is 25). ``-Xmx`` wins over it whatever their order; otherwise the later flag wins.
- Where JVM flags are read, in order (later wins): ``JAVA_TOOL_OPTIONS`` (read by the JVM before its command
  line), ``JDK_JAVA_OPTIONS`` (the ``java`` launcher puts it before the command line's own flags), the
  command line, ``_JAVA_OPTIONS`` (read after the command line). ``JAVA_OPTS`` is no JVM variable: start
  scripts pass it on the command line.
- **GOMEMLIMIT**: ``^[0-9]+(([KMGT]i)?B)?$`` (bytes, or B, KiB, MiB, GiB, TiB) or ``off`` (Go's
  ``parseByteCount``): ``1800MiB``; ``1800MB`` and ``1.5GiB`` are refused by the Go runtime.
  **GOGC**: a whole percent or ``off``.
- **Node.js** ``--max-old-space-size=4096`` (also ``--max_old_space_size``, or the value as the next
  argument): V8's old space in MiB, from ``NODE_OPTIONS`` or node's command line (the command line wins).
- **.NET** ``DOTNET_GCHeapHardLimit`` (bytes) and ``DOTNET_GCHeapHardLimitPercent`` (percent of the
  container limit): both **hexadecimal**, with or without ``0x`` (``0xC800000`` = 200 MiB, ``4B`` = 75 %);
  the ``COMPlus_`` prefix is the older name. The absolute limit wins over the percent.
"""
from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass

MIB = 1024**2
_JVM_UNITS = {"": 1, "k": 1024, "m": MIB, "g": 1024**3, "t": 1024**4}
_GO_UNITS = {"B": 1, "KiB": 1024, "MiB": MIB, "GiB": 1024**3, "TiB": 1024**4}
GO_LIMIT_OFF = 2**62  # GOMEMLIMIT unset or off reads as math.MaxInt64; anything this large is "no limit"
JVM_DEFAULT_PERCENT = 25.0  # HotSpot's MaxRAMPercentage when no heap flag is given (JDK 10+, 8u191+)

# Environment variables that carry memory settings, by runtime; the order of the JVM's is its read order.
JVM_ENV_BEFORE = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS")
JVM_SCRIPT_ENV = "JAVA_OPTS"
JVM_ENV_AFTER = ("_JAVA_OPTIONS",)
GO_ENV = ("GOMEMLIMIT", "GOGC")
NODE_ENV = ("NODE_OPTIONS",)
DOTNET_LIMIT_ENV = ("DOTNET_GCHeapHardLimit", "COMPlus_GCHeapHardLimit")
DOTNET_PERCENT_ENV = ("DOTNET_GCHeapHardLimitPercent", "COMPlus_GCHeapHardLimitPercent")
RUNTIME_ENV = {**{n: "jvm" for n in JVM_ENV_BEFORE + (JVM_SCRIPT_ENV,) + JVM_ENV_AFTER},
               **{n: "go" for n in GO_ENV}, **{n: "node" for n in NODE_ENV},
               **{n: "dotnet" for n in DOTNET_LIMIT_ENV + DOTNET_PERCENT_ENV}}
RUNTIMES = ("jvm", "go", "node", "dotnet")


class SettingFormError(ValueError):
    """A runtime setting written in a form its runtime does not read; the message names both."""


@dataclass(frozen=True)
class Setting:
    """One memory setting as found: ``name`` is what it sets (heap_max, heap_initial, max_ram_percent,
    max_ram, memory_limit, gc_percent, heap_hard_limit, heap_hard_limit_percent), ``value`` in bytes or
    percent (``unit``), ``flag`` the runtime's name for it, ``token`` the text as written and ``where``
    its carrier ("env JAVA_TOOL_OPTIONS", "command[0]", "args[2]")."""

    name: str
    value: float
    unit: str
    flag: str
    token: str
    where: str


# --- the JVM -------------------------------------------------------------------------------------------

_JVM_SIZE = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)([kKmMgGtT]?)")
# flag prefix -> (setting name, unit); "=" forms are -XX flags, the others take the value glued on
_JVM_FLAGS = {
    "-Xmx": ("heap_max", "bytes"), "-XX:MaxHeapSize=": ("heap_max", "bytes"),
    "-Xms": ("heap_initial", "bytes"), "-XX:InitialHeapSize=": ("heap_initial", "bytes"),
    "-XX:MaxRAMPercentage=": ("max_ram_percent", "percent"), "-XX:MaxRAM=": ("max_ram", "bytes"),
}


def parse_jvm_size(text: str) -> float:
    """A JVM size in bytes (module docstring); SettingFormError when the JVM would refuse it."""
    m = _JVM_SIZE.fullmatch(text.strip())
    if not m:
        raise SettingFormError(f"{text!r} is not a JVM size (digits with at most one of k, m, g, t, e.g. 2g or 2048m)")
    number = int(m.group(1), 16) if m.group(1)[:2].lower() == "0x" else int(m.group(1))
    return float(number * _JVM_UNITS[m.group(2).lower()])


def parse_percent(text: str, what: str) -> float:
    """A percentage 0 < p <= 100 written as a decimal number (``75.0``)."""
    try:
        value = float(text)
    except ValueError:
        raise SettingFormError(f"{what}: {text!r} is not a number (expected a percentage such as 75.0)") from None
    if not 0 < value <= 100 or math.isnan(value):
        raise SettingFormError(f"{what}: {text!r} is not a percentage between 0 and 100")
    return value


def format_jvm_size(num_bytes: float) -> str:
    """Bytes as a JVM size in the largest exact unit, rounded up to whole MiB: 768 MiB -> '768m', 2 GiB -> '2g'."""
    mib = int(math.ceil(num_bytes / MIB - 1e-9))
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"


def jvm_flag(token: str, where: str) -> Setting | None:
    """The memory setting one JVM option token carries (None for any other option)."""
    for prefix, (name, unit) in _JVM_FLAGS.items():
        if token.startswith(prefix):
            text, flag = token[len(prefix):], prefix.rstrip("=")
            value = (parse_percent(text, f"{where}: {token}") if unit == "percent" else _jvm_size(text, token, where))
            return Setting(name, value, unit, flag, token, where)
    return None


def _jvm_size(text: str, token: str, where: str) -> float:
    try:
        return parse_jvm_size(text)
    except SettingFormError as exc:
        raise SettingFormError(f"{where}: {token}: {exc}") from None


def split_options(text: str, where: str) -> list[str]:
    """Whitespace-separated options with shell-style quotes (as the JVM and Node read their variables)."""
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise SettingFormError(f"{where}: cannot split {text!r} into options ({exc})") from None


# --- Go --------------------------------------------------------------------------------------------------

_GO_BYTES = re.compile(r"([0-9]+)((?:[KMGT]i)?B)?")


def parse_gomemlimit(text: str) -> float:
    """GOMEMLIMIT in bytes; ``off`` -> inf (no limit). SettingFormError for anything Go refuses."""
    if text == "off":
        return math.inf
    m = _GO_BYTES.fullmatch(text)
    if not m:
        raise SettingFormError(f"GOMEMLIMIT={text!r} is not a byte count Go reads (digits with B, KiB, MiB, GiB or TiB, "
                               "e.g. 1800MiB; MB and fractions are refused)")
    return float(int(m.group(1)) * _GO_UNITS[m.group(2) or "B"])


def parse_gogc(text: str) -> float:
    """GOGC as a percent; ``off`` -> inf."""
    if text == "off":
        return math.inf
    if not re.fullmatch(r"-?[0-9]+", text):
        raise SettingFormError(f"GOGC={text!r} is not a whole percent or off")
    value = float(text)
    return math.inf if value < 0 else value  # a negative GOGC turns the collector off, as "off" does


def format_gomemlimit(num_bytes: float) -> str:
    """Bytes as GOMEMLIMIT, rounded down to whole MiB (the limit is a ceiling): 1800 MiB -> '1800MiB'."""
    return f"{int(num_bytes // MIB)}MiB"


# --- Node.js ---------------------------------------------------------------------------------------------

_NODE_FLAGS = ("--max-old-space-size", "--max_old_space_size")


def node_flag(tokens: list[str], i: int, where: str) -> tuple[Setting | None, int]:
    """The setting at ``tokens[i]`` (``--max-old-space-size=N`` or ``--max-old-space-size N``, MiB) and how many
    tokens it used (1 or 2; 1 and None for any other option)."""
    token = tokens[i]
    for flag in _NODE_FLAGS:
        if token == flag:
            if i + 1 >= len(tokens):
                raise SettingFormError(f"{where}: {token} has no value (expected MiB, e.g. {flag}=4096)")
            return _node_setting(tokens[i + 1], f"{token} {tokens[i + 1]}", where), 2
        if token.startswith(flag + "="):
            return _node_setting(token[len(flag) + 1:], token, where), 1
    return None, 1


def _node_setting(text: str, token: str, where: str) -> Setting:
    if not re.fullmatch(r"[0-9]+", text):
        raise SettingFormError(f"{where}: {token}: {text!r} is not a whole number of MiB (e.g. --max-old-space-size=4096)")
    return Setting("heap_max", float(int(text) * MIB), "bytes", "--max-old-space-size", token, where)


def format_node_mib(num_bytes: float) -> str:
    """Bytes as --max-old-space-size's whole MiB, rounded down."""
    return str(int(num_bytes // MIB))


# --- .NET ------------------------------------------------------------------------------------------------

def parse_dotnet_hex(text: str, name: str) -> float:
    """A .NET GC setting from the environment: hexadecimal, with or without 0x."""
    digits = text[2:] if text[:2].lower() == "0x" else text
    if not re.fullmatch(r"[0-9a-fA-F]+", digits):
        raise SettingFormError(f"{name}={text!r} is not hexadecimal (.NET reads GC settings from the environment "
                               "as hex, e.g. 0xC800000 for 200 MiB or 4B for 75 %)")
    return float(int(digits, 16))


def format_dotnet_hex(num_bytes: float) -> str:
    """Bytes (rounded down to whole MiB) as the hex .NET reads: 200 MiB -> '0xC800000'."""
    return f"0x{int(num_bytes // MIB) * MIB:X}"


def dotnet_setting(name: str, text: str) -> Setting:
    """The setting of one .NET variable (DOTNET_ or COMPlus_ GCHeapHardLimit / GCHeapHardLimitPercent)."""
    value = parse_dotnet_hex(text, name)
    if name in DOTNET_PERCENT_ENV:
        if not 0 < value <= 100:
            raise SettingFormError(f"{name}={text!r} is {value:g} %: not between 1 and 100 (0x1-0x64)")
        return Setting("heap_hard_limit_percent", value, "percent", name, text, f"env {name}")
    return Setting("heap_hard_limit", value, "bytes", name, text, f"env {name}")


# --- rewriting -------------------------------------------------------------------------------------------

def replace_token(text: str, old: str, new: str) -> str:
    """``text`` with the last whole-word occurrence of ``old`` replaced by ``new`` (the one that wins: a
    later flag overrides an earlier one); every other character kept. ValueError when ``old`` is absent."""
    matches = list(re.finditer(r"(?<!\S)" + re.escape(old) + r"(?!\S)", text))
    if not matches:
        raise ValueError(f"{old!r} is not an option of {text!r}")
    m = matches[-1]
    return text[:m.start()] + new + text[m.end():]


def new_token(setting: Setting, value: float) -> str:
    """The token that sets ``setting`` to ``value`` (bytes or percent) in the same form it was written."""
    if setting.flag == "--max-old-space-size":
        sep = " " if " " in setting.token else "="
        return f"{setting.token.split(sep)[0]}{sep}{format_node_mib(value)}"
    if setting.flag in ("-Xmx", "-Xms"):
        return f"{setting.flag}{format_jvm_size(value)}"
    if setting.flag == "-XX:MaxRAM":  # the heap was MaxRAM x a percentage: an -Xmx says it directly and wins
        return f"-Xmx{format_jvm_size(value)}"
    if setting.unit == "percent":
        return f"{setting.flag}={value:g}"
    if setting.flag.startswith("-XX:"):
        return f"{setting.flag}={format_jvm_size(value)}"
    if setting.flag == "GOMEMLIMIT":
        return format_gomemlimit(value)
    if setting.flag in DOTNET_LIMIT_ENV:
        return format_dotnet_hex(value)
    raise ValueError(f"no form to write {setting.flag} with")
