"""Alembic environment: runs the migrations on the connection :mod:`vidlens.store.schema` passes in.

``config.attributes["connection"]`` is the connection to migrate (its open transaction, if any, is used
as is); without one, the ``sqlalchemy.url`` option is connected to. ``config.attributes
["target_metadata"]`` is the model metadata for autogenerate and ``check``; upgrades do not need it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=config.attributes.get("target_metadata"),
        # SQLite cannot ALTER most things in place: later revisions rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("vidlens migrations run on a live connection, not in --sql mode")
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from vidlens.store.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
