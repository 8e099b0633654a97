"""Alembic migrations of the metadata DB; run through :mod:`vidlens.store.schema`, not by hand."""
