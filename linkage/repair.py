"""ID repair: give a record whose ID is damaged the one known person it can only mean, or say why not.

Known persons are everyone in the hukou extract and on the roster with a usable ID. A record's ID is a
repair request when

- it fails its check digit (``bad_check``): candidates are every single-digit substitution at positions
  1–18 and every adjacent transposition that pass the check digit (linkage/sql/id_repair_candidates.sql
  finds them arithmetically, without recomputing the weighted sum per candidate);
- it is valid but belongs to nobody known, and its area code has an older or newer code for the same
  place (linkage/sql/id_repair_areas.sql, from the GB/T 2260 reference table): candidates are the same
  birth date and sequence under those codes, check digit recomputed;
- Excel stored it as a number (``excel_damaged``): when 15 significant digits survive (area, birth date,
  two sequence digits) candidates are the known persons with those first 15 digits; in scientific
  notation with fewer digits only the area survives and the record cannot be linked on its ID.

A request is repaired only when exactly one known person is a candidate AND agrees in name
(linkage.names.agreement, computed once per distinct pair of names; any verdict but none/missing agrees). The result is ``linked.id_repair``
(id_key, name, repaired_id, detail, name_score, name_what, reason), keyed by the record's cleaned ID and
its name as delivered; ``reason`` says why a request stayed unrepaired. No ID or name ever goes into
``detail`` or ``reason``.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from crosscheck.warehouse import table_columns, table_exists
from linkage.names import agreement_frame

SQL = Path(__file__).with_name("sql")
REPAIRED_WEIGHT = 0.95      # link_score of a repaired ID = this × name score
EXCEL_WEIGHT = 0.90         # three digits lost: the name and birth date carry the link

# The record's ID as a repair key: the normalised ID when usable, else the cleaned delivered text.
ID_KEY = ("CASE WHEN {a}id_status IN ('valid', 'upgraded15') THEN {a}id_norm "
          "ELSE id_clean(CAST({a}id_number AS VARCHAR)) END")

# First 15 digits of an ID that Excel kept as a number: 18 digits ending 000, or d.dddddddddddddd E+17.
EXCEL_PREFIX = ("CASE WHEN regexp_full_match({k}, '\\d{{18}}') THEN substr({k}, 1, 15) "
                "WHEN regexp_full_match({k}, '\\d\\.\\d{{14,}}E\\+?17') "
                "THEN substr({k}, 1, 1) || substr({k}, 3, 14) END")


def id_key(alias: str = "") -> str:
    return ID_KEY.format(a=f"{alias}." if alias else "")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return set(table_columns(con, "staging", table))


def repairable(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return table_exists(con, "staging", table) and {"id_number", "id_norm", "id_status", "name"} <= _columns(con, table)


def build_known_persons(con: duckdb.DuckDBPyConnection, hukou_unchanged: bool = False) -> None:
    """linked.known_person (id, name, from_hukou): every distinct pair in hukou and the roster, from_hukou
    when hukou has it. One aggregation over both (not one per table and a UNION on top: three aggregations
    of 3 million rows where one will do).

    ``hukou_unchanged`` (an incremental link: staging.hukou is the one the table was built from): only the
    roster's own pairs are replaced, those hukou does not have; the hukou pairs, nearly all of the table,
    stay. Writing the whole table again costs about 2.4 s at scale 1, replacing the roster's pairs a tenth."""
    def has_pairs(t: str) -> bool:
        return table_exists(con, "staging", t) and {"id_norm", "name"} <= _columns(con, t)

    if hukou_unchanged:
        con.execute("DELETE FROM linked.known_person WHERE NOT from_hukou")
        if has_pairs("roster"):
            con.execute("""INSERT INTO linked.known_person
                SELECT DISTINCT r.id_norm, r.name, false FROM staging.roster r
                ANTI JOIN linked.known_person k ON k.id = r.id_norm AND k.name IS NOT DISTINCT FROM r.name
                WHERE r.id_norm IS NOT NULL""")
        return
    parts = [f"SELECT id_norm AS id, name, {str(t == 'hukou').lower()} AS from_hukou FROM staging.{t} "
             "WHERE id_norm IS NOT NULL" for t in ("hukou", "roster") if has_pairs(t)]
    con.execute("CREATE OR REPLACE TABLE linked.known_person AS "
                + (f"SELECT id, name, bool_or(from_hukou) AS from_hukou FROM ({' UNION ALL '.join(parts)}) "
                   "GROUP BY ALL" if parts
                   else "SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS name, NULL::BOOLEAN AS from_hukou WHERE false"))


def build_repair_requests(con: duckdb.DuckDBPyConnection, tables: list[str], keep: frozenset[str] = frozenset()) -> None:
    """linked.link_request (record_table, id_key, id_status, name): every table's distinct repair keys that
    could be a request whoever is on the roster (damaged IDs, and valid IDs under an area code with an
    old/new alias that are not in tonight's hukou extract). Rows of the tables in ``keep`` are kept from the
    last night (their staging is unchanged, linkage/incremental.py); the others are rebuilt. Whether a valid
    ID is a request also depends on the roster (linked.known_person), which build_repairs applies afterwards.

    Why hukou is applied here and the roster later: a valid ID in hukou is a known person whatever the
    roster says, and a table's requests are only kept from an earlier night when hukou is unchanged (a
    changed hukou links every table in full, linkage/incremental.py plan). Nearly every ID of the city is
    valid under an area code with a history (荆门's districts were renamed), so without this the table
    would hold millions of valid IDs that can never be requests (2.2 M at scale 1, and all of hukou's)."""
    if not table_exists(con, "linked", "link_request"):
        con.execute("CREATE TABLE linked.link_request (record_table VARCHAR, id_key VARCHAR, id_status VARCHAR,"
                    " name VARCHAR)")
    con.execute("DELETE FROM linked.link_request WHERE NOT list_contains(?::VARCHAR[], record_table)",
                [sorted(keep)])
    not_in_hukou = ("\n                   AND id_norm NOT IN (SELECT id_norm FROM staging.hukou WHERE id_norm IS NOT NULL)"
                    if table_exists(con, "staging", "hukou") and "id_norm" in _columns(con, "hukou") else "")
    for t in tables:
        if t in keep or not repairable(con, t):
            continue
        con.execute(f"""
            INSERT INTO linked.link_request
            SELECT DISTINCT '{t}', {id_key()} AS id_key, id_status, coalesce(CAST(name AS VARCHAR), '') AS name
            FROM staging.{t}
            WHERE id_status IN ('bad_check', 'excel_damaged')
               OR (id_status IN ('valid', 'upgraded15')
                   AND substr(id_norm, 1, 6) IN (SELECT code FROM linked.id_area_alias){not_in_hukou})""")


def build_repairs(con: duckdb.DuckDBPyConnection, tables: list[str], keep: frozenset[str] = frozenset()) -> int:
    """linked.known_person, linked.id_area_alias and linked.id_repair for the staged tables given (the
    requests of the tables in ``keep`` are taken from the last night's linked.link_request; a non-empty
    ``keep`` means an incremental link, on the hukou known_person was built from: linkage/incremental.py)."""
    build_known_persons(con, hukou_unchanged=bool(keep))
    con.execute((SQL / "id_repair_areas.sql").read_text(encoding="utf-8"))
    build_repair_requests(con, tables, keep)
    # A valid ID is a request only when it belongs to nobody known (for a valid ID, id_key = id_norm).
    con.execute(f"""CREATE OR REPLACE TEMP TABLE repair_request AS
        SELECT DISTINCT id_key, id_status, name, {EXCEL_PREFIX.format(k='id_key')} AS excel_prefix
        FROM linked.link_request
        WHERE list_contains(?::VARCHAR[], record_table)
          AND NOT (id_status IN ('valid', 'upgraded15') AND id_key IN (SELECT id FROM linked.known_person))""",
                [[t for t in tables if repairable(con, t)]])
    con.execute((SQL / "id_repair_candidates.sql").read_text(encoding="utf-8"))
    # Candidates that are known persons (an Excel prefix fits every known ID that starts with it).
    con.execute("""CREATE OR REPLACE TEMP TABLE repair_fit AS
        SELECT c.id_key, k.id AS cand_id, c.detail, k.name AS person_name
        FROM repair_candidate c JOIN linked.known_person k ON k.id = c.cand_id
        WHERE c.detail NOT LIKE 'Excel%'
        UNION ALL
        SELECT c.id_key, k.id, c.detail, k.name
        FROM repair_candidate c JOIN linked.known_person k ON substr(k.id, 1, 15) = c.cand_id
        WHERE c.detail LIKE 'Excel%'""")
    pairs = con.execute("""SELECT DISTINCT q.name, f.person_name FROM repair_request q
                           JOIN repair_fit f USING (id_key)""").fetchall()
    verdicts = agreement_frame(pairs, "person_name")
    con.register("repair_verdicts", verdicts)
    try:
        con.execute((SQL / "id_repair.sql").read_text(encoding="utf-8").format(
            repaired_weight=REPAIRED_WEIGHT, excel_weight=EXCEL_WEIGHT))
    finally:
        con.unregister("repair_verdicts")
    return con.execute("SELECT count(*) FROM linked.id_repair WHERE repaired_id IS NOT NULL").fetchone()[0]
