"""Link stage: tie every source record to roster households' members and relatives.

Records link by exact normalised ID (after width, space, case and 15→18 repair in staging), or by the ID
linkage/repair.py repaired (a typo, a transposition, an old/new area code, an Excel-damaged number: only
when exactly one known person fits and the name agrees). Roster IDs are repaired the same way before the
households are built. Each output row says how it was linked (link_method id_exact | id_repaired,
link_score, link_agreed: what was repaired and what agreed, never an ID or a name), so every flag can
explain itself. Records whose ID is unusable or belongs to nobody known go to linked.unlinked with the
reason; exact-ID matches whose name clearly disagrees go to linked.review.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from crosscheck.settings import SourcesConfig
from crosscheck.warehouse import table_columns, table_exists
from linkage.names import agreement
from linkage.repair import build_repairs, id_key, repairable

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
    con.execute((SQL / "household_person.sql").read_text(encoding="utf-8").format(id_key=id_key("r")))
    return con.execute("SELECT count(*) FROM linked.household_person").fetchone()[0]


def link_table(con: duckdb.DuckDBPyConnection, table: str) -> int:
    can_repair = repairable(con, table)
    repaired = ((SQL / "link_table_repaired.sql").read_text(encoding="utf-8").format(table=table, id_key=id_key("r"))
                if can_repair else "")
    con.execute((SQL / "link_table.sql").read_text(encoding="utf-8").format(table=table, repaired=repaired))
    guard_names(con, table)
    if can_repair:
        list_unlinked(con, table)
    return con.execute(f"SELECT count(*) FROM linked.{table}").fetchone()[0]


def list_unlinked(con: duckdb.DuckDBPyConnection, table: str) -> None:
    cols = set(table_columns(con, "staging", table))
    owner_seq = "CAST(r.owner_seq AS BIGINT)" if "owner_seq" in cols else "CAST(NULL AS BIGINT)"
    con.execute((SQL / "unlinked.sql").read_text(encoding="utf-8").format(table=table, id_key=id_key("r"),
                                                                          owner_seq=owner_seq))


def guard_names(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Compare the names of ID-matched pairs that differ as written (each distinct pair once)."""
    pairs = con.execute(f"SELECT DISTINCT name, person_name FROM linked.{table} "
                        "WHERE link_method = 'id_exact' AND coalesce(name, '') <> ''"
                        " AND name IS DISTINCT FROM person_name").fetchall()
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
    con.execute("CREATE OR REPLACE TABLE linked.unlinked (record_table VARCHAR, _file VARCHAR, _row BIGINT,"
                " _delivery_date DATE, owner_seq BIGINT, reason VARCHAR)")
    tables = [t for t in person_tables(sources) if table_exists(con, "staging", t)]
    counts = {"id_repaired": build_repairs(con, ["roster", *tables])}
    counts["household_person"] = build_household_persons(con)
    if repairable(con, "roster"):
        list_unlinked(con, "roster")
    for table in tables:
        counts[table] = link_table(con, table)
    counts["review"] = con.execute("SELECT count(*) FROM linked.review").fetchone()[0]
    counts["unlinked"] = con.execute("SELECT count(*) FROM linked.unlinked").fetchone()[0]
    return counts
