"""The shape of the package (docs/architecture.md): layers that import only downwards, no import cycle (hidden in a
function or not), no module over 500 lines, and no experiment named outside the experiment's own module.

The import graph is read from the sources with ``ast`` (every ``import`` and ``from ... import`` of the package,
at module level or inside a function), so an import hidden in a function to break a cycle is still an edge."""

import ast
import re
from pathlib import Path

import pytest

import cevnsfit

SRC = Path(cevnsfit.__file__).resolve().parent
PACKAGE = "cevnsfit"

# Layers, lowest first: a module may import its own layer and those below.  Statistics never knows what a neutrino
# is; physics never imports an experiment; an experiment receives its source, target and responses; the CLI is the
# edge.
LAYERS = (
    ("errors", "units", "process", "parameters", "__init__"),
    ("io",),
    ("physics", "stats"),
    ("sources", "targets", "responses"),
    ("kernel", "templates"),
    ("experiments", "limits"),
    ("mediators", "poi", "poifit", "projection"),
    ("plotting",),
    ("analysis", "fc", "reproduce"),  # the pipelines behind the commands: compute, then write tables and figures
    ("cli", "entry", "cli_data", "cli_format"),
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
        out[".".join((PACKAGE, *parts)) if parts != ["__init__"] else PACKAGE] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith(PACKAGE)]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith(PACKAGE):
        return []
    out = []
    for alias in node.names:  # `from . import x` imports the module x
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(t for t in _resolve(module, node, path.name == "__init__.py") if t in MODULES)
        graph[module] = edges - {module}
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LAYER:
        raise AssertionError(f"module {module} is in no layer of tests/test_architecture.py: place it")
    return LAYER[top]


def test_imports_run_only_downwards():
    graph = _graph()
    upward = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts if _layer(t) > _layer(m))
    assert upward == [], "imports that run back up a layer:\n" + "\n".join(upward)


def test_no_import_cycles_between_subpackages():
    """Cycles between top-level parts of the package (a module importing a sibling package that imports it back),
    counting imports hidden inside functions."""
    graph = _graph()
    top = lambda m: m.split(".")[1] if "." in m else "__init__"  # noqa: E731
    edges = {(top(m), top(t)) for m, ts in graph.items() for t in ts if top(m) != top(t) and top(t) != "__init__"}
    nodes = {a for a, _ in edges} | {b for _, b in edges}
    # depth-first search for a back edge
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = 1
        for a, b in edges:
            if a == n:
                if state.get(b) == 1:
                    cycles.append(" -> ".join(stack[stack.index(b):] + [b]))
                elif b not in state:
                    visit(b, stack + [b])
        state[n] = 2

    for n in sorted(nodes):
        if n not in state:
            visit(n, [n])
    assert cycles == []


def test_no_module_is_over_500_lines():
    long = sorted(f"{m}: {len(p.read_text().splitlines())}" for m, p in MODULES.items()
                  if len(p.read_text().splitlines()) > MAX_LINES)
    assert long == []


def _code_strings(path: Path):
    """(line, text) of every string literal of the module that is not a docstring."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


# the registries themselves: the experiment modules, and the registry of fetchable public data sets (whose names
# are the downloads', e.g. "xenonnt" and "dresden2", not the analysis's)
EXEMPT = ("experiments/csi2021.py", "experiments/lar2020.py", "experiments/xenonnt.py", "experiments/xenonnt_release.py",
          "io/registry.py")


def test_no_literal_experiment_names_outside_their_modules():
    """Data-set and experiment names in code come from the registries (data/datasets.yaml, the experiment modules,
    the declarations), never from literals: a new experiment is a declaration, not a patch across the package."""
    from cevnsfit.experiments import DATA_SETS, EXPERIMENTS

    names = set(DATA_SETS) | set(EXPERIMENTS)
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in EXEMPT:
            continue
        found += [f"{rel}:{line}: {text!r}" for line, text in _code_strings(path) if text in names]
    assert found == []
