"""the import tables' references are checked by the importer, not by foreign keys

Revision ID: 0012_import_references
Revises: 0011_outbox_posted_at
Create Date: 2026-12-06

A meeting, custody period or event names an individual, an invitation a meeting and an
agency. The importer is the only writer of these keys, and it refuses (and writes nothing
of) an import whose reference names neither a row of its files nor a stored one; nothing
deletes an individual, meeting or agency. The foreign keys checked the same again row by
row: on PostgreSQL a trigger per row that locks the row it names, which made COPY of
427,000 invitations 3.6 times slower (14.1 s against 3.9 s) and a 1,000,000-case import
impossible within its minute. The data does not change; the downgrade puts the keys back.
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_import_references'
down_revision = '0011_outbox_posted_at'
branch_labels = None
depends_on = None

# table -> [(column, the table it names, its key)]
REFERENCES = {
    "custody_period": [("ref", "individual", "ref")],
    "meeting": [("ref", "individual", "ref")],
    "invitation": [("meeting_id", "meeting", "meeting_id"), ("agency", "agency", "agency")],
    "event": [("ref", "individual", "ref")],
}
# SQLite's keys have no names: batch mode names them by this convention to drop them.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    for table, refs in REFERENCES.items():
        if bind.dialect.name == "sqlite":
            with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
                for column, target, _key in refs:
                    batch_op.drop_constraint(f"fk_{table}_{column}_{target}", type_="foreignkey")
            continue
        for fk in sa.inspect(bind).get_foreign_keys(table):
            if (fk["constrained_columns"][0], fk["referred_table"]) in \
                    {(c, t) for c, t, _k in refs}:
                op.drop_constraint(fk["name"], table, type_="foreignkey")


def downgrade() -> None:
    bind = op.get_bind()
    for table, refs in REFERENCES.items():
        if bind.dialect.name == "sqlite":
            with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
                for column, target, key in refs:
                    batch_op.create_foreign_key(f"fk_{table}_{column}_{target}", target,
                                                [column], [key])
            continue
        for column, target, key in refs:
            op.create_foreign_key(f"{table}_{column}_fkey", table, target, [column], [key])
