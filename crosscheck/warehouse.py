"""The DuckDB warehouse: one file per state folder, one schema per data layer."""
from __future__ import annotations

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
    con.execute(_MACROS.read_text(encoding="utf-8"))
    return con


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table]).fetchone()[0])
