"""The house: each subpackage imports only the rooms below it, and modules stay small.

    commands/cli -> serve, sim -> core -> rules -> promql -> config

Nothing imports serve or the CLI (the simulator runs the real engine and policy, never the
serving loop), so the decision can be reasoned about without the web stack."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "exporter"
LAYERS = ["config", "promql", "rules", "core", "sim", "serve", "commands"]
# What each room may import besides itself (rooms listed lower in LAYERS).
ALLOWED = {
    "config": set(),
    "promql": {"config"},
    "rules": {"config", "promql"},
    "core": {"config", "promql", "rules"},
    "sim": {"config", "promql", "rules", "core"},
    "serve": {"config", "promql", "rules", "core"},
    "commands": {"config", "promql", "rules", "core", "sim", "serve", "cli", "version"},
}
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "cli.py"}
MAX_LINES = 400


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "exporter" and len(parts) > 1:
                yield node.lineno, parts[1]
                break


def _room(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


@pytest.mark.parametrize("room", LAYERS)
def test_each_room_imports_only_the_rooms_below_it(room):
    wrong = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for line, target in _imports(path):
            if target != room and target not in ALLOWED[room] and target != "__version__":
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports exporter.{target}")
    assert wrong == []


def test_no_module_outside_the_rooms_but_the_entry_points():
    loose = {p.name for p in PACKAGE.glob("*.py")} - TOP_LEVEL_MODULES
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert loose == set()
    assert rooms == set(LAYERS)


def test_modules_stay_small():
    long = [
        f"{path.relative_to(PACKAGE.parent)}: {n} lines"
        for path in sorted(PACKAGE.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert long == []
