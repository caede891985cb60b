"""values recorded through the bot (provenance, so an import never erases them)

Revision ID: 0007_recorded_values
Revises: 0006
Create Date: 2026-11-26 21:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007_recorded_values'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recorded_value',
    sa.Column('target_table', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('row_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('target_column', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('slack_user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('target_table', 'row_key', 'target_column')
    )


def downgrade() -> None:
    op.drop_table('recorded_value')
