"""Migrations build the schema the models describe (style.md, Migrations)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
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


def test_0005_recomputes_cwp_allotted_time_from_referral_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTW 115, 159, 162: CWP's 30 weeks run from the original referral date. Migration 0005
    makes that a programme parameter and recomputes `auto_end_on` of started CWP referrals
    made under the old reading (start + 210 days), leaving other programmes and closed
    referrals alone. On a fresh database of its own (SQLite), migrated to 0004 first."""
    # Migration 0006 digests the NINOs of the referrals it finds, so it needs the key.
    monkeypatch.setenv("PRAP_NINO_DIGEST_KEY", "test-nino-digest-key")
    database = tmp_path / "before-0005.db"
    config = _config(f"sqlite+aiosqlite:///{database}")
    command.upgrade(config, "0004")
    rows = [
        # id, programme, status, start date, auto_end_on as the old reading set it
        ("CWPSTARTED", "CWP", "started", "2026-03-09", "2026-10-05"),
        ("CWPENDED00", "CWP", "ended", "2026-03-09", "2026-10-05"),
        ("JFSSTARTED", "JFS", "started", "2026-03-09", "2026-04-08"),
    ]
    with sqlite3.connect(database) as connection:
        for code in ("CWP", "JFS"):
            connection.execute(
                "INSERT INTO contracts (id, provider_id, programme, start_date, end_date, "
                "monthly_service_fee_pence, created_at) VALUES (?, 'P100', ?, '2020-01-01', "
                "'2030-12-31', 0, '2026-01-01 00:00:00')",
                (f"C-{code}", code),
            )
        for i, (rid, code, status, start, auto_end) in enumerate(rows):
            connection.execute(
                "INSERT INTO referrals (id, programme, provider_id, contract_id, status, nino, "
                "referral_date, acknowledgement_due, start_date, auto_dna_on, auto_end_on, "
                "re_referral, mappa, participant, markers, details, created_at, updated_at) "
                "VALUES (?, ?, 'P100', ?, ?, ?, '2026-03-02', '2026-03-03', ?, '2026-04-01', ?, "
                "0, 0, '{}', '{}', '{}', '2026-03-02 10:00:00', '2026-03-02 10:00:00')",
                (rid, code, f"C-{code}", status, f"AB{i:06d}C", start, auto_end),
            )
    command.upgrade(config, "head")
    with sqlite3.connect(database) as connection:
        after = dict(connection.execute("SELECT id, auto_end_on FROM referrals").fetchall())
        allotted_from = dict(connection.execute("SELECT code, allotted_from FROM programmes"))
    assert after == {
        "CWPSTARTED": "2026-09-28",  # 2 March 2026 + 210 days
        "CWPENDED00": "2026-10-05",
        "JFSSTARTED": "2026-04-08",
    }
    assert allotted_from["CWP"] == "referral_date"
    assert allotted_from["JFS"] == "start_date"
