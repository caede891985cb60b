"""custody history and level_from

Revision ID: 0009_custody_history
Revises: 0008_change_stamp
Create Date: 2026-11-26

Issue 14: the review chains start at `individual.level_from` (the entry point to Level
2/3) and pause in every custody period, past ones included (`custody_period`, from
custody.csv and the periods the importer keeps when an export moves on). Existing rows
get no level_from (unknown) and no past periods: their answers are those of before.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009_custody_history'
down_revision = '0008_change_stamp'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('individual', schema=None) as batch_op:
        batch_op.add_column(sa.Column('level_from', sa.Date(), nullable=True))
    op.create_table(
        'custody_period',
        sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('custody_from', sa.Date(), nullable=False),
        sa.Column('release_date', sa.Date(), nullable=False),
        sa.Column('release_level', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['ref'], ['individual.ref'], ),
        sa.PrimaryKeyConstraint('ref', 'custody_from'),
    )


def downgrade() -> None:
    op.drop_table('custody_period')
    with op.batch_alter_table('individual', schema=None) as batch_op:
        batch_op.drop_column('level_from')
