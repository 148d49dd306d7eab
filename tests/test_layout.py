"""The layout's rules, read from the source with `ast` (nothing is imported): no import cycles, each
package imports only what it may, no module past 400 lines, every package says what it is for.

The import graph counts every import statement wherever it stands (in a function, under
TYPE_CHECKING): a lazy or a type-only import still ties two modules together. Importing `a.b.c`
also runs `a/__init__` and `a/b/__init__`, so it counts as importing those packages too, except the
importer's own (already running) packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = ("agent", "streams", "detectors", "uploader", "protocol", "cityplatform", "webauth")
MAX_LINES = 400


def module_files() -> dict[str, Path]:
    """Every module of our packages by its dotted name (a package by its own: agent/config/ is `agent.config`)."""
    modules = {}
    for top in OURS:
        for path in sorted((REPO / top).rglob("*.py")) if (REPO / top).is_dir() else []:
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> Iterator[tuple[str, str | None]]:
    """(module, imported name or None) for each thing `node` imports, relative imports resolved."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None
        return
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        yield base, alias.name


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours that importing it runs."""
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for module, imported in _imported(node, name, is_package):
                target = f"{module}.{imported}" if f"{module}.{imported}" in modules else module
                while target and target not in modules:  # `import agent.x.y` of a non-module: its package
                    target = target.rpartition(".")[0]
                if not target:
                    continue
                targets.add(target)
                parts = target.split(".")
                targets |= {".".join(parts[:i]) for i in range(1, len(parts))} - own
        graph[name] = targets - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) for each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                frontier.append(nxt)
    raise AssertionError(f"no cycle in {group}")  # a strongly connected group always has one


def our_imports(graph: dict[str, set[str]], module: str) -> set[str]:
    """The top-level packages of ours, other than the module's own, that it imports."""
    top = module.split(".")[0]
    return {target.split(".")[0] for target in graph[module]} - {top}


def test_the_import_graph_has_no_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_cycle_finder_finds_a_cycle_through_a_package_init() -> None:
    # a.x imports a.y, whose import runs the package b, whose __init__ imports a.x again
    graph = {"a": set(), "a.x": {"a.y"}, "a.y": {"b"}, "b": {"a.x", "a"}}
    assert find_cycles(graph) == [["a.x", "a.y", "b", "a.x"]]


@pytest.mark.parametrize(
    "package, allowed",
    [
        ("streams", set()),  # the stages below the agent know nothing of it or of each other
        ("detectors", set()),
        ("uploader", {"protocol"}),
        ("protocol", set()),  # what both sides agree on stands on its own
        ("cityplatform", {"protocol", "webauth"}),  # the platform shares the protocol and the login
        ("webauth", set()),  # the login of the box's page and the platform's review page: stdlib and Starlette only
    ],
)
def test_packages_import_only_what_they_may(package: str, allowed: set[str]) -> None:
    graph = import_graph()
    modules = [m for m in graph if m.split(".")[0] == package]
    assert modules, f"no package {package}/"
    wrong = {m: sorted(our_imports(graph, m) - allowed) for m in modules if our_imports(graph, m) - allowed}
    assert not wrong, f"{package}/ may import only {sorted(allowed) or 'none of ours'}: {wrong}"


def test_no_module_is_over_400_lines() -> None:
    files = [*module_files().values(), *(REPO / "tests").rglob("*.py"), *(REPO / "scripts").glob("*.py")]
    long = {
        str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_every_package_says_what_it_is_for() -> None:
    packages = [p for p in module_files().values() if p.name == "__init__.py"]
    silent = [str(p.relative_to(REPO)) for p in packages if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not silent, f"packages without a docstring in __init__.py: {silent}"


def test_the_agent_top_level_keeps_only_the_orchestration() -> None:
    top = sorted(p.name for p in (REPO / "agent").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 12, f"agent/ has {len(top)} modules at its top level; move each to its concern: {top}"


# The agent's rooms from the bottom up: a module imports only from its own room or the rooms below, so
# a frame goes down the stages and a case comes out; no stage calls back up into the orchestration.
ROOMS = ("agent.geo", "agent.config", "agent.cases", "agent.evidence", "agent", "agent.tools", "agent.cli")
# agent.web (the box's page) reads the running agent as agent.observe does and is started by agent.runner:
# it stays in the `agent` room


def room(module: str) -> int:
    """The index in ROOMS of the module's innermost room (agent.cases.rules: agent.cases)."""
    inside = [r for r in ROOMS if module == r or module.startswith(r + ".")]
    return ROOMS.index(max(inside, key=len))


def test_the_agent_rooms_only_import_downwards() -> None:
    graph = import_graph()
    upward = sorted(
        f"{module} -> {target}"
        for module in graph
        if module.startswith("agent.")
        for target in graph[module]
        if target.startswith("agent.") and room(target) > room(module)
    )
    assert not upward, f"imports up the rooms {ROOMS}:\n" + "\n".join(upward)
