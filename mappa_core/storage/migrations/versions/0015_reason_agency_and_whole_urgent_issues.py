"""the agency behind a reason, and an urgent issue kept whole

Revision ID: 0015_reason_agency_whole_issue
Revises: 0014_seen_requests
Create Date: 2026-12-07

`item_note.agency`: the reason form lets the chair name the agency behind a late review
(optional); the review exceptions then group by agency too. Existing notes name none.

`urgent_issue.text` becomes unbounded text: an issue longer than one Slack message is kept
and sent whole, never refused (it was at most 3,000 characters). `urgent_issue.agencies`
(the agencies the raiser chose to e-mail it to, ';'-separated) is unbounded too: any number
may be chosen (it was at most 500 characters).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015_reason_agency_whole_issue'
down_revision = '0014_seen_requests'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('item_note', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
    with op.batch_alter_table('urgent_issue', schema=None) as batch_op:
        batch_op.alter_column('text', existing_type=sqlmodel.sql.sqltypes.AutoString(length=3000),
                              type_=sa.Text(), existing_nullable=False)
        batch_op.alter_column('agencies', existing_type=sqlmodel.sql.sqltypes.AutoString(length=500),
                              type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('urgent_issue', schema=None) as batch_op:
        batch_op.alter_column('agencies', existing_type=sa.Text(),
                              type_=sqlmodel.sql.sqltypes.AutoString(length=500),
                              existing_nullable=False)
        batch_op.alter_column('text', existing_type=sa.Text(),
                              type_=sqlmodel.sql.sqltypes.AutoString(length=3000),
                              existing_nullable=False)
    with op.batch_alter_table('item_note', schema=None) as batch_op:
        batch_op.drop_column('agency')
