"""Claims, their history, payment runs and lines (domain.md §8)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:52:25.570752
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payment_runs',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('total_pence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_runs'))
    )
    op.create_index('ix_payment_runs_month', 'payment_runs', ['month'], unique=False)

    op.create_table('claims',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('referral_id', sa.String(length=26), nullable=False),
    sa.Column('contract_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('programme', sa.String(length=8), nullable=False),
    sa.Column('claim_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.Column('job_start_date', sa.Date(), nullable=True),
    sa.Column('hours_per_week', sa.Integer(), nullable=True),
    sa.Column('basis', sa.String(length=20), nullable=True),
    sa.Column('weeks_in_work_last_30', sa.Integer(), nullable=True),
    sa.Column('evidence_reference', sa.String(length=100), nullable=True),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.Column('rejection_reason', sa.String(length=2000), nullable=True),
    sa.Column('payment_run_id', sa.String(length=26), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('validated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_claims_contract_id_contracts')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_claims_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims'))
    )
    op.create_index('ix_claims_provider_id_id', 'claims', ['provider_id', 'id'], unique=False)
    op.create_index('ix_claims_status', 'claims', ['status'], unique=False)
    op.create_index('ix_claims_payment_run_id', 'claims', ['payment_run_id'], unique=False)
    op.create_index('uq_claims_live_referral_type', 'claims', ['referral_id', 'claim_type'], unique=True, sqlite_where=sa.text("status IN ('submitted', 'validated', 'paid')"), postgresql_where=sa.text("status IN ('submitted', 'validated', 'paid')"))

    op.create_table('claim_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('claim_id', sa.String(length=26), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_sub', sa.String(length=200), nullable=False),
    sa.Column('actor_role', sa.String(length=16), nullable=False),
    sa.Column('actor_provider_id', sa.String(length=40), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_events_claim_id_claims')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_events'))
    )
    op.create_index('ix_claim_events_claim_id_id', 'claim_events', ['claim_id', 'id'], unique=False)

    op.create_table('payment_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=26), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('claim_id', sa.String(length=26), nullable=True),
    sa.Column('contract_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.Column('deduction_pence', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_payment_lines_claim_id_claims')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_payment_lines_contract_id_contracts')),
    sa.ForeignKeyConstraint(['run_id'], ['payment_runs.id'], name=op.f('fk_payment_lines_run_id_payment_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_lines'))
    )
    op.create_index('ix_payment_lines_run_id_id', 'payment_lines', ['run_id', 'id'], unique=False)
    op.create_index('uq_payment_lines_claim_id', 'payment_lines', ['claim_id'], unique=True, sqlite_where=sa.text("kind = 'claim'"), postgresql_where=sa.text("kind = 'claim'"))
    op.create_index('uq_payment_lines_contract_month', 'payment_lines', ['contract_id', 'month'], unique=True, sqlite_where=sa.text("kind = 'service_fee'"), postgresql_where=sa.text("kind = 'service_fee'"))



def downgrade() -> None:
    op.drop_index('uq_payment_lines_contract_month', table_name='payment_lines')
    op.drop_index('uq_payment_lines_claim_id', table_name='payment_lines')
    op.drop_index('ix_payment_lines_run_id_id', table_name='payment_lines')

    op.drop_table('payment_lines')
    op.drop_index('ix_claim_events_claim_id_id', table_name='claim_events')

    op.drop_table('claim_events')
    op.drop_index('uq_claims_live_referral_type', table_name='claims')
    op.drop_index('ix_claims_status', table_name='claims')
    op.drop_index('ix_claims_payment_run_id', table_name='claims')
    op.drop_index('ix_claims_provider_id_id', table_name='claims')

    op.drop_table('claims')
    op.drop_index('ix_payment_runs_month', table_name='payment_runs')

    op.drop_table('payment_runs')
