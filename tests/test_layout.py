"""The folder tree is the architecture: read from the imports, not from a promise in the docs.

- components (hub, edge, routing, firmware_sim, monitoring, ops) import only the contract
  package ``lockerhub`` and themselves; hub may also use the routing *library*;
- only the wiring package ``demo`` imports more than one component;
- no import circle between modules, and no module over the size a reader can hold.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "lockerhub": ROOT / "protos" / "lockerhub",
    "hub": ROOT / "hub",
    "edge": ROOT / "edge",
    "routing": ROOT / "routing",
    "firmware_sim": ROOT / "firmware_sim",
    "monitoring": ROOT / "monitoring",
    "ops": ROOT / "ops",
    "demo": ROOT / "demo",
}
CONTRACT = "lockerhub"
WIRING = "demo"
# A component may use these other components as libraries (pure code, no process of its own).
LIBRARIES = {"hub": {"routing"}}
MAX_LINES = 450
# Generated protobuf code and numba kernels are exempt (a kernel is one algorithm, kept whole).
EXEMPT = ("_pb2.py", "_pb2_grpc.py", "_kernel.py")


def modules() -> Iterator[tuple[str, Path]]:
    for top, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [top, *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imports(name: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            found.add(module)
            # ``from pkg import sub`` may import a submodule
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    names = dict(modules())
    return {
        name: {dep for dep in imports(name, path) if dep in names and dep != name}
        for name, path in names.items()
    }


def test_components_import_only_the_contract_and_themselves() -> None:
    wrong = []
    for name, deps in graph().items():
        top = name.split(".")[0]
        if top in (CONTRACT, WIRING):
            continue
        for dep in deps:
            other = dep.split(".")[0]
            if other not in (top, CONTRACT) and other not in LIBRARIES.get(top, set()):
                wrong.append(f"{name} -> {dep}")
    assert not wrong, "components import each other:\n" + "\n".join(sorted(wrong))


def test_the_contract_imports_no_component() -> None:
    wrong = [
        f"{name} -> {dep}"
        for name, deps in graph().items()
        if name.split(".")[0] == CONTRACT
        for dep in deps
        if dep.split(".")[0] != CONTRACT
    ]
    assert not wrong, "\n".join(wrong)


def test_only_the_wiring_package_composes_several_components() -> None:
    composers = {}
    for name, deps in graph().items():
        top = name.split(".")[0]
        used = {d.split(".")[0] for d in deps} - {CONTRACT, top} - LIBRARIES.get(top, set())
        if used:
            composers[name] = used
    assert all(name.split(".")[0] == WIRING for name in composers), composers
    assert composers, "the wiring package composes nothing: is the test reading the tree?"


def test_no_import_circle() -> None:
    # Module-level imports only would be stricter; any import counts here, deferred ones too,
    # because a deferred import that closes a circle is the same seam in the wrong place.
    g = graph()
    # A package's __init__ re-exporting its own modules is not a circle between concerns.
    edges = {
        n: {d for d in deps if not (n.startswith(d + ".") or d.startswith(n + "."))}
        for n, deps in g.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycles.append([*trail[trail.index(dep) :], dep] if dep in trail else [node, dep])
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_too_long_to_read() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for _, path in modules()
        if not path.name.endswith(EXEMPT) and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_package_declares_its_surface() -> None:
    missing = [top for top, folder in PACKAGES.items() if not (folder / "py.typed").exists()]
    assert not missing, f"packages without py.typed: {missing}"
