"""meeting date indexes for windowed loading

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # load_records(since=...) reads meetings from a date on, and each case's last earlier
    # meeting; without these both scan the whole table.
    op.create_index('ix_meeting_date', 'meeting', ['date'])
    op.create_index('ix_meeting_ref_date', 'meeting', ['ref', 'date'])


def downgrade() -> None:
    op.drop_index('ix_meeting_ref_date', table_name='meeting')
    op.drop_index('ix_meeting_date', table_name='meeting')
