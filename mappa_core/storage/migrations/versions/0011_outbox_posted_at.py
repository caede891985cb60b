"""where a Slack notice was posted

Revision ID: 0011_outbox_posted_at
Revises: 0010_meeting_kind_index
Create Date: 2026-11-27

A button pressed on a notice redraws it with chat.update at the channel and ts the
interaction's payload names; the outbox now keeps where each Slack notice was posted
(chat.postMessage's channel and ts) so that the bot draws a notice only over itself.
Existing rows get none (unknown): a button on a message sent before this is answered, and
its message is left as it is.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011_outbox_posted_at'
down_revision = '0010_meeting_kind_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('posted_channel',
                                      sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('posted_ts',
                                      sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('posted_ts')
        batch_op.drop_column('posted_channel')
