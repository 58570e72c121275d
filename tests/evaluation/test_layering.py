"""Evaluation imports only downward, and metrics/ stays pure functions (no networks, no files)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ganforge

SRC = Path(ganforge.__file__).parent

ALLOWED = {
    # evaluation: the parts below it, and the Callback base class of train/
    "evaluation": ("ganforge.evaluation", "ganforge.data", "ganforge.models", "ganforge.metrics", "ganforge.io",
                   "ganforge.errors", "ganforge.registry", "ganforge.config", "ganforge.train.callbacks",
                   "ganforge.rundir"),  # the run directory's one owner
    # metrics: pure functions of arrays
    "metrics": ("ganforge.metrics", "ganforge.errors"),
}


def _runtime_imports(path: Path) -> list[str]:
    """Modules a file imports when it runs (imports under ``if TYPE_CHECKING:`` are type hints only)."""
    tree = ast.parse(path.read_text())
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
    return [m for m in found if m == "ganforge" or m.startswith("ganforge.")]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_only_downward(package: str) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    assert files
    bad = [f"{f.relative_to(SRC)} imports {m}" for f in files for m in _runtime_imports(f)
           if not m.startswith(ALLOWED[package])]
    assert bad == []


def test_metrics_hold_no_networks() -> None:
    for f in sorted((SRC / "metrics").rglob("*.py")):
        tree = ast.parse(f.read_text())
        code = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.Call, ast.Attribute))]
        assert not any("nn.Module" in c or "torch.load" in c or "load_file" in c for c in code), f
