"""Programme parameters read again from the guidance; fees in arrears and recoveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:45:00

* ``programmes.allotted_from``: CWP's allotted time runs from the original referral date
  (HTW 115, 159, 162), the others' from the start date (JFS 5.08); existing started CWP
  referrals get their ``auto_end_on`` recomputed from it.
* ``programmes.exclusive``: no referral to other provision while one is open (HTW 70).
* ``programmes.max_duration_working_days``: JFS 5.16, 1.23, the maximum 20-day duration.
* ``payment_lines.figures``: the CSS figures a fee was paid on (JFS 6.06, 6.09);
  recovery lines, one per claim (a paid attachment claim voided by a back-out).
* ``payment_runs.held_fees``: the fees a run held because their month was not final yet.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('programmes') as batch:
        batch.add_column(sa.Column('allotted_from', sa.String(length=16), server_default=sa.text("'start_date'"), nullable=False))
        batch.add_column(sa.Column('exclusive', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('max_duration_working_days', sa.Integer(), nullable=True))
    programmes = sa.table(
        'programmes',
        sa.column('code', sa.String),
        sa.column('allotted_from', sa.String),
        sa.column('exclusive', sa.Boolean),
        sa.column('max_duration_working_days', sa.Integer),
    )
    # HTW 115, 159, 162: "the expected end date which is 30 weeks after the original referral
    # date"; HTW 70: "claimants allocated to CWP must no longer be considered for referral to
    # other provision".
    op.execute(
        programmes.update()
        .where(programmes.c.code == 'CWP')
        .values(allotted_from='referral_date', exclusive=True)
    )
    # JFS 5.16, 1.23: "has previously reached the maximum 20-day duration".
    op.execute(
        programmes.update()
        .where(programmes.c.code == 'JFS')
        .values(max_duration_working_days=20)
    )
    days = '(SELECT p.allotted_days FROM programmes p WHERE p.code = referrals.programme)'
    if op.get_bind().dialect.name == 'postgresql':
        due = f'referral_date + {days}'
    else:
        due = f"date(referral_date, '+' || {days} || ' days')"
    op.execute(
        f"UPDATE referrals SET auto_end_on = {due} "
        "WHERE status = 'started' AND programme IN "
        "(SELECT code FROM programmes WHERE allotted_from = 'referral_date')"
    )

    with op.batch_alter_table('payment_lines') as batch:
        batch.add_column(sa.Column('figures', sa.JSON(), nullable=True))
    op.create_index(
        'uq_payment_lines_recovery_claim_id', 'payment_lines', ['claim_id'], unique=True,
        sqlite_where=sa.text("kind = 'recovery'"), postgresql_where=sa.text("kind = 'recovery'"),
    )
    with op.batch_alter_table('payment_runs') as batch:
        batch.add_column(sa.Column('held_fees', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment_runs') as batch:
        batch.drop_column('held_fees')
    op.drop_index('uq_payment_lines_recovery_claim_id', table_name='payment_lines')
    with op.batch_alter_table('payment_lines') as batch:
        batch.drop_column('figures')
    with op.batch_alter_table('programmes') as batch:
        batch.drop_column('max_duration_working_days')
        batch.drop_column('exclusive')
        batch.drop_column('allotted_from')
