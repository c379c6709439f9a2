"""The import directions of docs/architecture.md, enforced: data flows one way, no import cycles.

Every project module's imports (module level and inside functions) are read with `ast`; each
module belongs to a layer, and a module may import only from its own layer or layers below it.
Within a layer the module graph must be acyclic too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("topologies", "traffic", "controller", "fabric")

# (layer name, module prefixes), lowest first. A module may import its own layer and those below.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("topologies", ("topologies",)),
    ("traffic", ("traffic",)),
    ("controller", ("controller",)),
    ("spec", ("fabric.spec",)),
    ("plan", ("fabric.plan",)),
    ("analysis", ("fabric.analysis",)),
    ("workloads", ("fabric.workloads",)),  # workload kinds: spec, plan, metrics, summary lines
    ("report", ("fabric.report",)),
    ("run", ("fabric.run",)),
    ("top", ("fabric",)),          # cli, doctor, __main__: may use everything
)
# Peers that must not import each other although neither is "below" the other.
FORBIDDEN_PEERS = {("traffic", "controller"), ("controller", "traffic")}


def layer_of(module: str) -> int:
    best = -1
    best_len = -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best < 0:
        raise AssertionError(f"{module}: belongs to no layer of docs/architecture.md")
    return best


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that `module` imports, anywhere in the file (relative imports resolved)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            # `from pkg import mod` names a module; `from mod import name` names the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def import_graph() -> nx.DiGraph:
    mods = project_modules()
    known = set(mods)
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for m, p in mods.items():
        for dep in imports_of(m, p, known):
            if not (m.startswith(dep + ".") and (ROOT / dep.replace(".", "/") / "__init__.py").exists()):
                g.add_edge(m, dep)   # a module importing its own package's __init__ is no edge
    return g


def violations(g: nx.DiGraph) -> list[str]:
    out = []
    for a, b in g.edges:
        la, lb = layer_of(a), layer_of(b)
        pair = (LAYERS[la][0], LAYERS[lb][0])
        if lb > la or pair in FORBIDDEN_PEERS:
            out.append(f"{a} ({pair[0]}) imports {b} ({pair[1]}): not allowed by docs/architecture.md")
    return sorted(out)


def test_every_module_has_a_layer() -> None:
    for m in project_modules():
        layer_of(m)


def test_imports_follow_the_layers() -> None:
    assert violations(import_graph()) == []


def test_no_import_cycles() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    """The checker itself: an analysis module importing the engine is reported."""
    g = import_graph()
    g.add_edge("fabric.analysis.metrics", "fabric.run.engine")
    assert any("fabric.analysis.metrics (analysis) imports fabric.run.engine (run)" in v
               for v in violations(g))
    g2 = import_graph()
    g2.add_edge("traffic.plan", "controller.ofmsgs")
    assert any("traffic.plan" in v for v in violations(g2))


@pytest.mark.parametrize("module", ["fabric.spec.experiment", "fabric.analysis.fidelity",
                                    "traffic.agent", "controller.main"])
def test_layered_modules_import_without_mininet(module: str) -> None:
    """The pure core and the controller never need Mininet at import time."""
    import importlib
    import sys
    before = set(sys.modules)
    importlib.import_module(module)
    loaded = set(sys.modules) - before
    assert not any(m == "mininet" or m.startswith("mininet.") for m in loaded)
