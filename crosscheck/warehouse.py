"""The DuckDB warehouse: one file per state folder, one schema per data layer."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb

# raw: as delivered (all text) · staging: typed, canonical names, IDs normalised · linked: source records
# tied to roster members · flags: rule hits with evidence · ledger: cases and their history ·
# audit: load accounting, quarantine, check results, run log
LAYERS = ("raw", "staging", "linked", "flags", "ledger", "audit")
_MACROS = Path(__file__).with_name("sql") / "id_macros.sql"


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, creating the layer schemas and SQL macros on first use."""
    con = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        for layer in LAYERS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    macros = _MACROS.read_text(encoding="utf-8")
    if read_only:       # a read-only file takes no new objects: the macros live in the session instead
        macros = macros.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO")
    con.execute(macros)
    limit = _memory_limit()
    if limit:
        con.execute(f"SET memory_limit = '{limit}'")
    return con


def _memory_limit() -> str | None:
    """thresholds.yaml warehouse_memory_limit (validated on load: digits and a unit), or None."""
    from crosscheck.settings import ConfigError, load_thresholds

    try:
        return load_thresholds().warehouse_memory_limit
    except ConfigError:        # a test's partial configuration folder: DuckDB's default
        return None


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table]).fetchone()[0])


def table_kind(target: str) -> str:
    """``target`` as a CREATE statement names it: ``TABLE linked.x`` for a qualified name (a table in the
    warehouse), ``TEMP TABLE x`` for a bare one (an intermediate on the connection)."""
    return f"TABLE {target}" if "." in target else f"TEMP TABLE {target}"


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """The table's column names in their order (empty when there is no such table)."""
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, table]).fetchall()]


def schema_columns(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, set[str]]:
    """Every table of a schema with its column names."""
    out: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_schema = ?", [schema]).fetchall():
        out.setdefault(table, set()).add(column)
    return out


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    """A query's rows as dicts keyed by column name."""
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


# --- a table's content fingerprint, kept in its comment ---------------------------------------------------

_FINGERPRINT_KEY = "crosscheck_content_fingerprint"


def kept_fingerprint(con: duckdb.DuckDBPyConnection, schema: str, table: str, rows: int,
                     columns: list[str]) -> str | None:
    """The content fingerprint ``keep_fingerprint`` stored in the table's comment, when the table still has
    exactly ``rows`` rows and ``columns``; else None. A table that was replaced has no comment, and a row
    deleted or added changes the count; what changes a table otherwise must call ``forget_fingerprint``."""
    row = con.execute("SELECT comment FROM duckdb_tables() WHERE database_name = current_database() "
                      "AND schema_name = ? AND table_name = ?", [schema, table]).fetchone()
    try:
        kept = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None
    if not isinstance(kept, dict) or _FINGERPRINT_KEY not in kept:
        return None
    if kept.get("rows") != rows or kept.get("columns") != list(columns):
        return None
    return kept[_FINGERPRINT_KEY]


def keep_fingerprint(con: duckdb.DuckDBPyConnection, schema: str, table: str, fingerprint: str, rows: int,
                     columns: list[str]) -> None:
    comment = json.dumps({_FINGERPRINT_KEY: fingerprint, "rows": rows, "columns": list(columns)})
    con.execute(f'COMMENT ON TABLE {schema}."{table}" IS ' + "'" + comment.replace("'", "''") + "'")


def forget_fingerprint(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    """The table's content changed in place: its kept fingerprint no longer holds."""
    con.execute(f'COMMENT ON TABLE {schema}."{table}" IS NULL')
