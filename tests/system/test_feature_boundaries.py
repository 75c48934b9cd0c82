"""Features meet only through a service's public functions, never another feature's tables
(issue 13; docs: "Layout: by feature", "Every query in a repository").

Read from the source with ``ast``: no app, no database. Every exception is listed with its
reason, so that a new one is a decision, not an accident.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

APP = Path(__file__).resolve().parents[2] / "app"
# Not features: shared foundations, and the top-level modules that wire features together.
NOT_FEATURES = frozenset({"core"})
WIRING = {
    "models.py": "imports every model in one place for Alembic's autogenerate and check",
    "main.py": "the app factory mounts every feature's router",
    "cli.py": "the command line starts a feature's worker or job",
    "demo.py": "seeds demonstration data straight into the tables",
    "examples.py": "records the documentation's examples against a running app",
}
# (importing module, imported module): why it is allowed for now.
ALLOWED: dict[tuple[str, str], str] = {
    ("app.console.performance", "app.contracts.models"): "the console only annotates what "
    "contracts.service.get_contract returns; it runs no query of its own",
    ("app.console.home", "app.sandbox.router"): "the console's sandbox sign-in posts the "
    "sandbox's own token request body",
    ("app.webhooks.router", "app.sandbox.router"): "the sandbox's delivery run is mounted "
    "with the sandbox's settings dependency and note",
}
DATA_MODULES = frozenset({"models", "repository"})
# SQL constructors a service must leave to its repository.
SQL_CALLS = frozenset({"select", "update", "insert", "delete", "text", "exists"})
# Methods that run a statement, add a condition to one handed over by a repository, or load
# a row again (refresh).
SQL_METHODS = frozenset(
    {"execute", "scalar", "scalars", "stream", "stream_scalars", "where", "refresh"}
)
# Every feature with a service: its service composes repository calls only (derived from the
# folders, so that a new feature is checked from its first commit).
SERVICE_FEATURES = tuple(
    sorted(p.parent.name for p in APP.glob("*/service.py") if p.parent.name not in NOT_FEATURES)
)


def _features() -> frozenset[str]:
    return frozenset(
        p.name for p in APP.iterdir() if (p / "__init__.py").exists() and p.name not in NOT_FEATURES
    )


def _module_name(path: Path) -> str:
    return ".".join(("app", *path.relative_to(APP).with_suffix("").parts))


def _imports(tree: ast.AST) -> Iterator[str]:
    """Every ``app.*`` module a module imports, ``from app.x import y`` as ``app.x.y``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("app."))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app."):
            module = str(node.module)
            if module.count(".") == 1:
                yield from (f"{module}.{a.name}" for a in node.names)
            else:
                yield module


def _feature_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) >= 3 and parts[1] in _features() else None


def _cross_feature_imports() -> Iterator[tuple[str, str]]:
    """(importer, imported module of another feature) for every module inside a feature."""
    for path in sorted(APP.rglob("*.py")):
        importer = _module_name(path)
        own = _feature_of(importer)
        if own is None:
            continue
        for imported in _imports(ast.parse(path.read_text())):
            feature = _feature_of(imported)
            if feature is not None and feature != own:
                yield importer, ".".join(imported.split(".")[:3])


def _reaches_data(module: str) -> bool:
    """Whether a module queries or reaches a feature's data: it uses SQLAlchemy, or imports
    its own feature's models, repository or service."""
    path = APP.joinpath(*module.split(".")[1:]).with_suffix(".py")
    if not path.exists():
        return False  # a package's __init__
    tree = ast.parse(path.read_text())
    own = _feature_of(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names]
            if any(n == "sqlalchemy" or n.startswith("sqlalchemy.") for n in names):
                return True
    return any(
        _feature_of(i) == own and i.split(".")[2] in {"models", "repository", "service"}
        for i in _imports(tree)
    )


def test_the_wiring_modules_exist() -> None:
    for name in WIRING:
        assert (APP / name).exists(), name


def test_no_feature_imports_another_features_models_or_repository() -> None:
    found = {
        (importer, imported)
        for importer, imported in _cross_feature_imports()
        if imported.split(".")[2] in DATA_MODULES
    }
    unexpected = found - ALLOWED.keys()
    assert not unexpected, f"reach another feature through its service: {sorted(unexpected)}"


def test_services_are_the_only_cross_feature_entry_points() -> None:
    """Another feature's vocabulary (schemas, states, pure rules) may be shared; anything
    that reaches its data must be its service."""
    found = {
        (importer, imported)
        for importer, imported in _cross_feature_imports()
        if imported.split(".")[2] != "service" and _reaches_data(imported)
    }
    unexpected = found - ALLOWED.keys()
    assert not unexpected, f"call the owning feature's service instead: {sorted(unexpected)}"


def test_every_allowed_exception_is_still_needed() -> None:
    """An exception that nothing uses any more is removed from the list."""
    used = set(_cross_feature_imports())
    assert not (ALLOWED.keys() - used), sorted(ALLOWED.keys() - used)


def _sql_built(tree: ast.AST) -> set[str]:
    """The SQL a module builds or runs itself: SQLAlchemy's constructors, called or imported,
    and the methods that run a statement or add a condition to one."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            found |= {node.func.id} & SQL_CALLS
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            found |= {f".{node.func.attr}()"} if node.func.attr in SQL_METHODS else set()
        elif isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
            found |= {f"import {a.name}" for a in node.names if a.name in SQL_CALLS}
    return found


def test_every_feature_with_a_service_is_checked() -> None:
    assert {"referrals", "claims", "jobs", "idempotency", "audit", "sandbox"} <= set(
        SERVICE_FEATURES
    )
    assert set(SERVICE_FEATURES) <= _features()


@pytest.mark.parametrize("feature", SERVICE_FEATURES)
def test_services_compose_repository_calls_and_build_no_sql(feature: str) -> None:
    """Every query, tenancy filters included, lives in a repository (docs: "Every query in
    a repository")."""
    found = _sql_built(ast.parse((APP / feature / "service.py").read_text()))
    assert not found, f"{feature}/service.py builds SQL; move it to its repository: {found}"


def test_the_check_sees_sql_built_in_a_service() -> None:
    """The SQL check itself: a constructor, its import, a statement run or narrowed."""
    tree = ast.parse(
        "from sqlalchemy import select, or_\n"
        "async def f(session, statement):\n"
        "    await session.scalars(select(Referral))\n"
        "    return statement.where(Referral.id == 1)\n"
    )
    assert _sql_built(tree) == {"select", "import select", ".scalars()", ".where()"}
    calls = "async def f(session):\n    return await repository.page_of(session, limit=5)\n"
    assert not _sql_built(ast.parse(calls))


def test_the_check_sees_a_forbidden_import() -> None:
    """The walker itself: a module reaching another feature's models is found."""
    tree = ast.parse("from app.referrals.models import Referral\nimport app.claims.repository")
    assert set(_imports(tree)) == {"app.referrals.models", "app.claims.repository"}
    assert _reaches_data("app.claims.repository")
    assert not _reaches_data("app.claims.states")
