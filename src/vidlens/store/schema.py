"""The schema of the metadata DB, kept by the Alembic migrations in ``store/migrations/versions``.

Opening a library brings its DB to the newest revision with :func:`upgrade_schema`; no table is made
any other way. The first revision also adopts a DB made before migrations existed (tables from
``create_all``, no ``alembic_version`` table): it creates only the tables that are missing and leaves
the others and their rows alone, after which the DB is stamped like any other.

Two processes opening one DB at the same moment are serialised by a lock held for the whole upgrade
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock), and both DBs run the DDL
inside that transaction, so the second process finds the first one's work done instead of failing on
``CREATE TABLE``.

A new revision after a model change::

    from alembic import command
    from vidlens.store.schema import alembic_config
    cfg = alembic_config(url="sqlite:////tmp/scratch.db", with_models=True)
    command.upgrade(cfg, "head")
    command.revision(cfg, message="what changed", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine

from vidlens.errors import VidlensError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Every module that declares tables on ``Base``; the service modules need the ``service`` extra.
MODEL_MODULES = (
    "vidlens.store.models",
    "vidlens.tags.models",
    "vidlens.service.jobs",
    "vidlens.service.feedback",
    "vidlens.service.routers.classify",
)
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises schema upgrades.
_PG_LOCK_KEY = 0x7669646C656E73  # "vidlens"


def model_metadata() -> MetaData:
    """The metadata of every vidlens table, all model modules imported (what migrations must match)."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from vidlens.store.models import Base

    return Base.metadata


def alembic_config(connection: Connection | None = None, *, url: str | None = None,
                   with_models: bool = False) -> Config:
    """An Alembic configuration for the shipped migrations.

    Args:
        connection: run on this connection (and inside its transaction, if one is open).
        url: otherwise, connect to this database URL.
        with_models: give ``env.py`` the model metadata, which ``revision --autogenerate`` and ``check``
            compare against; a plain upgrade does not need it.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    cfg.attributes["target_metadata"] = model_metadata() if with_models else None
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision of the shipped migrations."""
    head = _scripts().get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS_DIR}"
    return head


def _is_known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(conn: Connection) -> str | None:
    """The revision a DB is at; ``None`` for an empty DB or one made before migrations existed."""
    return MigrationContext.configure(conn).get_current_revision()


def _lock(conn: Connection) -> None:
    """Take the lock that serialises schema upgrades, held until ``conn``'s transaction ends."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # Waits (up to the busy timeout) for any other writer, then keeps them all out until commit.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def upgrade_schema(engine: Engine) -> None:
    """Bring the DB behind ``engine`` to the newest revision (a no-op when it is there already).

    Raises:
        VidlensError: the DB was written by a newer vidlens, at a revision this one does not know.
    """
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return
    with engine.begin() as conn:
        _lock(conn)
        before = current_revision(conn)
        if before == head:  # another process upgraded it while we waited for the lock
            return
        if before is not None and not _is_known(before):
            raise VidlensError(f"the metadata DB is at schema revision {before!r}, which this vidlens does not "
                               f"know (its newest is {head!r}): a newer vidlens wrote it; upgrade vidlens")
        if before is None and inspect(conn).has_table("videos"):
            log.info("adopting a metadata DB made before migrations existed; its tables and rows are kept")
        command.upgrade(alembic_config(conn), "head")
        log.info("metadata DB schema upgraded from %s to %s", before or "nothing", head)


__all__ = ["alembic_config", "current_revision", "head_revision", "model_metadata", "upgrade_schema"]
