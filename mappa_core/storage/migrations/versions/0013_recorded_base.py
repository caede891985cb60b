"""a value recorded through the bot keeps the export's value it replaced (its base)

Revision ID: 0013_recorded_base
Revises: 0012_import_references
Create Date: 2026-12-06

An import used to keep a recorded value only where the export's cell was blank; ViSOR and
meeting spreadsheets write a contribution not received as `no`, so the next morning's
import put every "Contribution received" back. Now the value the export had when the
person recorded theirs is kept beside it: while the export still says that, the recorded
value stands; once the export says something else, the export wins. Rows recorded before
this have no base (blank): the rule they were recorded under (a blank cell keeps them, any
other value replaces them) goes on applying to them.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013_recorded_base'
down_revision = '0012_import_references'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recorded_value', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('recorded_value', schema=None) as batch_op:
        batch_op.drop_column('base')
