"""Which database errors mean "another process created it first", for every driver lrsched meets."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from lrsched.core.dberrors import is_duplicate


class _Psycopg(Exception):
    def __init__(self, pgcode: str):
        super().__init__("ERROR")
        self.pgcode = pgcode


class _Pg8000(Exception):
    """pg8000 hands the server's fields over as a dict keyed by protocol letter, in ``args[0]``."""


def _wrapped(orig: BaseException, kind=ProgrammingError) -> BaseException:
    return kind("CREATE TABLE studies ...", {}, orig)


@pytest.mark.parametrize(("orig", "duplicate"), [
    (_Psycopg("42P07"), True),                                       # psycopg: duplicate_table
    (_Psycopg("42P01"), False),                                      # undefined_table
    (_Pg8000({"S": "ERROR", "C": "23505", "M": "duplicate key"}), True),
    (_Pg8000({"S": "ERROR", "C": "28P01", "M": "password authentication failed"}), False),
    (_Pg8000("a message only"), False),
    (Exception(1050, "Table 'studies' already exists"), True),       # MySQL errno
    (Exception(1045, "Access denied"), False),
    (sqlite3.OperationalError("table studies already exists"), True),  # SQLite: no code of its own
    (sqlite3.OperationalError("database is locked"), False),
])
def test_a_duplicate_is_found_by_its_drivers_code(orig: BaseException, duplicate: bool) -> None:
    assert is_duplicate(_wrapped(orig)) is duplicate


def test_a_unique_violation_is_a_duplicate_wherever_it_sits_in_the_chain() -> None:
    try:
        try:
            raise IntegrityError("INSERT INTO experiments ...", {}, Exception("UNIQUE constraint failed"))
        except IntegrityError as exc:
            raise RuntimeError("could not create the experiment") from exc
    except RuntimeError as outer:
        assert is_duplicate(outer)
    assert not is_duplicate(RuntimeError("could not create the experiment"))
    assert not is_duplicate(_wrapped(sqlite3.OperationalError("disk I/O error"), OperationalError))
