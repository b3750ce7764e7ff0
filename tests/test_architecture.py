"""The shape of the code base: one direction of imports, no cycles, light modules stay light.

The data path runs one way, ``sw`` -> ``hw`` -> ``sim`` -> ``bitstreams`` (and the ``bitspike``
command over all of them): a module may import its own layer and the layers before it, never a
later one, and no set of modules imports itself round in a cycle. Imports are read from the
source (module level, inside functions and under ``TYPE_CHECKING`` alike), so a lazy import
that reaches back counts as much as an eager one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The layers, in data-path order.
LAYERS = ("sw", "hw", "sim", "bitstreams", "bitspike")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}


def _resolve(name: str, modules) -> str | None:
    """The project module ``name`` refers to (its longest known prefix), or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported project module: line}}`` for every project module."""
    modules = _modules()
    graph = {}
    for mod, path in modules.items():
        targets = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = mod.split(".") if path.name == "__init__.py" else \
                        mod.split(".")[:-1]
                    package = package[:len(package) - node.level + 1]
                    base = ".".join(package + ([base] if base else []))
                # ``from pkg import name`` imports pkg.name when that is a module, else pkg.
                names = [f"{base}.{a.name}" if base else a.name for a in node.names]
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != mod:
                    targets.setdefault(target, node.lineno)
        graph[mod] = targets
    return graph


def find_cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_graph_sees_every_kind_of_import():
    """The walker itself: module-level, function-local, relative and ``from pkg import mod``
    imports all become edges (a walker that missed them would pass every test below)."""
    graph = import_graph()
    assert "sw.fixedpoint" in graph["sw.artifact"]           # module level
    assert "sw.default_model" in graph["sim.main"]           # module level, other layer
    assert "sw.export" in graph["sw.default_model"]          # inside a function
    assert graph["sim.main"]["sw.default_model"] > 0


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_a_cycle_is_found():
    """The cycle finder on a made-up graph: a test of the test."""
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == \
        [["a", "b", "c"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_layer_reaches_back():
    graph = import_graph()
    rank = {layer: k for k, layer in enumerate(LAYERS)}
    back = [f"{mod} imports {target} (line {line})"
            for mod, targets in sorted(graph.items())
            for target, line in sorted(targets.items())
            if rank[target.split(".")[0]] > rank[mod.split(".")[0]]]
    assert not back, "imports against the data path:\n" + "\n".join(back)


#: Modules that must import without Amaranth (and without torch): the host client runs on
#: machines with only the board's Python side installed; the build arithmetic and the
#: description reader serve the CLIs and testbenches.
LIGHT = ["bitstreams.host", "bitstreams.protocol", "hw.plan", "hw.interface", "sim.description",
         "sim.layout", "sw.artifact", "sw.golden", "sw.folding", "sw.checks", "sw.digest",
         "sw.default_model", "sw.fixedpoint", "bitspike.cli"]


def _python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``code`` run by a fresh interpreter in the repository root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("module", LIGHT)
def test_module_imports_without_amaranth_or_torch(module):
    code = ("import sys\n"
            "for name in ('amaranth', 'torch'):\n"
            "    sys.modules[name] = None  # any import of them raises ImportError\n"
            f"import {module}\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('amaranth', 'torch') and sys.modules[m] is not None)\n"
            "assert not loaded, loaded\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_hidden_amaranth_is_really_hidden():
    """The trick above works: a module that needs Amaranth fails under it."""
    proc = _python("import sys\nsys.modules['amaranth'] = None\nimport hw.stage\n")
    assert proc.returncode != 0 and "import of amaranth halted" in proc.stderr


def test_golden_model_imports_numba_only_to_run_a_conv_layer():
    """numba (its import takes a while) is imported by the conv kernels' module, which the
    golden model imports the first time it runs a conv or pool layer: a dense run never does."""
    code = ("import sys\n"
            "import numpy as np\n"
            "from sw.golden import GoldenModel\n"
            "from sw.randnet import random_artifact, random_inputs\n"
            "a = random_artifact(1, sizes=[6, 5, 3], time_steps=2)\n"
            "GoldenModel(a).run(random_inputs(a, 4, 1))\n"
            "assert 'numba' not in sys.modules, 'a dense run imported numba'\n"
            "from sw.randnet import random_conv_artifact\n"
            "c = random_conv_artifact(1, in_shape=(1, 4, 4), layers=[('conv', 2, 3, 1, 1), "
            "('readout', 2)], time_steps=2)\n"
            "GoldenModel(c).run(random_inputs(c, 2, 1))\n"
            "assert 'numba' in sys.modules\n")
    proc = _python(code, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
