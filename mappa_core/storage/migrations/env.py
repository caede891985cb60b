"""Alembic environment: runs migrations on the engine mappa_core.storage.db hands over."""

from alembic import context
from sqlmodel import SQLModel

import mappa_core.storage.models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata
engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
