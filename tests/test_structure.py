"""The house rules that keep the package readable: imports run one way (ground -> models -> config and
data -> trial -> search -> report, never back up), no import cycle, and no module over 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "polyp_ray"
MAX_LINES = 300

# Floors, lowest first: a module may import its own floor (sideways) and the ones below, never one above.
# The ground floor knows nothing of the package above it; models/ stands on it alone (config checks names
# against the model registries, never the other way); the foundation (configs, data) knows nothing of Ray
# or of its callers. The package itself is the public API over every floor, so it stands on top.
FLOORS = [
    ("polyp_ray.errors", "polyp_ray.tf_quiet", "polyp_ray.fetch", "polyp_ray.typed_yaml", "polyp_ray.stats",
     "polyp_ray.losses", "polyp_ray.metrics", "polyp_ray.structure_metrics", "polyp_ray.schedules",
     "polyp_ray.runtime"),
    ("polyp_ray.models",),
    ("polyp_ray.config", "polyp_ray.strategy_config", "polyp_ray.experiment", "polyp_ray.stored_study",
     "polyp_ray.searchspace", "polyp_ray.pretrained", "polyp_ray.data"),
    ("polyp_ray.evaluation", "polyp_ray.ensemble", "polyp_ray.set_scores", "polyp_ray.generalisation",
     "polyp_ray.gallery", "polyp_ray.cross_validation", "polyp_ray.trial_state"),
    ("polyp_ray.trial",),
    ("polyp_ray.storage", "polyp_ray.tuning"),
    ("polyp_ray.search", "polyp_ray.report", "polyp_ray.predict", "polyp_ray.export", "polyp_ray",
     "polyp_ray.slurm", "polyp_ray.launch"),
]


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every polyp_ray module ``path`` imports at run time, at the top or inside a function (imports
    for type checkers only, under ``if TYPE_CHECKING:``, load nothing); ``known``: the package's modules."""
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
            found |= {m for m in modules if m in known} or {node.module}
    return found


def graph_of(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for the package folder ``package``."""
    files = sorted(package.rglob("*.py"))
    known = {_module_name(p, package) for p in files}
    return {_module_name(p, package): _imports(p, known) - {_module_name(p, package)} for p in files}


def _floor(module: str) -> int:
    best, floor = -1, -1
    for index, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, floor = len(name), index
    assert floor >= 0, f"{module} has no floor in tests/test_structure.py"
    return floor


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} imports {target}" for module, targets in graph.items() for target in targets
                  if _floor(target) > _floor(module))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (its first module repeated at the end), or None."""
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
            return cycle
    return None


def test_imports_run_one_way() -> None:
    upward = upward_imports(graph_of())
    assert not upward, "imports that go up a floor:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    cycle = find_cycle(graph_of())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """A package built to break both rules: models/ reaching up to config, and data/ importing itself round."""
    package = tmp_path / "polyp_ray"
    files = {
        "__init__.py": "",
        "config.py": "from polyp_ray.models.registry import MODELS\n",
        "models/__init__.py": "",
        "models/registry.py": "MODELS = {}\n",
        "models/backbones.py": "def build():\n    from polyp_ray.config import HyperParams\n",  # upward
        "data/__init__.py": "",
        "data/a.py": "from polyp_ray.data import b\n",
        "data/b.py": "import polyp_ray.data.c\n",
        "data/c.py": "from polyp_ray.data.a import x\n",
        "models/saving.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from polyp_ray.config import X\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    graph = graph_of(package)
    assert upward_imports(graph) == ["polyp_ray.models.backbones imports polyp_ray.config"]  # not saving's
    assert find_cycle(graph) == ["polyp_ray.data.a", "polyp_ray.data.b", "polyp_ray.data.c", "polyp_ray.data.a"]
    assert find_cycle({k: v for k, v in graph.items() if k != "polyp_ray.data.c"}) is None
    assert _floor("polyp_ray.models.registry") < _floor("polyp_ray.config")  # a sideways import is no arrow up:
    assert upward_imports({"polyp_ray.config": {"polyp_ray.data.dataset"}}) == []


def test_no_module_is_over_300_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
