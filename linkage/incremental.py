"""Incremental link: when only the roster changed, relink only the records whose link can have changed.

Why the delta is exact. For a person table T, everything linkage/link.py writes about one source record
(its rows in linked.T, linked.review and linked.unlinked) is a function of

  (a) the record itself (its row in staging.T);
  (b) the linked.household_person rows whose person_id is the record's id_norm (exact links, the name guard);
  (c) the linked.id_repair row of the record's repair key (id_key, name, id_status), and the
      household_person rows whose person_id is that row's repaired_id (repaired links, unlinked reasons);
  (d) whether its id_norm is in linked.known_person (unlinked: "belongs to nobody known");
  (e) pure functions (name agreement, the SQL of linkage/sql/), covered by the code version below.

Records are identified by (_file, _row) (an exploded table has several rows per record: all of them are
relinked together). When staging.T is unchanged (same content fingerprint) and the code version is the
same, a record's output changes only if (b), (c) or (d) changed. So, with the previous night's
household_person, known_person and id_repair kept aside before they are rebuilt (``keep_previous``),
``diff_previous`` builds

  inc_person  person_ids with a household_person row added, removed or changed (symmetric difference);
  inc_id      ids that joined or left known_person (only the roster's own pairs are replaced in it: hukou
              is the same, or the link would be full);
  inc_key     repair keys whose id_repair row changed, or whose repaired_id (old or new) is in inc_person;

and ``relink_table`` deletes every output row of the records that touch one of them (inc_aff_records) and
links those records again with the same SQL as a full link (linkage/sql/link_table.sql, name_guard.sql,
unlinked.sql on inc_records instead of staging.T). Every other record's output is unchanged by the
argument above, so linked.T equals what a full link would build, as a set of rows (and as a multiset).

id_repair itself is rebuilt in full each night, from linked.link_request: each table's candidate repair
keys, kept for the tables whose staging did not change (the only per-table scan a full link needs; the
keys already leave out valid IDs found in hukou, which is the same as last night's whenever a table is
linked by delta).

The probabilistic fallback (fuzzy_link_tables) depends on the whole candidate population (hukou and the
roster members without a hukou row, their districts, the number of candidates), so it is run again in
full for those tables (its hukou candidates are kept in the warehouse while hukou, the districts and this
code do not change: linkage/fuzzy.py, _build_candidates); the records it linked last night are relinked
as part of the delta (their unlinked rows come back, then add_fuzzy_links removes those it links
tonight), so it sees exactly the records a full link would give it.

A table is linked in full when: there is no state from an earlier link (first night, or a night that
stopped half-way: the state is forgotten at the start and saved at the end), the code or configuration
version changed, hukou changed (every household's relatives may change: a delta would not be cheaper),
or the table's own staging changed. The choice and its reason are returned per table.

Every intermediate is a temp table prefixed ``inc_`` so it can be inspected on the connection.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from crosscheck.warehouse import keep_fingerprint, kept_fingerprint, table_columns, table_exists

HERE = Path(__file__).parent
STATE = "linked.link_state"
# The tables a delta needs from the previous night, besides linked.<table>.
PREVIOUS = ("household_person", "known_person", "id_repair", "link_request", "review", "unlinked", "fuzzy_review")


@dataclass
class Plan:
    fingerprints: dict[str, str]
    version: str
    modes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


def code_version(fuzzy_tables) -> str:
    """Everything besides the data that decides a link: linkage's code, SQL, name tables and model, the
    ID macros, and which tables get the probabilistic fallback."""
    h = hashlib.sha256(repr(sorted(fuzzy_tables)).encode())
    files = sorted([*HERE.glob("*.py"), *HERE.glob("sql/*.sql"), *HERE.glob("*.yaml"), *HERE.glob("model/*"),
                    HERE.parent / "crosscheck" / "sql" / "id_macros.sql"])
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def staging_fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """Content fingerprint of staging.<table>: its columns, row count and the sum of every row's hash
    (order-insensitive, so a reload of the same rows in another order is the same table).

    Hashing every row costs about 2.4 s a night at scale 1 (0.7 s for social insurance's 5.7 M rows), and
    on an incremental night only the roster's table is new. So the fingerprint is kept in the table's
    comment with its row count and columns (crosscheck/warehouse.py ``keep_fingerprint``) and used again
    while the table has the same count and columns. The load replaces a table it stages (the new table has
    no comment), a row deleted or added changes the count, and checks/validate.py forgets the fingerprint
    of a table it quarantines rows from; nothing updates staging rows in place
    (tests/test_linkage_incremental.py holds the code to that)."""
    cols = table_columns(con, "staging", table)
    n = con.execute(f'SELECT count(*) FROM staging."{table}"').fetchone()[0]
    kept = kept_fingerprint(con, "staging", table, n, cols)
    if kept is not None:
        return kept
    h = con.execute(f'SELECT coalesce(sum(hash(t)::HUGEINT), 0) FROM staging."{table}" t').fetchone()[0]
    fingerprint = hashlib.sha256(repr((cols, n, str(h))).encode()).hexdigest()[:16]
    keep_fingerprint(con, "staging", table, fingerprint, n, cols)
    return fingerprint


def _previous_state(con) -> dict[str, tuple[str, str]]:
    if not table_exists(con, "linked", "link_state"):
        return {}
    return {t: (fp, v) for t, fp, v in con.execute(f"SELECT table_name, fingerprint, version FROM {STATE}").fetchall()}


def plan(con: duckdb.DuckDBPyConnection, tables: list[str], fuzzy_tables, *, full: bool = False) -> Plan:
    """Fingerprint tonight's inputs and choose, per table, a full link or a delta (never with ``full``)."""
    inputs = sorted({"hukou", *tables} | ({"roster"} if table_exists(con, "staging", "roster") else set()))
    p = Plan({t: staging_fingerprint(con, t) for t in inputs}, code_version(fuzzy_tables))
    previous = _previous_state(con)
    missing = [t for t in PREVIOUS if not table_exists(con, "linked", t)]
    for t in tables:
        if full:
            reason = "full night requested"
        elif not previous:
            reason = "no earlier link recorded"
        elif any(v != p.version for _, v in previous.values()):
            reason = "linkage code or configuration changed"
        elif missing:
            reason = "earlier link tables missing"
        elif previous.get("hukou", ("",))[0] != p.fingerprints["hukou"]:
            reason = "hukou changed"
        elif previous.get(t, ("",))[0] != p.fingerprints[t] or not table_exists(con, "linked", t):
            reason = "staging changed"
        elif previous.get("roster", ("",))[0] == p.fingerprints.get("roster"):
            reason = None
            p.reasons[t] = "nothing changed"
        else:
            reason = None
            p.reasons[t] = "roster changed"
        p.modes[t] = "full" if reason else "delta"
        if reason:
            p.reasons[t] = reason
    return p


def forget_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {STATE} (table_name VARCHAR, fingerprint VARCHAR, version VARCHAR,"
                " linked_at TIMESTAMP)")


def save_state(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    forget_state(con)
    con.executemany(f"INSERT INTO {STATE} VALUES (?, ?, ?, current_timestamp)",
                    [(t, fp, p.version) for t, fp in p.fingerprints.items()])


# ---------------------------------------------------------------- named steps
def keep_previous(con: duckdb.DuckDBPyConnection, tables: list[str], delta: list[str], fuzzy_tables) -> None:
    """Set last night's roster-dependent tables aside (inc_old_*) and drop the review / unlinked rows of
    every table that is not linked by delta tonight (a full link writes them again)."""
    con.execute("CREATE OR REPLACE TEMP TABLE inc_old_hp AS "
                "SELECT household_id, person_id, person_name, kin, hukou_no FROM linked.household_person")
    # known_person keeps its hukou pairs on a delta night (linkage/repair.py build_known_persons): only the
    # ids of the roster's own pairs can join or leave it
    con.execute("CREATE OR REPLACE TEMP TABLE inc_old_kp AS SELECT DISTINCT id FROM linked.known_person "
                "WHERE NOT from_hukou")
    con.execute("CREATE OR REPLACE TEMP TABLE inc_old_ir AS SELECT * FROM linked.id_repair")
    con.execute("DELETE FROM linked.review WHERE NOT list_contains(?::VARCHAR[], record_table)", [delta])
    con.execute("DELETE FROM linked.unlinked WHERE NOT list_contains(?::VARCHAR[], record_table)", [delta])
    con.execute("DELETE FROM linked.fuzzy_review WHERE NOT list_contains(?::VARCHAR[], record_table)",
                [[t for t in tables if t in fuzzy_tables]])


def diff_previous(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """inc_person, inc_id, inc_key: what changed between last night's and tonight's household persons,
    known persons and ID repairs (see the module docstring).

    The household persons are compared household by household first (inc_hh: the households whose row
    count or sum of row hashes differs), and row by row only within those: the same result as comparing
    all 0.7 M rows of scale 1 (1.3 s) unless two different sets of one household's rows had the same
    count and the same sum of 64-bit hashes. The known persons' ids can only change among the roster's
    own pairs (hukou's stay, linkage/repair.py build_known_persons): an id joined or left when it is not
    in hukou and is in exactly one of last night's and tonight's roster pairs."""
    row_hash = "sum(hash(household_id, person_id, person_name, kin, hukou_no)::HUGEINT)"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE inc_hh AS
        WITH old AS (SELECT household_id, count(*) AS n, {row_hash} AS h FROM inc_old_hp GROUP BY household_id),
        new AS (SELECT household_id, count(*) AS n, {row_hash} AS h FROM linked.household_person
                GROUP BY household_id)
        SELECT household_id FROM old FULL JOIN new USING (household_id)
        WHERE old.n IS DISTINCT FROM new.n OR old.h IS DISTINCT FROM new.h""")
    con.execute("""CREATE OR REPLACE TEMP TABLE inc_hp_change AS
        WITH old AS (SELECT * FROM inc_old_hp SEMI JOIN inc_hh USING (household_id)),
        new AS (SELECT household_id, person_id, person_name, kin, hukou_no FROM linked.household_person
                SEMI JOIN inc_hh USING (household_id))
        (SELECT 'removed' AS change, * FROM (SELECT * FROM old EXCEPT ALL SELECT * FROM new))
        UNION ALL
        (SELECT 'added', * FROM (SELECT * FROM new EXCEPT ALL SELECT * FROM old))""")
    con.execute("CREATE OR REPLACE TEMP TABLE inc_person AS "
                "SELECT DISTINCT person_id FROM inc_hp_change WHERE person_id IS NOT NULL")
    con.execute("""CREATE OR REPLACE TEMP TABLE inc_id AS
        WITH new AS (SELECT DISTINCT id FROM linked.known_person WHERE NOT from_hukou),
        either AS ((SELECT id FROM inc_old_kp EXCEPT SELECT id FROM new)
                   UNION (SELECT id FROM new EXCEPT SELECT id FROM inc_old_kp))
        SELECT e.id FROM either e
        ANTI JOIN (SELECT id FROM linked.known_person WHERE from_hukou) h ON h.id = e.id""")
    con.execute("""CREATE OR REPLACE TEMP TABLE inc_key AS
        WITH changed AS (
            (SELECT * FROM inc_old_ir EXCEPT ALL SELECT * FROM linked.id_repair)
            UNION ALL
            (SELECT * FROM linked.id_repair EXCEPT ALL SELECT * FROM inc_old_ir)),
        via_person AS (
            SELECT id_key, name, id_status FROM inc_old_ir WHERE repaired_id IN (SELECT person_id FROM inc_person)
            UNION ALL
            SELECT id_key, name, id_status FROM linked.id_repair
            WHERE repaired_id IN (SELECT person_id FROM inc_person))
        SELECT DISTINCT id_key, name, id_status FROM (
            SELECT id_key, name, id_status FROM changed UNION ALL SELECT * FROM via_person)""")
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("inc_person", "inc_id", "inc_key")}


def relink_table(con: duckdb.DuckDBPyConnection, table: str, fuzzy: bool = False) -> int:
    """Relink the records of an unchanged staging.<table> that touch inc_person / inc_id / inc_key (and,
    for a fuzzy table, those fuzzy-linked last night); every other row of linked.<table> stays."""
    from linkage.link import link_table            # linkage.link imports this module
    from linkage.repair import id_key, repairable

    repair_match = ""
    if repairable(con, table):
        repair_match = (f"OR ({id_key('r')}, coalesce(CAST(r.name AS VARCHAR), ''), r.id_status) IN "
                        "(SELECT (id_key, name, id_status) FROM inc_key)")
    fuzzy_prev = (f"UNION SELECT _file, _row FROM linked.{table} WHERE link_method = 'fuzzy'" if fuzzy else "")
    # inc_aff_records: the records (by _file, _row) whose output may change tonight.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE inc_aff_records AS
        SELECT DISTINCT r._file, r._row FROM staging.{table} r
        WHERE r.id_norm IN (SELECT person_id FROM inc_person)
           OR r.id_norm IN (SELECT id FROM inc_id)
           {repair_match}
        {fuzzy_prev}""")
    # Their rows in the outputs go; then they are linked again exactly as a full link would.
    con.execute(f"DELETE FROM linked.{table} t USING inc_aff_records a WHERE t._file = a._file AND t._row = a._row")
    for out in ("review", "unlinked"):
        con.execute(f"DELETE FROM linked.{out} t USING inc_aff_records a "
                    f"WHERE t.record_table = ? AND t._file = a._file AND t._row = a._row", [table])
    con.execute(f"""CREATE OR REPLACE TEMP TABLE inc_records AS
        SELECT r.* FROM staging.{table} r SEMI JOIN inc_aff_records a ON r._file = a._file AND r._row = a._row""")
    link_table(con, table, records="inc_records", target="inc_links")
    con.execute(f"INSERT INTO linked.{table} BY NAME SELECT * FROM inc_links")
    return con.execute(f"SELECT count(*) FROM linked.{table}").fetchone()[0]
