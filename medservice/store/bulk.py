"""Inserting thousands of rows in one statement.

SQLAlchemy's executemany on PostgreSQL ("insertmanyvalues") sends INSERT ... VALUES with a
placeholder per value, and psycopg spends seconds parsing such statements (20,000
discrepancies took 10 s of a national batch). On PostgreSQL the rows go instead as one JSON
parameter, `INSERT ... SELECT FROM json_populate_recordset(...)`: a short statement
whatever the number of rows, typed by the table itself. (Arrays per column were no
better: psycopg escapes each text array element in Python.) SQLite keeps executemany,
which costs it nothing of the kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    String,
    Table,
    any_,
    bindparam,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

SQLITE_CHUNK = 2000  # rows per executemany
# Keys per keys_in: three columns' worth stays under SQLite's 32,766 parameters.
KEYS_PER_STATEMENT = 5000


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *,
                on_conflict: Sequence[str] = (), update: Sequence[str] = (),
                returning: Column[Any] | None = None) -> list[Any]:
    """Insert `rows` (dicts with the same keys). A row whose `on_conflict` (unique) columns
    match a stored row overwrites that row's `update` columns, or with no `update` is left
    out. Returns `returning` of the rows written (in no particular order), else []."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        return _insert_json(conn, table, rows, on_conflict, update, returning)
    written: list[Any] = []
    for i in range(0, len(rows), SQLITE_CHUNK):
        stmt: Any = sqlite_insert(table)
        if update:
            stmt = stmt.on_conflict_do_update(index_elements=list(on_conflict),
                                              set_={c: stmt.excluded[c] for c in update})
        elif on_conflict:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(on_conflict))
        if returning is not None:
            written += list(conn.scalars(stmt.returning(returning), rows[i:i + SQLITE_CHUNK]))
        else:
            conn.execute(stmt, rows[i:i + SQLITE_CHUNK])
    return written


def any_of(conn: Connection, column: ColumnElement[Any], values: Iterable[Any]
           ) -> ColumnElement[bool]:
    """`column IN values` for up to tens of thousands of values: one array parameter on
    PostgreSQL (an IN list is a placeholder per value, slow to parse as above); an IN list
    on SQLite (under its limit of 32,766 parameters for the sizes the callers pass)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def _insert_json(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                 on_conflict: Sequence[str], update: Sequence[str],
                 returning: Column[Any] | None) -> list[Any]:
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(map(quote, rows[0]))
    sql = (f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} "
           f"FROM json_populate_recordset(NULL::{quote(table.name)}, CAST(:rows AS json))")
    if on_conflict:
        sql += f" ON CONFLICT ({', '.join(map(quote, on_conflict))}) DO "
        sql += ("UPDATE SET " + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in update)
                if update else "NOTHING")
    if returning is not None:
        sql += f" RETURNING {quote(returning.name)}"
    result = conn.execute(text(sql), {"rows": json.dumps(rows, default=_json_value)})
    return list(result.scalars()) if returning is not None else []


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # which zone? refuse rather than guess
            raise ValueError("naive datetime")
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in bulk")


def keys_in(conn: Connection, columns: Sequence[Column[Any]], keys: Sequence[tuple[Any, ...]]
            ) -> ColumnElement[bool]:
    """`(columns) IN keys` for thousands of keys. PostgreSQL: one array parameter per
    column, unnested and joined on the index (a row-value IN list is a placeholder per
    value, which psycopg spent a third of a second parsing for 5,000 alerts' keys); SQLite:
    the row-value IN list (callers keep it under SQLite's 32,766 parameters)."""
    if conn.dialect.name == "postgresql":
        # Strings as unbounded text: a cast to varchar(63)[] would cut a longer key to one
        # that matches.
        arrays = [bindparam(None, [k[i] for k in keys], type_=ARRAY(
            String() if isinstance(c.type, String) else c.type)) for i, c in enumerate(columns)]
        names = [f"k{i}" for i in range(len(columns))]
        given = func.unnest(*arrays).table_valued(*names).render_derived()
        return tuple_(*columns).in_(select(*(given.c[n] for n in names)))
    return tuple_(*columns).in_(list(keys))
