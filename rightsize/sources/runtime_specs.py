"""Which runtime a container runs (JVM, Go, Node.js, .NET) and the memory setting it runs with, read from
its spec (the Kubernetes API or manifests): env, command, args and the image name. Pure functions over the
container's dict; the forms of each setting live in rightsize/runtimes.py.

- **env**: literal values, with Kubernetes' ``$(VAR)`` expansion from the variables defined before them; a
  ``valueFrom`` ConfigMap, Secret or field is *unknown*, never guessed (a ``resourceFieldRef`` to
  ``limits.memory`` is exact: the value follows the limit); ``envFrom`` may set any of them (unknown).
- **command / args**: the program is ``command[0]`` (or, in ``sh -c "..."``, the script's words): JVM flags are
  the options between ``java`` and its main class or ``-jar FILE``, Node's between ``node`` and its script.
  Without a command the image's entrypoint runs ``args``: flags there may or may not reach the runtime
  (unknown). A start script's ``$JAVA_OPTS`` is expanded where the script names it.
- **image**: a hint when nothing else says which runtime (temurin, corretto, openjdk, node, golang, dotnet).

The effective setting follows each runtime's precedence (runtimes.py); it is *uncertain* when a carrier
whose value is unknown could override it, and the row lists those carriers.
"""
from __future__ import annotations

import json
import math
import posixpath
import re
from dataclasses import dataclass, field

from .. import runtimes as rt
from ..quantity import parse_memory

SHELLS = {"sh", "bash", "ash", "dash", "zsh", "busybox"}
JVM_TAKES_VALUE = {"-cp", "-classpath", "--class-path", "-p", "--module-path", "--add-modules", "--add-opens",
                   "--add-exports", "--add-reads", "--upgrade-module-path", "--limit-modules", "--patch-module"}
JVM_IMAGE_WORDS = {"temurin", "corretto", "amazoncorretto", "openjdk", "jdk", "jre", "zulu", "liberica", "semeru",
                   "sapmachine", "microsoft-openjdk"}
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_JAVA_OPTS_WORD = {"$JAVA_OPTS", "${JAVA_OPTS}"}


@dataclass
class Env:
    """A container's environment: literal values (expanded), carriers whose value is unknown (name ->
    why), resourceFieldRef limits.memory divisors (name -> bytes), envFrom sources."""

    literal: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)
    limit_ref: dict[str, float] = field(default_factory=dict)
    env_from: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, container: dict) -> "Env":
        env = cls()
        for item in container.get("env") or []:
            if not isinstance(item, dict) or not item.get("name"):
                continue
            name = str(item["name"])
            env.literal.pop(name, None), env.unknown.pop(name, None), env.limit_ref.pop(name, None)
            if "valueFrom" in item:
                env._value_from(name, item.get("valueFrom") or {})
            else:
                env._literal(name, str(item.get("value") or ""))
        for source in container.get("envFrom") or []:
            ref = source.get("configMapRef") or source.get("secretRef") or {}
            kind = "ConfigMap" if "configMapRef" in source else "Secret"
            env.env_from.append(f"envFrom {kind} {ref.get('name', '?')}")
        return env

    def _literal(self, name: str, value: str) -> None:
        missing = [m.group(1) for m in _VAR_REF.finditer(value) if m.group(1) and m.group(1) not in self.literal]
        if missing:  # a reference to an unknown or later variable
            self.unknown[name] = f"refers to $({missing[0]}), whose value is unknown here"
            return
        self.literal[name] = _VAR_REF.sub(lambda m: "$" if m.group(0) == "$$" else self.literal[m.group(1)], value)

    def _value_from(self, name: str, spec: dict) -> None:
        res = spec.get("resourceFieldRef") or {}
        if res.get("resource") == "limits.memory":
            try:
                self.limit_ref[name] = parse_memory(res.get("divisor") or 1)
                return
            except ValueError:
                pass
        what = next(iter(spec), "?")
        ref = spec.get(what) or {}
        names = "/".join(str(ref[k]) for k in ("name", "key", "fieldPath", "resource") if ref.get(k))
        self.unknown[name] = f"valueFrom {what}{' ' + names if names else ''}"

    def known(self, name: str) -> bool:
        return name in self.literal or name in self.unknown or name in self.limit_ref


@dataclass
class Found:
    """What one container's spec says about its runtime (see runtime_row)."""

    runtime: str = ""
    source: str = ""
    heap: rt.Setting | None = None
    heap_percent_default: bool = False
    initial: rt.Setting | None = None
    gogc: float = math.nan
    uncertain: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    env: Env = field(default_factory=Env)
    malformed: bool = False

    def bad(self, *problems: str) -> None:
        """Settings in a form their runtime refuses: named, and the setting counts as unknown."""
        self.problems += problems
        self.malformed = self.malformed or bool(problems)


# --- the command line ------------------------------------------------------------------------------------

def argv(container: dict) -> tuple[list[tuple[str, str]], bool]:
    """The container's argv as (word, where) pairs, and whether its program is known (a command is given).
    A ``sh -c SCRIPT`` is replaced by the script's words (where: the script's token)."""
    command = [str(t) for t in container.get("command") or []]
    args = [str(t) for t in container.get("args") or []]
    words = [(t, f"command[{i}]") for i, t in enumerate(command)] + [(t, f"args[{i}]") for i, t in enumerate(args)]
    if command and posixpath.basename(command[0]) in SHELLS:
        rest = [w for w, _ in words[1:]]
        if "-c" in rest[:2] and rest.index("-c") + 1 < len(rest):
            script, where = words[rest.index("-c") + 2]
            return [(w, where) for w in rt.split_options(script, where)], True
    return words, bool(command)


def _program(words: list[tuple[str, str]]) -> tuple[str, int]:
    """('java' | 'node' | 'dotnet' | '', index of the program word)."""
    for i, (w, _) in enumerate(words):
        name = posixpath.basename(w)
        if name in ("java", "node", "nodejs", "dotnet"):
            return ("node" if name == "nodejs" else name), i
    return "", -1


def _jvm_options(words: list[tuple[str, str]], start: int, env: Env) -> list[tuple[str, str]]:
    """The JVM's own options after ``java`` (until the main class or -jar FILE), $JAVA_OPTS expanded."""
    out: list[tuple[str, str]] = []
    i = start
    while i < len(words):
        w, where = words[i]
        if w in _JAVA_OPTS_WORD:
            if rt.JVM_SCRIPT_ENV in env.literal:
                out += [(t, f"env {rt.JVM_SCRIPT_ENV}") for t in rt.split_options(env.literal[rt.JVM_SCRIPT_ENV], "env JAVA_OPTS")]
            else:
                out.append(("", f"env {rt.JVM_SCRIPT_ENV}"))  # named in the script, value unknown or unset
            i += 1
            continue
        if not w.startswith("-") or w == "-jar":
            break
        out.append((w, where))
        i += 2 if w in JVM_TAKES_VALUE else 1
    return out


def _settings(tokens: list[tuple[str, str]], parse) -> tuple[list[rt.Setting], list[str]]:
    """Settings found by ``parse(tokens, i) -> (setting | None, used)``; problems for malformed ones."""
    found, problems, i = [], [], 0
    while i < len(tokens):
        try:
            s, used = parse(tokens, i)
        except rt.SettingFormError as exc:
            problems.append(str(exc))
            s, used = None, 1
        if s is not None:
            found.append(s)
        i += used
    return found, problems


def _jvm_parse(tokens, i):
    return rt.jvm_flag(tokens[i][0], tokens[i][1]), 1


def _node_parse(tokens, i):
    return rt.node_flag([t for t, _ in tokens], i, tokens[i][1])


# --- per runtime -----------------------------------------------------------------------------------------

def _env_tokens(env: Env, name: str, found: Found) -> list[tuple[str, str]] | None:
    """The options of one variable as (token, where); None when it is set but unknown, [] when unset."""
    if name in env.unknown or name in env.limit_ref:
        return None
    if name not in env.literal:
        return []
    try:
        return [(t, f"env {name}") for t in rt.split_options(env.literal[name], f"env {name}")]
    except rt.SettingFormError as exc:
        found.bad(str(exc))
        return []


def _unknown_label(env: Env, name: str) -> str:
    return f"env {name} ({env.unknown.get(name, 'resourceFieldRef limits.memory')})"


def _jvm_sources(found: Found, env: Env, words, program: int, has_command: bool) -> list[tuple[str, list | None]]:
    """Where the JVM reads flags, in its read order: (label, tokens), tokens None where the value is unknown."""
    sources = [(_unknown_label(env, n), _env_tokens(env, n, found)) for n in rt.JVM_ENV_BEFORE]
    opts = rt.JVM_SCRIPT_ENV
    if opts in env.literal or opts in env.unknown:
        if program >= 0 and has_command and not any(w in _JAVA_OPTS_WORD for w, _ in words):
            found.problems.append("env JAVA_OPTS is set, but the command runs java directly, which does not read it")
        elif program < 0:  # the image's start script may pass it on: a convention of scripts, not of the JVM
            sources.append((f"{_unknown_label(env, opts)} read only if the image's start script passes it to java",
                            _env_tokens(env, opts, found)))
    line = _jvm_options(words, program + 1, env) if program >= 0 else []
    if any(t == "" for t, _ in line):
        sources.append(("env JAVA_OPTS (named by the script, value unknown)", None))
    if program < 0 and not has_command:
        sources += [(f"{where} {w} (given to the image's entrypoint: whether the JVM reads it is unknown)", None)
                    for w, where in words if w.startswith("-X")]
    sources.append(("command line", [(t, w) for t, w in line if t]))
    sources += [(_unknown_label(env, n), _env_tokens(env, n, found)) for n in rt.JVM_ENV_AFTER]
    return sources


def _jvm(found: Found, env: Env, words, program: int, has_command: bool) -> None:
    """The JVM's heap setting: the later flag wins, -Xmx over a percentage, the JVM default 25 % without either.
    Uncertain: carriers of unknown value that could override it (after an -Xmx; anywhere for a percentage)."""
    sources = _jvm_sources(found, env, words, program, has_command)
    last: dict[str, tuple[int, rt.Setting]] = {}
    for i, (_, tokens) in enumerate(sources):
        settings, problems = _settings(tokens or [], _jvm_parse)
        found.bad(*problems)
        for s in settings:
            last[s.name] = (i, s)
    unknown = [(i, label) for i, (label, tokens) in enumerate(sources) if tokens is None]
    after = last["heap_max"][0] if "heap_max" in last else -1
    found.uncertain += [label for i, label in unknown if i > after]
    if "heap_max" in last:
        found.heap = last["heap_max"][1]
    elif "max_ram" in last:
        pct = last["max_ram_percent"][1].value if "max_ram_percent" in last else rt.JVM_DEFAULT_PERCENT
        s = last["max_ram"][1]
        found.heap = rt.Setting("heap_max", s.value * pct / 100, "bytes", "-XX:MaxRAM", s.token, s.where)
    elif "max_ram_percent" in last:
        found.heap = last["max_ram_percent"][1]
    else:
        found.heap = rt.Setting("max_ram_percent", rt.JVM_DEFAULT_PERCENT, "percent", "-XX:MaxRAMPercentage", "", "JVM default")
        found.heap_percent_default = True
    if found.heap.where == f"env {rt.JVM_SCRIPT_ENV}" and program < 0:
        found.uncertain.append("env JAVA_OPTS is read only if the image's start script passes it to java")
    found.initial = last.get("heap_initial", (0, None))[1]


def _node(found: Found, env: Env, words, program: int) -> None:
    """--max-old-space-size from NODE_OPTIONS, then node's command line (which wins)."""
    from_env = _env_tokens(env, "NODE_OPTIONS", found)
    options = list(from_env or [])
    if program >= 0:
        line = []
        for w, where in words[program + 1:]:
            if not w.startswith("-") and not (line and line[-1][0] in ("--max-old-space-size", "--max_old_space_size")):
                break
            line.append((w, where))
        options += line
    settings, problems = _settings(options, _node_parse)
    found.bad(*problems)
    found.heap = settings[-1] if settings else None
    if from_env is None and not (found.heap and found.heap.where != "env NODE_OPTIONS"):
        found.uncertain.append(_unknown_label(env, "NODE_OPTIONS"))


def _go(found: Found, env: Env) -> None:
    """GOMEMLIMIT (a literal, or following the limit by resourceFieldRef) and GOGC."""
    if "GOMEMLIMIT" in env.limit_ref:
        divisor = env.limit_ref["GOMEMLIMIT"]
        found.heap = rt.Setting("memory_limit", 100.0 / divisor, "percent", "GOMEMLIMIT",
                                "resourceFieldRef limits.memory", "env GOMEMLIMIT")
    elif "GOMEMLIMIT" in env.unknown:
        found.uncertain.append(_unknown_label(env, "GOMEMLIMIT"))
    elif "GOMEMLIMIT" in env.literal:
        text = env.literal["GOMEMLIMIT"]
        try:
            value = rt.parse_gomemlimit(text)
            if math.isfinite(value):
                found.heap = rt.Setting("memory_limit", value, "bytes", "GOMEMLIMIT", text, "env GOMEMLIMIT")
        except rt.SettingFormError as exc:
            found.bad(f"env {exc}")
    if "GOGC" in env.literal:
        try:
            found.gogc = rt.parse_gogc(env.literal["GOGC"])
        except rt.SettingFormError as exc:
            found.problems.append(f"env {exc}")  # Go reads a bad GOGC as 100 and runs


def _dotnet(found: Found, env: Env) -> None:
    """GCHeapHardLimit (DOTNET_ before COMPlus_) wins over GCHeapHardLimitPercent."""
    for names in (rt.DOTNET_LIMIT_ENV, rt.DOTNET_PERCENT_ENV):
        for name in names:
            if name in env.unknown or name in env.limit_ref:
                found.uncertain.append(f"env {name} ({env.unknown.get(name, 'resourceFieldRef: decimal, read as hex')})")
            elif name in env.literal and found.heap is None:
                try:
                    found.heap = rt.dotnet_setting(name, env.literal[name])
                except rt.SettingFormError as exc:
                    found.bad(f"env {exc}")


def image_runtime(image: str) -> str:
    """The runtime an image name suggests ('' none): eclipse-temurin, amazoncorretto, openjdk... -> jvm;
    node -> node; golang -> go; mcr.microsoft.com/dotnet/... -> dotnet."""
    ref = image.split("@")[0]
    path = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    parts = path.lower().split("/")
    last = parts[-1]
    if "dotnet" in parts[:-1] or last.startswith("dotnet"):
        return "dotnet"
    if last in ("node", "nodejs"):
        return "node"
    if last == "golang":
        return "go"
    return "jvm" if set(re.split(r"[-_.]", last)) & JVM_IMAGE_WORDS or last in JVM_IMAGE_WORDS else ""


def detect(container: dict) -> Found:
    """The runtime of one container and its effective memory setting (module docstring)."""
    env = Env.of(container)
    found = Found(env=env)
    try:
        words, has_command = argv(container)
    except rt.SettingFormError as exc:
        found.bad(str(exc))
        words, has_command = [], bool(container.get("command"))
    program, index = _program(words)
    by_env = sorted({rt.RUNTIME_ENV[n] for n in rt.RUNTIME_ENV if env.known(n)}, key=rt.RUNTIMES.index)
    image = str(container.get("image") or "")
    if program:
        found.runtime = {"java": "jvm"}.get(program, program)
        found.source = f"{words[index][1]} {program}"
    elif by_env:
        found.runtime = by_env[0]
        found.source = "env " + next(n for n in rt.RUNTIME_ENV if env.known(n) and rt.RUNTIME_ENV[n] == by_env[0])
    elif image_runtime(image):
        found.runtime, found.source = image_runtime(image), f"image {image}"
    if not found.runtime:
        return found
    others = [r for r in by_env if r != found.runtime]
    if others:
        found.problems.append(f"env sets {', '.join(others)} settings, but the container runs {found.runtime}: ignored")
    if found.runtime == "jvm":
        _jvm(found, env, words, index, has_command)
    elif found.runtime == "node":
        _node(found, env, words, index)
    elif found.runtime == "go":
        _go(found, env)
    else:
        _dotnet(found, env)
    if found.malformed:
        # a setting the runtime cannot parse stops it (a JVM refuses to start): what it runs with is unknown
        found.uncertain.append("a setting that does not parse (see problems)")
    if env.env_from and found.heap is None or (env.env_from and found.heap_percent_default):
        found.uncertain += [f"{s} (may set the runtime's variables)" for s in env.env_from]
    return found


def runtime_row(container: dict, ident: dict) -> dict | None:
    """The runtimes table row of one container (schema.TABLES["runtimes"]), None when no runtime is seen."""
    found = detect(container)
    if not found.runtime:
        return None
    heap, initial, env = found.heap, found.initial, found.env
    return {
        **ident, "container": str(container.get("name") or ""),
        "runtime": found.runtime, "runtime_source": found.source, "image": str(container.get("image") or ""),
        "memory_setting": heap.flag if heap else "",
        "memory_setting_bytes": heap.value if heap and heap.unit == "bytes" else math.nan,
        "memory_setting_percent": heap.value if heap and heap.unit == "percent" else math.nan,
        "memory_setting_where": heap.where if heap else "",
        "memory_setting_token": heap.token if heap else "",
        "initial_heap_bytes": initial.value if initial else math.nan,
        "initial_heap_where": initial.where if initial else "",
        "initial_heap_token": initial.token if initial else "",
        "gogc_percent": found.gogc,
        "env_json": json.dumps({n: v for n, v in env.literal.items() if n in rt.RUNTIME_ENV}, sort_keys=True),
        "uncertain": "; ".join(dict.fromkeys(found.uncertain)),
        "problems": "; ".join(dict.fromkeys(found.problems)),
    }


def runtime_rows(pod_spec: dict, ident: dict) -> list[dict]:
    """The runtimes rows of a pod template's main and init containers (those with a runtime)."""
    rows = [runtime_row(c, ident) for key in ("containers", "initContainers") for c in pod_spec.get(key) or []
            if isinstance(c, dict)]
    return [r for r in rows if r is not None]


def warn_runtime_settings(rows: list[dict], warn) -> list[dict]:
    """One caveat per kind: settings that do not parse (or are not read), settings of unknown value; ``rows``."""
    for column, code, what, affects in (
            ("problems", "runtime_setting_malformed", "have a runtime memory setting that does not parse or is not read",
             "those settings are left out (never guessed); the runtime rules use the others and the metrics"),
            ("uncertain", "runtime_setting_unknown", "have a runtime memory setting whose value is unknown from the spec "
             "(valueFrom, envFrom, the image's entrypoint)", "their runtime limit is taken from the metrics where present")):
        hit = [r for r in rows if r[column]]
        if hit:
            shown = "; ".join(f"{r['namespace']}/{r['kind']}/{r['workload']}:{r['container']}: {r[column]}" for r in hit[:3])
            warn(code, f"{len(hit)} container(s) {what}: {shown}" + (" ..." if len(hit) > 3 else ""), affects)
    return rows
