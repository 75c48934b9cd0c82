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
# The features whose services compose repository calls only. The others are being
# rewritten in this wave by their owners (referrals, jobs, idempotency, audit, sandbox).
REPOSITORY_FEATURES = (
    "claims",
    "contracts",
    "credits",
    "payments",
    "privacy",
    "programmes",
    "webhooks",
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


@pytest.mark.parametrize("feature", REPOSITORY_FEATURES)
def test_services_compose_repository_calls_and_build_no_sql(feature: str) -> None:
    """Every query, tenancy filters included, lives in a repository (docs: "Every query in
    a repository")."""
    tree = ast.parse((APP / feature / "service.py").read_text())
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not (calls & SQL_CALLS), sorted(calls & SQL_CALLS)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
            assert not ({a.name for a in node.names} & SQL_CALLS), feature


def test_the_check_sees_a_forbidden_import() -> None:
    """The walker itself: a module reaching another feature's models is found."""
    tree = ast.parse("from app.referrals.models import Referral\nimport app.claims.repository")
    assert set(_imports(tree)) == {"app.referrals.models", "app.claims.repository"}
    assert _reaches_data("app.claims.repository")
    assert not _reaches_data("app.claims.states")
