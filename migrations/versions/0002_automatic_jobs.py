"""Automatic jobs: deadline columns with partial indexes, and the job-run log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_DNA_STATUSES = "status IN ('referred', 'acknowledged', 'accepted')"
AUTO_END_STATUSES = "status = 'started'"


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("auto_dna_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("auto_end_on", sa.Date(), nullable=True))
    # Backfill from the programme parameters, then make auto_dna_on mandatory.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE referrals r SET auto_dna_on = r.referral_date + p.auto_dna_days,"
            " auto_end_on = CASE WHEN r.start_date IS NULL THEN NULL"
            " ELSE r.start_date + p.allotted_days END"
            " FROM programmes p WHERE p.code = r.programme"
        )
    else:
        op.execute(
            "UPDATE referrals SET"
            " auto_dna_on = date(referral_date, '+' || (SELECT auto_dna_days FROM programmes"
            " WHERE code = referrals.programme) || ' days'),"
            " auto_end_on = CASE WHEN start_date IS NULL THEN NULL ELSE"
            " date(start_date, '+' || (SELECT allotted_days FROM programmes"
            " WHERE code = referrals.programme) || ' days') END"
        )
    with op.batch_alter_table("referrals") as batch:
        batch.alter_column("auto_dna_on", existing_type=sa.Date(), nullable=False)
    op.create_index(
        "ix_referrals_auto_dna_due",
        "referrals",
        ["auto_dna_on", "id"],
        sqlite_where=sa.text(AUTO_DNA_STATUSES),
        postgresql_where=sa.text(AUTO_DNA_STATUSES),
    )
    op.create_index(
        "ix_referrals_auto_end_due",
        "referrals",
        ["auto_end_on", "id"],
        sqlite_where=sa.text(AUTO_END_STATUSES),
        postgresql_where=sa.text(AUTO_END_STATUSES),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
        sa.Column("job", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_job_started_at", "job_runs", ["job", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_job_started_at", table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_index("ix_referrals_auto_end_due", table_name="referrals")
    op.drop_index("ix_referrals_auto_dna_due", table_name="referrals")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("auto_end_on")
        batch.drop_column("auto_dna_on")
