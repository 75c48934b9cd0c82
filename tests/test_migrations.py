"""Migrations build the schema the models describe (style.md, Migrations)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.cli import ROOT


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    command.check(_config(database_url))  # raises when autogenerate would add anything


def test_upgrade_is_idempotent(database_url: str) -> None:
    command.upgrade(_config(database_url), "head")
    command.check(_config(database_url))
