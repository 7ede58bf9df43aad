"""The package's shape, read from its source with ast (nothing imported): no import cycle, every module in a
layer and the layers importing one way (base -> storage -> declarations -> snapshot -> sources | analysis ->
emit -> stages -> api -> cli), analysis/ does no I/O, functions short enough to read at once and modules
small enough to hold one job. Imports inside functions count: a lazy import is still a dependency."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rightsize"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500
# Longer functions, each with its reason (none today: keep it that way, or say why here).
LONG_FUNCTIONS: dict[str, str] = {}
# Longer modules: declaration tables only, each with its reason.
LONG_MODULES: dict[str, str] = {
    "config.py": "the one declaration of every config key, a table (with [notify] and [injectors] it passed 500 lines); "
                 "moving sections out would give keys a second home",
}
# Every top-level module and package of rightsize in one layer; a layer imports only its own and the layers it
# names (lazy imports inside functions count). Bottom to top: the base, where rightsize writes (storage),
# the declarations (settings, the schema, the config), the snapshot (the contract between the stages), the
# stages' sources and analysis (which never import each other), emit, the stages themselves, the API, the CLI.
LAYERS: dict[str, tuple[set[str], set[str]]] = {
    "base": ({"errors", "quantity", "formatting", "refs", "aws_client", "version", "usage_stats", "sketch", "atomic", "memory", "forked",
              "batch_groups", "escape", "names", "runtimes", "gpu_resources",
              "gpu_catalogue"}, set()),
    "storage": ({"storage", "s3", "folders", "kustomize"}, {"base"}),
    "declarations": ({"settings", "schema", "config", "targets"}, {"base", "storage"}),
    "contract": ({"snapshot", "table_sink"}, {"base", "storage", "declarations"}),
    "sources": ({"sources"}, {"base", "storage", "declarations", "contract"}),
    "analysis": ({"analysis"}, {"base", "declarations", "contract"}),
    "emit": ({"emit"}, {"base", "storage", "declarations", "contract", "analysis"}),
    "stages": ({"collect", "fleet", "demo", "demo_manifests", "doctor", "demo_runtimes", "demo_gpus"},
               {"base", "storage", "declarations", "contract", "sources", "analysis", "emit"}),
    "api": ({"api", "plots", ""}, {"base", "storage", "declarations", "contract", "sources", "analysis", "emit", "stages"}),
    "cli": ({"cli", "arguments", "__main__"}, {"base", "storage", "declarations", "contract", "sources", "analysis", "emit", "stages", "api"}),
}
# Imports across the layers against that order, each with its reason (none: keep it that way, or say why here).
ALLOWED: set[tuple[str, str]] = set()
IO_MODULES = {"subprocess", "socket", "requests", "urllib3", "boto3", "botocore", "kubernetes", "shutil", "tempfile",
              "pathlib", "os", "io"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module ``name`` imports (ours resolved to a module of the package, others by top-level name),
    outside ``if TYPE_CHECKING:`` blocks."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - child.level + 1] if child.level else []
                target = ".".join(base + ([child.module] if child.module else []))
                for a in child.names:
                    found.add(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycle(graph):
    ours = {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}
    assert _cycles(ours) == []
    # the check itself finds a cycle
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _unit(module: str) -> str:
    """The top-level module or package a module belongs to ('' for the package itself)."""
    return module.split(".")[1] if module.count(".") else ""


def _layer_of(module: str) -> str:
    return next(name for name, (units, _) in LAYERS.items() if _unit(module) in units)


def test_every_module_has_a_layer(graph):
    placed = set().union(*(units for units, _ in LAYERS.values()))
    assert {_unit(m) for m in graph} - placed == set(), "place the new module in a layer of LAYERS"
    assert placed - {_unit(m) for m in graph} == set(), "LAYERS names a module that is gone"


def test_layers_import_one_way(graph):
    wrong = sorted((m, t) for m, targets in graph.items() for t in targets
                   if t.startswith("rightsize.") and t in graph and _layer_of(t) != _layer_of(m)
                   and _layer_of(t) not in LAYERS[_layer_of(m)][1] and (m, t) not in ALLOWED)
    assert wrong == []
    # the check itself finds a wrong import
    assert _layer_of("rightsize.analysis.cost") == "analysis" and "sources" not in LAYERS["analysis"][1]


def test_allowed_exceptions_are_still_needed(graph):
    assert {(m, t) for m, t in ALLOWED if t not in graph.get(m, set())} == set(), "remove the exception from ALLOWED"


def test_analysis_does_no_io(graph):
    wrong = sorted((m, t) for m, targets in graph.items() if _unit(m) == "analysis"
                   for t in targets if t.split(".")[0] in IO_MODULES)
    assert wrong == []


def test_functions_are_short_enough_to_read_at_once():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = node.end_lineno - start + 1
                where = f"{path.relative_to(PACKAGE.parent)}:{node.name}"
                if lines > MAX_FUNCTION_LINES and where not in LONG_FUNCTIONS:
                    long[where] = lines
    assert long == {}


def test_modules_are_small_enough_to_hold_one_job():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES and str(p.relative_to(PACKAGE)) not in LONG_MODULES}
    assert long == {}


def test_the_readme_maps_every_module():
    """README's "Map of the package" names every module (package __init__ files apart) and no module that is gone."""
    import re

    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("### Map of the package", 1)[1].split("\n### ", 1)[0]
    rows = "\n".join(line.split("|")[1] for line in section.splitlines() if line.startswith("| `"))
    named = set(re.findall(r"`([\w/]+\.py)`", rows))
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    assert modules - named == set(), "add a line to README's map"
    assert {n for n in named if not n.endswith("__init__.py")} - modules == set(), "README's map names a module that is gone"


def test_one_front_door(graph):
    """The CLI runs the analysis through rightsize.api.analyze (pricing, instance candidates), as the API does."""
    assert "rightsize.api" in graph["rightsize.cli"]
    assert "rightsize.analysis" not in graph["rightsize.cli"]  # no `from .analysis import analyze`


def test_one_storage_interface(graph):
    """Only storage.py tells a local folder from an s3:// prefix: no other module imports the S3 store, and none
    asks ``isinstance(..., S3Path)``."""
    import re

    outside = sorted(m for m, targets in graph.items() if _unit(m) not in ("s3", "storage")
                     for t in targets if t == "rightsize.s3" or t.startswith("rightsize.s3."))
    assert outside == [], "read and write through rightsize.storage"
    asks = re.compile(r"isinstance\([^()]*,\s*\(?[^()]*\bS3Path\b")
    asking = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                    if p.relative_to(PACKAGE).parts[0] not in ("s3", "storage.py") and asks.search(p.read_text()))
    assert asking == [], "ask the location's store (storage.store(loc)) for what it can do, not which kind it is"
    # the check itself finds one
    assert asks.search("if isinstance(out, S3Path):") and asks.search("isinstance(x, (Path, S3Path))")
