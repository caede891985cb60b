"""requests from Slack already acted on, for replays

Revision ID: 0014_seen_requests
Revises: 0013_recorded_base
Create Date: 2026-12-06

A signed request replayed within Slack's 5-minute window (a button press, a form, a
command) used to be applied and audited again. Each is now claimed by the SHA-256 of an
idempotency key from its payload; the primary key makes every replica agree on which came
first. Rows are kept an hour (seen_at indexed for their removal).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014_seen_requests'
down_revision = '0013_recorded_base'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'seen_request',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    with op.batch_alter_table('seen_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seen_request_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('seen_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seen_request_seen_at'))
    op.drop_table('seen_request')
