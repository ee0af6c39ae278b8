"""Link stage: tie every source record to roster households' members and relatives.

Records link by exact normalised ID (after width, space, case and 15→18 repair in staging), or by the ID
linkage/repair.py repaired (a typo, a transposition, an old/new area code, an Excel-damaged number: only
when exactly one known person fits and the name agrees). Roster IDs are repaired the same way before the
households are built. Each output row says how it was linked (link_method id_exact | id_repaired | fuzzy,
link_score, link_agreed: what was repaired and what agreed, never an ID or a name), so every flag can
explain itself. Records whose ID is unusable or belongs to nobody known go to linked.unlinked with the
reason; exact-ID matches whose name clearly disagrees go to linked.review. For the tables that
``fuzzy_link_tables`` (config/thresholds.yaml) names, records without a usable ID then go through the
probabilistic fallback (linkage/fuzzy.py): accepted links join linked.<table> as ``fuzzy`` with their match
probability as link_score, the band below goes to linked.fuzzy_review.
"""
from __future__ import annotations

import time
from pathlib import Path

import duckdb

from crosscheck.metrics import timed
from crosscheck.settings import SourcesConfig, Thresholds, load_thresholds
from crosscheck.warehouse import table_columns, table_exists, table_kind
from linkage import incremental
from linkage.fuzzy import candidate_cache_key, create_fuzzy_review, forget_candidates, fuzzy_link
from linkage.names import agreement_frame
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


def link_table(con: duckdb.DuckDBPyConnection, table: str, records: str | None = None,
               target: str | None = None) -> int:
    """linked.<table> from staging.<table> (or, for linkage/incremental.py, the rows of ``records`` linked
    into ``target``), name-guarded, with the unlinked records listed."""
    records = records or f"staging.{table}"
    target = target or f"linked.{table}"
    can_repair = repairable(con, table)
    repaired = ((SQL / "link_table_repaired.sql").read_text(encoding="utf-8").format(
        table=table, id_key=id_key("r"), records=records) if can_repair else "")
    con.execute((SQL / "link_table.sql").read_text(encoding="utf-8").format(
        table=table, repaired=repaired, records=records, target="TEMP TABLE link_unguarded"))
    guard_names(con, table, "link_unguarded", table_kind(target))
    con.execute("DROP TABLE IF EXISTS link_unguarded")
    if can_repair:
        list_unlinked(con, table, records)
    return con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]


def list_unlinked(con: duckdb.DuckDBPyConnection, table: str, records: str | None = None) -> None:
    cols = set(table_columns(con, "staging", table))
    owner_seq = "CAST(r.owner_seq AS BIGINT)" if "owner_seq" in cols else "CAST(NULL AS BIGINT)"
    con.execute((SQL / "unlinked.sql").read_text(encoding="utf-8").format(
        table=table, id_key=id_key("r"), owner_seq=owner_seq, records=records or f"staging.{table}"))


def guard_names(con: duckdb.DuckDBPyConnection, table: str, links: str, target: str) -> None:
    """Compare the names of ID-matched pairs in ``links`` that differ as written (each distinct pair once)
    and write the guarded links to ``target`` ("TABLE linked.<table>" or "TEMP TABLE <name>"); the pairs
    whose names disagree go to linked.review (linkage/sql/name_guard.sql)."""
    pairs = con.execute(f"SELECT DISTINCT name, person_name FROM {links} "
                        "WHERE link_method = 'id_exact' AND coalesce(name, '') <> ''"
                        " AND name IS DISTINCT FROM person_name").fetchall()
    con.register("name_verdicts", agreement_frame(pairs, "roster_name"))
    try:
        for statement in (SQL / "name_guard.sql").read_text(encoding="utf-8").format(
                table=table, links=links, target=target).split(";"):
            if statement.strip():
                con.execute(statement)
    finally:
        con.unregister("name_verdicts")


def add_fuzzy_links(con: duckdb.DuckDBPyConnection, table: str, candidate_key: str | None = None) -> int:
    """Link the table's records without a usable ID probabilistically (linkage/fuzzy.py) and add the accepted
    ones to linked.<table> as link_method 'fuzzy' (link_score = match probability); they leave
    linked.unlinked. Candidates below the acceptance threshold stay in linked.fuzzy_review. With
    ``candidate_key`` the hukou candidates are kept in the warehouse for the next night (fuzzy._build_candidates)."""
    counts = fuzzy_link(con, table, candidate_key=candidate_key)
    if not counts["linked"]:
        return 0
    con.execute(f"""
        INSERT INTO linked.{table} BY NAME
        SELECT r.*, f.household_id, f.person_id, hp.person_name, f.kin, 'fuzzy' AS link_method,
               f.match_probability AS link_score, f.link_agreed
        FROM linked.fuzzy_{table} f
        JOIN staging.{table} r USING (_file, _row)
        JOIN (SELECT DISTINCT household_id, person_id, person_name FROM linked.household_person) hp
          USING (household_id, person_id)""")
    con.execute(f"DELETE FROM linked.unlinked u USING linked.fuzzy_{table} f "
                f"WHERE u.record_table = ? AND u._file = f._file AND u._row = f._row", [table])
    return counts["linked"]


def link_all(con: duckdb.DuckDBPyConnection, sources: SourcesConfig,
             thresholds: Thresholds | None = None, *, full: bool = False) -> dict:
    """Build linked.household_person, then linked.<table> for every staged person table (with the
    probabilistic fallback for the tables ``fuzzy_link_tables`` names).

    Each table is linked in full, or, when its staging is unchanged since it was last linked and only the
    roster changed, by delta (linkage/incremental.py: only the records whose person, repair or known-person
    status changed are linked again; the result is the same). counts["mode"][table] says which
    ("full" | "delta"), counts["mode_reason"][table] why, counts["seconds"] the wall time of each step.
    ``full`` links every table in full and builds the fuzzy fallback's candidates anew."""
    started = time.perf_counter()
    if not table_exists(con, "staging", "hukou"):
        # No hukou ever delivered: members still link, relatives cannot be known (R05 is skipped).
        con.execute("CREATE TABLE staging.hukou (id_norm VARCHAR, name VARCHAR, hukou_no VARCHAR)")
    tables = [t for t in person_tables(sources) if table_exists(con, "staging", t)]
    fuzzy_tables = (thresholds or load_thresholds()).fuzzy_link_tables
    plan = incremental.plan(con, tables, fuzzy_tables, full=full)
    incremental.forget_state(con)            # a night that stops half-way leaves the next one a full link
    if full:                                 # nothing an earlier night kept is used, the fuzzy candidates included
        forget_candidates(con)
    delta = [t for t in tables if plan.modes[t] == "delta"]
    if delta:
        incremental.keep_previous(con, tables, delta, fuzzy_tables)
    else:
        con.execute("CREATE OR REPLACE TABLE linked.review (record_table VARCHAR, _file VARCHAR, _row BIGINT,"
                    " household_id VARCHAR, person_id VARCHAR, source_name VARCHAR, roster_name VARCHAR,"
                    " score DOUBLE, reason VARCHAR)")
        con.execute("CREATE OR REPLACE TABLE linked.unlinked (record_table VARCHAR, _file VARCHAR, _row BIGINT,"
                    " _delivery_date DATE, owner_seq BIGINT, reason VARCHAR)")
        create_fuzzy_review(con, replace=True)        # tonight's review band only
    seconds: dict[str, float] = {"plan": round(time.perf_counter() - started, 3)}
    with timed(seconds, "id_repair"):
        counts: dict = {"id_repaired": build_repairs(con, ["roster", *tables], keep=frozenset(delta))}
    with timed(seconds, "household_person"):
        counts["household_person"] = build_household_persons(con)
        if repairable(con, "roster"):
            list_unlinked(con, "roster")
        if delta:
            incremental.diff_previous(con)
        create_fuzzy_review(con)
    for table in tables:
        with timed(seconds, table):
            if plan.modes[table] == "delta":
                counts[table] = incremental.relink_table(con, table, fuzzy=table in fuzzy_tables)
            else:
                counts[table] = link_table(con, table)
        if table in fuzzy_tables:
            with timed(seconds, f"{table}_fuzzy"):
                counts[f"{table}_fuzzy"] = add_fuzzy_links(
                    con, table, candidate_cache_key(plan.version, plan.fingerprints["hukou"]))
            counts[table] += counts[f"{table}_fuzzy"]
    counts["review"] = con.execute("SELECT count(*) FROM linked.review").fetchone()[0]
    counts["unlinked"] = con.execute("SELECT count(*) FROM linked.unlinked").fetchone()[0]
    incremental.save_state(con, plan)
    counts["mode"] = dict(plan.modes)
    counts["mode_reason"] = dict(plan.reasons)
    counts["seconds"] = seconds
    return counts
