"""change stamp: one row bumped with every import and button, for the answer caches

Revision ID: 0008_change_stamp
Revises: 0007_recorded_values
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_change_stamp'
down_revision = '0007_recorded_values'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'change_stamp',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(table, [{'id': 1, 'version': 0}])


def downgrade() -> None:
    op.drop_table('change_stamp')
