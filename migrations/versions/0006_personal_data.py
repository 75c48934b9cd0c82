"""Personal data over its life: NINO digest, erasure, retention, read audit (domain.md §10)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:40:00
"""

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('referred', 'acknowledged', 'accepted', 'started')"


def _digest_key() -> str:
    from app.core.settings import Settings

    keys = Settings().nino_digest_keys
    if not keys:
        raise RuntimeError("set PRAP_NINO_DIGEST_KEY before migrating: referrals need digests")
    return keys[0]


def upgrade() -> None:
    op.create_table('referral_reads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('read_id', sa.String(length=26), nullable=False),
    sa.Column('referral_id', sa.String(length=26), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_sub', sa.String(length=200), nullable=False),
    sa.Column('actor_role', sa.String(length=16), nullable=False),
    sa.Column('actor_provider_id', sa.String(length=40), nullable=True),
    sa.Column('operation', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_reads'))
    )
    op.create_index('ix_referral_reads_read_id_id', 'referral_reads', ['read_id', 'id'], unique=False)
    op.create_index('ix_referral_reads_referral_id_read_id', 'referral_reads', ['referral_id', 'read_id'], unique=False)

    op.create_table('idempotency_referrals',
    sa.Column('record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('referral_id', sa.String(length=26), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['idempotency_records.id'], name=op.f('fk_idempotency_referrals_record_id_idempotency_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('record_id', 'referral_id', name=op.f('pk_idempotency_referrals'))
    )
    op.create_index('ix_idempotency_referrals_referral_id', 'idempotency_referrals', ['referral_id'], unique=False)
    # Answers stored before sealing held personal data in clear: they last 24 hours anyway.
    op.execute("DELETE FROM idempotency_records")

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('records_retention_end_date', sa.Date(), nullable=True))

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nino_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, nino FROM referrals")).all()
    if rows:
        key = _digest_key().encode()
        connection.execute(
            sa.text("UPDATE referrals SET nino_digest = :digest WHERE id = :id"),
            [
                {"id": row.id, "digest": hmac.new(key, row.nino.encode(), hashlib.sha256).hexdigest()}
                for row in rows
            ],
        )

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.alter_column('nino_digest', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('mappa', existing_type=sa.Boolean(), nullable=True)
        batch_op.alter_column('participant', existing_type=sa.JSON(), nullable=True)
        batch_op.alter_column('markers', existing_type=sa.JSON(), nullable=True)
        batch_op.alter_column('details', existing_type=sa.JSON(), nullable=True)
        batch_op.drop_index('ix_referrals_nino_programme')
        batch_op.drop_index('uq_referrals_open_participation')
        batch_op.create_index('uq_referrals_open_participation', ['nino_digest', 'programme'], unique=True, sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('ix_referrals_nino_digest_programme', ['nino_digest', 'programme'], unique=False)
        # The NINO itself now lives only in the participant, and goes with it on erasure.
        batch_op.drop_column('nino')


def downgrade() -> None:
    # Erased referrals have no NINO to give back: they get an empty one.
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nino', sa.String(length=9), nullable=False, server_default=''))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, participant FROM referrals WHERE participant IS NOT NULL")).all()
    import json

    updates = []
    for row in rows:
        participant = row.participant if isinstance(row.participant, dict) else json.loads(row.participant)
        updates.append({"id": row.id, "nino": participant["nino"]})
    if updates:
        connection.execute(sa.text("UPDATE referrals SET nino = :nino WHERE id = :id"), updates)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_nino_digest_programme')
        batch_op.drop_index('uq_referrals_open_participation')
        batch_op.create_index('uq_referrals_open_participation', ['nino', 'programme'], unique=True, sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.create_index('ix_referrals_nino_programme', ['nino', 'programme'], unique=False)
        batch_op.drop_column('erased_at')
        batch_op.drop_column('nino_digest')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_column('records_retention_end_date')
    op.drop_table('idempotency_referrals')
    op.drop_table('referral_reads')
