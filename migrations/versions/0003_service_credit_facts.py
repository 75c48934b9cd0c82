"""Service credits: CSS deadlines and the day an outcome was recorded, per referral

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("initial_meeting_due", sa.Date(), nullable=True))
        batch.add_column(sa.Column("outcome_recorded_due", sa.Date(), nullable=True))
        batch.add_column(sa.Column("outcome_recorded_on", sa.Date(), nullable=True))
    op.create_index(
        "ix_referrals_contract_id_referral_date", "referrals", ["contract_id", "referral_date"]
    )
    # Referrals recorded before this revision have no CSS facts: the service had none live.


def downgrade() -> None:
    op.drop_index("ix_referrals_contract_id_referral_date", table_name="referrals")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("outcome_recorded_on")
        batch.drop_column("outcome_recorded_due")
        batch.drop_column("initial_meeting_due")
