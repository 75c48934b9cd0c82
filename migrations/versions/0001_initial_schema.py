"""Initial schema and the programme catalogue (domain.md §7)

Revision ID: 0001
Revises:
Create Date: 2026-11-23 10:33:55.924711
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# domain.md §7. Where the guidance is silent the value is our reading, marked so there.
PROGRAMMES = [
    {
        "code": "JFS",
        "name": "Job Finding Support",
        "acknowledge_working_days": 2,  # JFS 3.07
        "initial_meeting_working_days": 8,  # CSS 1, JFS 7.44
        "outcome_recorded_working_days": 10,  # CSS 2, JFS 7.44
        "auto_dna_days": 30,  # JFS 3.40
        "allotted_days": 30,  # JFS 5.08
        "max_re_referrals": 1,  # JFS 3.42, 5.16
        "funds_service_fee": True,  # JFS 6.01
        "funds_attachment": False,
        "funds_job_outcome": False,
        "funds_sustainment": False,
        "job_outcome_min_hours": None,
    },
    {
        "code": "SES",
        "name": "Specialist Employability Support",
        "acknowledge_working_days": 2,  # reading
        "initial_meeting_working_days": 20,  # SES 3.07 start target
        "outcome_recorded_working_days": 20,
        "auto_dna_days": 30,
        "allotted_days": 365,  # reading
        "max_re_referrals": 0,  # SES 3.18
        "funds_service_fee": False,
        "funds_attachment": True,
        "funds_job_outcome": True,
        "funds_sustainment": True,
        "job_outcome_min_hours": 16,
    },
    {
        "code": "CWP",
        "name": "Community Work Placements",
        "acknowledge_working_days": 2,  # reading
        "initial_meeting_working_days": None,
        "outcome_recorded_working_days": None,
        "auto_dna_days": 30,
        "allotted_days": 210,  # 30 weeks, HTW 75
        "max_re_referrals": 0,  # only someone who never started, HTW 89, 158
        "funds_service_fee": False,
        "funds_attachment": True,
        "funds_job_outcome": False,
        "funds_sustainment": False,
        "job_outcome_min_hours": None,
    },
    {
        "code": "FND",
        "name": "Flexible New Deal",
        "acknowledge_working_days": 2,  # reading
        "initial_meeting_working_days": None,
        "outcome_recorded_working_days": None,
        "auto_dna_days": 30,
        "allotted_days": 364,  # 52 weeks, FND 21.22
        "max_re_referrals": 1,  # reading
        "funds_service_fee": False,
        "funds_attachment": True,
        "funds_job_outcome": True,
        "funds_sustainment": True,
        "job_outcome_min_hours": 16,  # PRaP 11
    },
]


def upgrade() -> None:
    op.create_table('idempotency_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('caller', sa.String(length=300), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_headers', sa.JSON(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('caller', 'key', name=op.f('uq_idempotency_records_caller_key'))
    )
    op.create_index('ix_idempotency_records_expires_at', 'idempotency_records', ['expires_at'], unique=False)

    op.create_table('programmes',
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('acknowledge_working_days', sa.Integer(), nullable=False),
    sa.Column('initial_meeting_working_days', sa.Integer(), nullable=True),
    sa.Column('outcome_recorded_working_days', sa.Integer(), nullable=True),
    sa.Column('auto_dna_days', sa.Integer(), nullable=False),
    sa.Column('allotted_days', sa.Integer(), nullable=False),
    sa.Column('max_re_referrals', sa.Integer(), nullable=False),
    sa.Column('funds_service_fee', sa.Boolean(), nullable=False),
    sa.Column('funds_attachment', sa.Boolean(), nullable=False),
    sa.Column('funds_job_outcome', sa.Boolean(), nullable=False),
    sa.Column('funds_sustainment', sa.Boolean(), nullable=False),
    sa.Column('job_outcome_min_hours', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_programmes'))
    )
    op.create_table('sandbox_clock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('now', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_clock'))
    )
    op.create_table('contracts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('programme', sa.String(length=8), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('monthly_service_fee_pence', sa.BigInteger(), nullable=False),
    sa.Column('attachment_fee_pence', sa.BigInteger(), nullable=True),
    sa.Column('job_outcome_fee_pence', sa.BigInteger(), nullable=True),
    sa.Column('sustainment_fee_pence', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_date >= start_date', name=op.f('ck_contracts_period')),
    sa.CheckConstraint('monthly_service_fee_pence >= 0', name=op.f('ck_contracts_fee_not_negative')),
    sa.ForeignKeyConstraint(['programme'], ['programmes.code'], name=op.f('fk_contracts_programme_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts'))
    )
    op.create_index('ix_contracts_provider_programme', 'contracts', ['provider_id', 'programme', 'start_date'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.String(length=26), nullable=False),
    sa.Column('programme', sa.String(length=8), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('contract_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('nino', sa.String(length=9), nullable=False),
    sa.Column('referral_date', sa.Date(), nullable=False),
    sa.Column('acknowledgement_due', sa.Date(), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('initial_meeting_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('end_code', sa.Integer(), nullable=True),
    sa.Column('last_engagement_date', sa.Date(), nullable=True),
    sa.Column('policy_reference', sa.String(length=100), nullable=True),
    sa.Column('provider_reference', sa.String(length=100), nullable=True),
    sa.Column('rejection_reason', sa.String(length=16), nullable=True),
    sa.Column('cancellation_reason', sa.String(length=16), nullable=True),
    sa.Column('closed_by', sa.String(length=16), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_backed_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('re_referral', sa.Boolean(), nullable=False),
    sa.Column('mappa', sa.Boolean(), nullable=False),
    sa.Column('participant', sa.JSON(), nullable=False),
    sa.Column('markers', sa.JSON(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_referrals_contract_id_contracts')),
    sa.ForeignKeyConstraint(['programme'], ['programmes.code'], name=op.f('fk_referrals_programme_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    op.create_index('ix_referrals_nino_programme', 'referrals', ['nino', 'programme'], unique=False)
    open_statuses = sa.text("status IN ('referred', 'acknowledged', 'accepted', 'started')")
    op.create_index(
        'uq_referrals_open_participation',
        'referrals',
        ['nino', 'programme'],
        unique=True,
        sqlite_where=open_statuses,
        postgresql_where=open_statuses,
    )
    op.create_index('ix_referrals_provider_id_id', 'referrals', ['provider_id', 'id'], unique=False)
    op.create_index('ix_referrals_status_referral_date', 'referrals', ['status', 'referral_date'], unique=False)

    op.create_table('referral_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('txid', sa.BigInteger(), nullable=False),
    sa.Column('referral_id', sa.String(length=26), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_sub', sa.String(length=200), nullable=False),
    sa.Column('actor_role', sa.String(length=16), nullable=False),
    sa.Column('actor_provider_id', sa.String(length=40), nullable=True),
    sa.Column('referral_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_events_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_events'))
    )
    op.create_index('ix_referral_events_provider_id_txid_id', 'referral_events', ['provider_id', 'txid', 'id'], unique=False)
    op.create_index('ix_referral_events_referral_id_id', 'referral_events', ['referral_id', 'id'], unique=False)
    op.create_index('ix_referral_events_txid_id', 'referral_events', ['txid', 'id'], unique=False)


    programmes = sa.table(
        "programmes",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("acknowledge_working_days", sa.Integer),
        sa.column("initial_meeting_working_days", sa.Integer),
        sa.column("outcome_recorded_working_days", sa.Integer),
        sa.column("auto_dna_days", sa.Integer),
        sa.column("allotted_days", sa.Integer),
        sa.column("max_re_referrals", sa.Integer),
        sa.column("funds_service_fee", sa.Boolean),
        sa.column("funds_attachment", sa.Boolean),
        sa.column("funds_job_outcome", sa.Boolean),
        sa.column("funds_sustainment", sa.Boolean),
        sa.column("job_outcome_min_hours", sa.Integer),
    )
    op.bulk_insert(programmes, PROGRAMMES)


def downgrade() -> None:
    op.drop_index('ix_referral_events_txid_id', table_name='referral_events')
    op.drop_index('ix_referral_events_referral_id_id', table_name='referral_events')
    op.drop_index('ix_referral_events_provider_id_txid_id', table_name='referral_events')

    op.drop_table('referral_events')
    op.drop_index('ix_referrals_status_referral_date', table_name='referrals')
    op.drop_index('ix_referrals_provider_id_id', table_name='referrals')
    op.drop_index('ix_referrals_nino_programme', table_name='referrals')
    op.drop_index('uq_referrals_open_participation', table_name='referrals')

    op.drop_table('referrals')
    op.drop_index('ix_contracts_provider_programme', table_name='contracts')

    op.drop_table('contracts')
    op.drop_table('sandbox_clock')
    op.drop_table('programmes')
    op.drop_index('ix_idempotency_records_expires_at', table_name='idempotency_records')

    op.drop_table('idempotency_records')
