"""Layering one way (issue 13; style.md "core/ imports no feature"): nothing under
``app/core`` imports a feature. What core needs of a feature, the feature registers at app
creation (``app.main`` wires them). Read from the source with ``ast``: no app, no database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

APP = Path(__file__).resolve().parents[2] / "app"
CORE = APP / "core"


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Every module a tree imports, relative imports resolved against ``package``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # ``from app import referrals`` imports a feature by its name.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _features() -> set[str]:
    return {
        path.stem if path.is_file() else path.name
        for path in APP.iterdir()
        if path.name not in {"core", "__init__.py", "__pycache__"}
        and (path.is_dir() or path.suffix == ".py")
    }


def _feature_imports(source: str, package: str) -> list[str]:
    features = _features()
    return sorted(
        module
        for module in _imported(ast.parse(source), package)
        if module.split(".")[0] == "app"
        and len(module.split(".")) > 1
        and module.split(".")[1] in features
    )


def test_core_imports_no_feature() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert modules, "app/core has no modules?"
    offences = {
        str(path.relative_to(APP.parent)): found
        for path in modules
        if (found := _feature_imports(path.read_text(), "app.core"))
    }
    assert offences == {}


def test_the_check_sees_every_form_of_import() -> None:
    """The test above would pass vacuously if the parse missed a form."""
    assert _feature_imports("import app.referrals.states", "app.core") == ["app.referrals.states"]
    assert _feature_imports("from app.sandbox.service import read_clock", "app.core") == [
        "app.sandbox.service",
        "app.sandbox.service.read_clock",
    ]
    assert _feature_imports("from app import idempotency", "app.core") == ["app.idempotency"]
    assert _feature_imports("from ..audit import service", "app.core") == [
        "app.audit",
        "app.audit.service",
    ]
    assert _feature_imports("from app.core.clock import Clock\nimport json", "app.core") == []
    assert _feature_imports("if TYPE_CHECKING:\n    from app.jobs import x", "app.core") == [
        "app.jobs",
        "app.jobs.x",
    ]
