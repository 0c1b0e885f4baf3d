"""The house rules that keep the package readable: imports run one way (data -> model -> trial ->
search -> report, never back up), no import cycle, and no module over 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "polyp_ray"
MAX_LINES = 300

# Floors, lowest first: a module may import its own floor and the ones below, never one above.
# The foundation (configs, data, models, losses, metrics) knows nothing of Ray or of its callers. The
# package itself is the public API over every floor, so it stands on top.
FLOORS = [
    ("polyp_ray.errors", "polyp_ray.tf_quiet"),
    ("polyp_ray.config", "polyp_ray.experiment", "polyp_ray.typed_yaml", "polyp_ray.stats", "polyp_ray.searchspace",
     "polyp_ray.runtime", "polyp_ray.data", "polyp_ray.models", "polyp_ray.losses", "polyp_ray.metrics",
     "polyp_ray.structure_metrics", "polyp_ray.schedules", "polyp_ray.keras_objects"),
    ("polyp_ray.evaluation", "polyp_ray.ensemble", "polyp_ray.set_scores", "polyp_ray.generalisation"),
    ("polyp_ray.trial",),
    ("polyp_ray.storage", "polyp_ray.tuning"),
    ("polyp_ray.search", "polyp_ray.report", "polyp_ray.predict", "polyp_ray.export", "polyp_ray",
     "polyp_ray.slurm", "polyp_ray.launch"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every polyp_ray module ``path`` imports at run time, at the top or inside a function (imports
    for type checkers only, under ``if TYPE_CHECKING:``, load nothing)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("polyp_ray")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("polyp_ray"):
            modules = {f"{node.module}.{a.name}" for a in node.names}
            found |= {m for m in modules if m in _all_modules()} or {node.module}
    return found


def _all_modules() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("*.py")}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) - {_module_name(p)} for p in PACKAGE.rglob("*.py")}


def _floor(module: str) -> int:
    best, floor = -1, -1
    for index, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, floor = len(name), index
    assert floor >= 0, f"{module} has no floor in tests/test_structure.py"
    return floor


def test_imports_run_one_way() -> None:
    upward = [f"{module} imports {target}" for module, targets in _graph().items() for target in targets
              if _floor(target) > _floor(module)]
    assert not upward, "imports that go up a floor:\n" + "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = 2
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    assert _floor("polyp_ray.tuning.run") > _floor("polyp_ray.trial") > _floor("polyp_ray.data.dataset")
    assert "polyp_ray.config" in _imports(PACKAGE / "search.py")


def test_no_module_is_over_300_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
