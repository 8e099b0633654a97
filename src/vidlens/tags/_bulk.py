"""Bulk inserts through the DB-API driver, for imports of up to millions of rows.

SQLAlchemy's own ``executemany`` checks, type-processes and copies every parameter of every row in Python;
for a million-tag import that bookkeeping took longer than the database's work. :func:`driver_insert` runs
a plain ``INSERT INTO t (a, b, …) VALUES (…)`` in the driver's own parameter style with
``Connection.exec_driver_sql``, chunk by chunk, inside the caller's transaction. Values still go through
each column type's bind processor (JSON text, SQLite date strings), exactly as SQLAlchemy would send them,
so rows read back the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect

T = TypeVar("T")

CHUNK_ROWS = 20_000
"""Rows per ``executemany`` call."""

_UNSET = object()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything).

    A million-record import keeps millions of small objects alive at once; each full collection walks them
    all again, which cost about a fifth of the import's time. Those objects (records, tuples, dicts of
    strings) hold no reference cycles, so nothing is left behind meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _placeholders(dialect: Dialect, columns: Sequence[str]) -> tuple[list[str], bool]:
    """Parameter markers for ``columns`` in the driver's style, and whether rows go as dicts."""
    style = dialect.paramstyle
    if style == "qmark":
        return ["?"] * len(columns), False
    if style == "format":
        return ["%s"] * len(columns), False
    if style == "numeric":
        return [f":{i}" for i in range(1, len(columns) + 1)], False
    if style == "numeric_dollar":
        return [f"${i}" for i in range(1, len(columns) + 1)], False
    if style == "named":
        return [f":{c}" for c in columns], True
    if style == "pyformat":
        return [f"%({c})s" for c in columns], True
    raise ValueError(f"unknown DB-API parameter style {style!r}")


def _processor(table: Table, column: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    return table.c[column].type.dialect_impl(dialect).bind_processor(dialect)


def _process(proc: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    # Runs of the same object (the import's one timestamp, its one empty dict, None) are processed once.
    out = []
    last_in, last_out = _UNSET, None
    for v in values:
        if v is not last_in:
            last_in, last_out = v, proc(v)
        out.append(last_out)
    return out


def driver_insert(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                  constants: dict[str, Any] | None = None, prepared: Collection[str] = (),
                  chunk_rows: int = CHUNK_ROWS, on_chunk: Callable[[int], None] | None = None) -> int:
    """Insert ``rows`` (plain Python values, in ``columns`` order) plus ``constants`` (the same value in every
    row) into ``table`` with the driver's ``executemany``, in ``conn``'s transaction.

    Columns left out get no Python-side default (unlike a SQLAlchemy insert): give every column that needs one.

    Args:
        conn: an open connection (``session.connection()`` to share an ORM session's transaction).
        table: the table.
        columns: the names of the per-row values.
        rows: sequences of values, in ``columns`` order; consumed lazily.
        constants: ``{column: value}`` for every row.
        prepared: columns whose values are already what the driver takes (e.g. JSON text for a JSON column),
            so their bind processor is skipped.
        chunk_rows: rows per ``executemany`` call.
        on_chunk: called with the number of rows after each chunk (progress bars).

    Returns:
        The number of rows inserted.
    """
    dialect = conn.dialect
    constants = constants or {}
    names = [*columns, *constants]
    procs = [(i, p) for i, c in enumerate(columns)
             if c not in prepared and (p := _processor(table, c, dialect)) is not None]
    fixed = tuple(p(v) if (p := _processor(table, c, dialect)) else v for c, v in constants.items())
    marks, as_dicts = _placeholders(dialect, names)
    prep = dialect.identifier_preparer
    sql = (f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in names)}) "
           f"VALUES ({', '.join(marks)})")
    n = 0
    for chunk in chunks(rows, chunk_rows):
        if procs:
            cols = [list(c) for c in zip(*chunk, strict=True)]
            for i, proc in procs:
                cols[i] = _process(proc, cols[i])
            chunk = list(zip(*cols, strict=True))
        params: list[Any] = [(*row, *fixed) for row in chunk] if fixed else chunk
        if as_dicts:
            params = [dict(zip(names, row, strict=True)) for row in params]
        conn.exec_driver_sql(sql, params)
        n += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return n


__all__ = ["CHUNK_ROWS", "chunks", "driver_insert", "gc_paused"]
