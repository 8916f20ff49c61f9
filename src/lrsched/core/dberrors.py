"""Which database errors mean "another process created it first": matched by type and code."""

from __future__ import annotations

import sqlite3

# SQLSTATE: unique_violation, duplicate_table, duplicate_object (PostgreSQL, and MySQL's 23000 family)
DUPLICATE_SQLSTATES = {"23505", "42P07", "42710", "23000", "42S01"}
DUPLICATE_MYSQL_ERRNOS = {1050, 1062}  # table exists, duplicate entry


def is_duplicate(exc: BaseException | None) -> bool:
    """A unique-key violation or an object that already exists, anywhere in ``exc``'s chain.

    Two processes creating the same row or table at once: the loser sees one of these,
    and retrying finds the row or table in place.
    """
    from sqlalchemy.exc import IntegrityError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, IntegrityError):
            return True
        orig = getattr(exc, "orig", None)
        code = _code(orig)
        if code in DUPLICATE_SQLSTATES or code in DUPLICATE_MYSQL_ERRNOS:
            return True
        # SQLite gives CREATE TABLE's race no code of its own (SQLITE_ERROR): its type plus the text
        if isinstance(orig or exc, sqlite3.OperationalError) and "already exists" in str(orig or exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _code(orig: object) -> str | int | None:
    """The driver's error code: psycopg's ``sqlstate``/``pgcode``, pg8000's ``args[0]["C"]``,
    or MySQL drivers' ``args[0]`` errno."""
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is not None:
        return code
    first = (getattr(orig, "args", None) or (None,))[0]
    if isinstance(first, dict):  # pg8000: the server's fields, keyed by their protocol letter
        return first.get("C")
    return first if isinstance(first, int) else None
