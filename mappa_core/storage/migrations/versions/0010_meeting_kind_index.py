"""an index for the initial Level 3 community meetings a windowed load reads

Revision ID: 0010_meeting_kind_index
Revises: 0009_custody_history
Create Date: 2026-11-27

load_records(since=...) reads every case's initial Level 3 community meeting from before
the window (pre-release deadlines hang on it). Through the date index alone that read
visits every older meeting: a third of a second of the national App Home at 100,000
individuals on SQLite; with this index, 10 ms.
"""
from alembic import op


revision = '0010_meeting_kind_index'
down_revision = '0009_custody_history'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_meeting_kind_level_setting_date', 'meeting',
                    ['kind', 'level', 'setting', 'date'])


def downgrade() -> None:
    op.drop_index('ix_meeting_kind_level_setting_date', table_name='meeting')
