"""Front-database (前置库) connector: a source table read from PostgreSQL or MySQL/MariaDB instead of files.

Configured per table in sources.yaml (`front_db: {url, table, delivery_date_column, order_by}`); the
columns are the delivered ones, as in the files. Values come out as text the way a CSV carries them.
With `delivery_date_column`, the table may hold several snapshots: the newest dated on or before the
night is read. Without it the table is one live snapshot, dated the night it is read. Rows are read in a
stable order (`order_by`, else every delivered column) so `_row` numbers mean the same thing each night,
and streamed in batches so a large table never sits in memory twice.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import unquote, urlparse

import pyarrow as pa

from connectors.base import ROW, DeliveredFile, QuarantinedRow
from crosscheck.settings import FrontDbSpec, TableSpec

BATCH = 50_000
_ENV = re.compile(r"\$\{([A-Z0-9_]+)\}")
_IDENT = re.compile(r"^[^\s\"`';]+$")   # names are quoted anyway; no quotes or separators at all


class FrontDbError(RuntimeError):
    """The front database could not be read; the message names the table, never a credential."""


def _expand(url: str) -> str:
    """${VAR} in the URL is taken from the environment, so passwords stay out of sources.yaml."""
    return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), url)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="strict")
    return str(value)


def _record(row, columns: list[str]) -> list[str] | QuarantinedRow:
    """A row's values as text, or (a binary column holding bytes that are not UTF-8) the row set aside
    with the reason, so one bad value does not cost the whole table."""
    try:
        return [_text(v) for v in row]
    except UnicodeDecodeError:
        bad = next(c for c, v in zip(columns, row) if isinstance(v, (bytes, bytearray, memoryview))
                   and not _is_utf8(v))
        raw = "\x1f".join(_text(v) if not isinstance(v, (bytes, bytearray, memoryview))
                          else bytes(v).decode("utf-8", "backslashreplace") for v in row)
        return QuarantinedRow(None, f"「{bad}」列的字节不是 UTF-8 文本 (column {bad} holds bytes that are not UTF-8 text)",
                              raw)


def _is_utf8(value) -> bool:
    try:
        bytes(value).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _quote(name: str, dialect: str) -> str:
    q = '"' if dialect == "postgresql" else "`"
    return ".".join(q + part.replace(q, q + q) + q for part in name.split("."))


def _connect(url: str):
    parsed = urlparse(_expand(url))
    scheme = parsed.scheme.split("+")[0]
    if scheme in ("postgresql", "postgres"):
        import psycopg

        return "postgresql", psycopg.connect(_expand(url).replace("postgresql+psycopg", "postgresql"),
                                             connect_timeout=15)
    if scheme in ("mysql", "mariadb"):
        import pymysql

        return "mysql", pymysql.connect(host=parsed.hostname or "127.0.0.1", port=parsed.port or 3306,
                                        user=unquote(parsed.username or "root"),
                                        password=unquote(parsed.password or ""),
                                        database=parsed.path.lstrip("/"), charset="utf8mb4", connect_timeout=15,
                                        cursorclass=pymysql.cursors.SSCursor)
    raise FrontDbError(f"unsupported front-database URL scheme {scheme!r} (postgresql or mysql)")


def _describe_target(spec: FrontDbSpec) -> str:
    parsed = urlparse(_expand(spec.url))
    return f"{parsed.scheme}://{parsed.hostname}:{parsed.port or ''}/{parsed.path.lstrip('/')} table {spec.table}"


def snapshot_date(spec: FrontDbSpec, as_of: date) -> date | None:
    """The newest snapshot on or before as_of (None when there is none); as_of for a live table."""
    if not spec.delivery_date_column:
        return as_of
    dialect, conn = _connect(spec.url)
    with closing(conn):
        cur = conn.cursor() if dialect == "postgresql" else conn.cursor(__import__("pymysql").cursors.Cursor)
        col, table = _quote(spec.delivery_date_column, dialect), _quote(spec.table, dialect)
        placeholder = "%s"
        cur.execute(f"SELECT max({col}) FROM {table} WHERE {col} <= {placeholder}", [as_of])
        found = cur.fetchone()[0]
    if found is None:
        return None
    return found if isinstance(found, date) and not isinstance(found, datetime) else date.fromisoformat(str(found)[:10])


class FrontDbConnector:
    kind = "front_db"

    def __init__(self, table_spec: TableSpec, snapshot: date):
        if table_spec.front_db is None:
            raise ValueError("table has no front_db configuration")
        self.spec = table_spec.front_db
        self.columns = list(table_spec.columns)
        self.snapshot = snapshot
        for name in [self.spec.table, *(self.spec.order_by or [])]:
            if not _IDENT.match(name):
                raise FrontDbError(f"front_db name {name!r} holds a quote, space or semicolon")

    def describe(self) -> str:
        return f"front database {_describe_target(self.spec)}"

    def _present(self, conn, dialect: str) -> list[str]:
        """The configured columns the table has: a column it lacks is then told apart by the loader like a
        missing column of a file (required: rejected, naming it; optional: empty, with a note)."""
        cur = conn.cursor()
        cur.execute(f"SELECT * FROM {_quote(self.spec.table, dialect)} WHERE 1 = 0")
        names = {d[0] for d in cur.description or ()}
        cur.fetchall()
        cur.close()
        return [c for c in self.columns if c in names]

    def _query(self, dialect: str, present: list[str]) -> tuple[str, list]:
        select = ", ".join(_quote(c, dialect) for c in present)
        order = ", ".join(_quote(c, dialect) for c in (self.spec.order_by or present))
        sql, params = f"SELECT {select} FROM {_quote(self.spec.table, dialect)}", []
        if self.spec.delivery_date_column:
            sql += f" WHERE {_quote(self.spec.delivery_date_column, dialect)} = %s"
            params.append(self.snapshot)
        return sql + f" ORDER BY {order}", params

    def read(self) -> Iterator[DeliveredFile]:
        name = f"{self.spec.table}@{self.snapshot.isoformat()}"
        out = DeliveredFile(name=name, sha256=None, size=None, table=None, encoding="database")
        try:
            dialect, conn = _connect(self.spec.url)
        except Exception as exc:
            out.error = f"cannot connect to the front database ({type(exc).__name__})"
            yield out
            return
        digest, batches, count = hashlib.sha256(), [], 0
        present = self.columns
        try:
            with closing(conn):
                present = self._present(conn, dialect)
                if not present:
                    out.error = (f"前置库表 {self.spec.table} 没有任何约定的列 (the front-database table "
                                 f"{self.spec.table} has none of the configured columns)")
                    yield out
                    return
                sql, params = self._query(dialect, present)
                cur = conn.cursor(name="crosscheck_read") if dialect == "postgresql" else conn.cursor()
                cur.execute(sql, params)
                while rows := cur.fetchmany(BATCH):
                    good, numbers = [], []
                    for number, row in enumerate(rows, start=count + 1):
                        record = _record(row, present)
                        if isinstance(record, QuarantinedRow):
                            record.row = number
                            out.quarantined.append(record)
                            digest.update(record.raw.encode("utf-8", "backslashreplace") + b"\x1e")
                            continue
                        digest.update("\x1f".join(record).encode("utf-8", "surrogatepass") + b"\x1e")
                        good.append(record)
                        numbers.append(number)
                    cols = list(zip(*good)) if good else [() for _ in present]
                    data = {c: pa.array(list(t), pa.string()) for c, t in zip(present, cols)}
                    data[ROW] = pa.array(numbers, pa.int64())
                    batches.append(pa.table(data))
                    count += len(rows)
        except Exception as exc:
            out.error = f"reading {self.spec.table} failed ({type(exc).__name__}: missing table or column?)"
            yield out
            return
        empty = pa.table({**{c: pa.array([], pa.string()) for c in present}, ROW: pa.array([], pa.int64())})
        out.table = pa.concat_tables(batches) if batches else empty
        out.rows_read, out.sha256, out.size = count, digest.hexdigest(), None
        yield out
