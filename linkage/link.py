"""Link stage: tie every source record to roster households' members and relatives.

This version links by exact normalised ID (after width, space, case and 15→18 repair in staging).
Each output row says how it was linked (method, score, what agreed), so every flag can explain itself.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from crosscheck.settings import SourcesConfig
from crosscheck.warehouse import table_exists
from linkage.names import agreement

SQL = Path(__file__).with_name("sql")


def person_tables(sources: SourcesConfig) -> list[str]:
    """Staging tables that name a person by ID (exploded tables included), roster excepted."""
    tables = []
    for source in sources.sources.values():
        for name, spec in source.tables.items():
            if spec.explode is not None:
                tables.append(spec.explode.table)
            elif any(col.role == "id_number" for col in spec.columns.values()):
                tables.append(name)
    return [t for t in tables if t != "roster"]


def build_household_persons(con: duckdb.DuckDBPyConnection) -> int:
    con.execute((SQL / "household_person.sql").read_text(encoding="utf-8"))
    return con.execute("SELECT count(*) FROM linked.household_person").fetchone()[0]


def link_table(con: duckdb.DuckDBPyConnection, table: str) -> int:
    con.execute((SQL / "link_table.sql").read_text(encoding="utf-8").format(table=table))
    guard_names(con, table)
    return con.execute(f"SELECT count(*) FROM linked.{table}").fetchone()[0]


def guard_names(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Compare the names of ID-matched pairs that differ as written (each distinct pair once)."""
    pairs = con.execute(f"SELECT DISTINCT name, person_name FROM linked.{table} "
                        "WHERE coalesce(name, '') <> '' AND name IS DISTINCT FROM person_name").fetchall()
    verdicts = pd.DataFrame([(a, b, *agreement(a, b)) for a, b in pairs],
                            columns=["source_name", "roster_name", "score", "what"])
    if verdicts.empty:
        return
    con.register("name_verdicts", verdicts)
    try:
        for statement in (SQL / "name_guard.sql").read_text(encoding="utf-8").format(table=table).split(";"):
            if statement.strip():
                con.execute(statement)
    finally:
        con.unregister("name_verdicts")


def link_all(con: duckdb.DuckDBPyConnection, sources: SourcesConfig) -> dict[str, int]:
    """Build linked.household_person, then linked.<table> for every staged person table."""
    if not table_exists(con, "staging", "hukou"):
        # No hukou ever delivered: members still link, relatives cannot be known (R05 is skipped).
        con.execute("CREATE TABLE staging.hukou (id_norm VARCHAR, name VARCHAR, hukou_no VARCHAR)")
    con.execute("CREATE OR REPLACE TABLE linked.review (record_table VARCHAR, _file VARCHAR, _row BIGINT,"
                " household_id VARCHAR, person_id VARCHAR, source_name VARCHAR, roster_name VARCHAR,"
                " score DOUBLE, reason VARCHAR)")
    counts = {"household_person": build_household_persons(con)}
    for table in person_tables(sources):
        if table_exists(con, "staging", table):
            counts[table] = link_table(con, table)
    counts["review"] = con.execute("SELECT count(*) FROM linked.review").fetchone()[0]
    return counts
