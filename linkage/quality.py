"""Link quality against planted truth: how well did tonight's linkage tie records to household persons?

The synthetic generator writes ``<landing>.truth/links.parquet``: one row per person-bearing delivered
row (``source, table, delivery_date, file, row, owner_seq, true_id, defect``). This module joins every
record of the deliveries actually loaded that night (staged in ``staging.<table>`` or set aside in
``audit.quarantine``) with that truth and measures, per source table and per link method:

- links made and how many are right (``person_id = true_id``): precision;
- records that should be linked (their true person is a household person) and how many are: recall;
- the review band (``linked.review``: ID matches set aside because the names disagree; and
  ``linked.fuzzy_review``: records without an ID whose best candidate fell below acceptance), split into
  "truly the roster person" and "truly someone else";
- records left unlinked that should have been linked, by the truth's defect label(s) and the pipeline's
  view (quarantined and why, ID status in staging, set aside for review, person missing from
  ``linked.household_person`` ...);
- false links, by defect.

Only counts and labels leave this module: never an ID, never a name (quarantine reasons are reduced to
their shape: values and numbers are removed).

A truth ``table`` is tied to a staging table through config/sources.yaml, not by name: the source's
table whose ``files`` glob matches the truth row's file (an exploded table such as property → its
``explode.table``), else a staging table of the same name in that source.
"""
from __future__ import annotations

import fnmatch
import json
import re
from datetime import date, datetime
from pathlib import Path

import duckdb

from crosscheck.safety import mask_ids, write_private_text
from crosscheck.settings import SourcesConfig, load_sources
from crosscheck.warehouse import table_columns, table_exists

ROSTER = "roster"  # the table linked.household_person is built from (linkage/sql/household_person.sql)
NO_DEFECT = "none"


# --------------------------------------------------------------------------------------------------
# Table mapping (config-driven)

def _table_map(sources: SourcesConfig) -> list[dict]:
    """One entry per delivered table: source, spec (delivered table name, also audit.quarantine's
    table_name), staged (the staging table holding its person rows), files glob."""
    out = []
    for source, sspec in sources.sources.items():
        for name, tspec in sspec.tables.items():
            if tspec.explode is not None:
                staged = tspec.explode.table
            elif any(col.role == "id_number" for col in tspec.columns.values()):
                staged = name
            else:
                continue
            out.append({"source": source, "spec": name, "staged": staged, "files": tspec.files})
    return out


def _resolve_truth_table(tmap: list[dict], source: str, table: str, file: str) -> str | None:
    """The staging table that holds a truth row of (source, table, file), or None."""
    mine = [t for t in tmap if t["source"] == source]
    by_glob = {t["staged"] for t in mine if fnmatch.fnmatch(file, t["files"])}
    if len(by_glob) == 1:
        return by_glob.pop()
    by_name = {t["staged"] for t in mine if table in (t["staged"], t["spec"])}
    if len(by_name) == 1:
        return by_name.pop()
    if len(mine) == 1 and not by_glob:
        return mine[0]["staged"]
    return None


# --------------------------------------------------------------------------------------------------
# Labels without values

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff·•]+")
_NUMBERISH = re.compile(r"[0-9０-９][0-9０-９Xx\-:/.．, ]*[0-9０-９Xx]|[0-9０-９]")


def _vocabulary(sources: SourcesConfig) -> set[str]:
    words = set()
    for sspec in sources.sources.values():
        for name, tspec in sspec.tables.items():
            words.add(name)
            for delivered, col in tspec.columns.items():
                words.update((delivered, col.name))
    return words


def reason_label(reason: str | None, vocabulary: set[str] = frozenset()) -> str:
    """The shape of a quarantine reason: the English part when there is one, with every value, number
    and name removed (column names from the config are kept)."""
    text = (reason or "").strip()
    if not text:
        return "(no reason)"
    english = re.findall(r"\(([^()]*[A-Za-z][^()]*)\)\s*$", text)
    text = english[-1] if english else text
    text = re.sub(r"「[^」]*」", "「…」", text)
    text = re.sub(r"\S+\.(csv|xlsx|jsonl|txt)\b", "<file>", text)
    text = _NUMBERISH.sub("#", text)
    text = _CJK_RUN.sub(lambda m: m.group(0) if m.group(0) in vocabulary else "…", text)
    return mask_ids(re.sub(r"\s+", " ", text).strip())


# --------------------------------------------------------------------------------------------------
# Measurement

def _columns(con, schema: str, table: str) -> set[str]:
    return set(table_columns(con, schema, table))


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def _records(con, sql: str, params=None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, (v.isoformat() if isinstance(v, date) else v for v in row)))
            for row in cur.fetchall()]


def link_quality(con: duckdb.DuckDBPyConnection, truth_dir: Path, run_date,
                 sources: SourcesConfig | None = None) -> dict:
    """Measure the night's linkage against ``truth_dir/links.parquet``; counts and labels only."""
    sources = sources or load_sources()
    if isinstance(run_date, datetime):
        run_date = run_date.date()
    elif not isinstance(run_date, date):
        run_date = date.fromisoformat(str(run_date))
    truth_path = Path(truth_dir) / "links.parquet"
    if not truth_path.exists():
        raise FileNotFoundError(f"no truth file at {truth_path}")
    tmap = _table_map(sources)
    vocabulary = _vocabulary(sources)
    spec_to_staged = {(t["source"], t["spec"]): t["staged"] for t in tmap}
    staged_to_source = {t["staged"]: t["source"] for t in tmap}
    person_tables = sorted({t["staged"] for t in tmap if table_exists(con, "staging", t["staged"])})
    temp = ["lq_truth_raw", "lq_map", "lq_truth", "lq_staged", "lq_quar", "lq_scope", "lq_links",
            "lq_review", "lq_hh", "lq_members", "lq_rec"]
    try:
        return _measure(con, truth_path, run_date, tmap, vocabulary, spec_to_staged, staged_to_source,
                        person_tables)
    finally:
        for t in temp:
            con.execute(f"DROP TABLE IF EXISTS temp.{t}")


def _measure(con, truth_path, run_date, tmap, vocabulary, spec_to_staged, staged_to_source,
             person_tables) -> dict:
    # Truth, with each (source, table, file) resolved to its staging table.
    con.execute("""CREATE OR REPLACE TEMP TABLE lq_truth_raw AS
        SELECT CAST(source AS VARCHAR) AS source, CAST("table" AS VARCHAR) AS truth_table,
               CAST(delivery_date AS DATE) AS d, CAST(file AS VARCHAR) AS file, CAST("row" AS BIGINT) AS "row",
               CAST(coalesce(owner_seq, 1) AS BIGINT) AS owner_seq,
               coalesce(CAST(true_id AS VARCHAR), '') AS true_id,
               coalesce(nullif(CAST(defect AS VARCHAR), ''), ?) AS defect
        FROM read_parquet(?)""", [NO_DEFECT, str(truth_path)])
    combos = con.execute("SELECT DISTINCT source, truth_table, file FROM lq_truth_raw").fetchall()
    mapping = [(s, t, f, _resolve_truth_table(tmap, s, t, f)) for s, t, f in combos]
    unmapped = sorted({f"{s}/{t}" for s, t, f, m in mapping if m is None})
    con.execute("CREATE OR REPLACE TEMP TABLE lq_map (source VARCHAR, truth_table VARCHAR, file VARCHAR,"
                " tbl VARCHAR)")
    if mapping:
        con.executemany("INSERT INTO lq_map VALUES (?, ?, ?, ?)", mapping)
    con.execute("""CREATE OR REPLACE TEMP TABLE lq_truth AS
        SELECT m.tbl, t.* FROM lq_truth_raw t JOIN lq_map m USING (source, truth_table, file)
        WHERE m.tbl IS NOT NULL""")

    # Staged records (the roster too: its members define the households).
    staged_tables = list(person_tables)
    if table_exists(con, "staging", ROSTER) and ROSTER not in staged_tables:
        staged_tables.append(ROSTER)
    parts = []
    for t in staged_tables:
        cols = _columns(con, "staging", t)
        seq = "CAST(owner_seq AS BIGINT)" if "owner_seq" in cols else "CAST(1 AS BIGINT)"
        status = "id_status" if "id_status" in cols else "CAST(NULL AS VARCHAR)"
        parts.append(f"SELECT '{t}' AS tbl, CAST(_file AS VARCHAR) AS file, CAST(_delivery_date AS DATE) AS d,"
                     f" CAST(_row AS BIGINT) AS \"row\", {seq} AS owner_seq, CAST(id_norm AS VARCHAR) AS id_norm,"
                     f" coalesce(CAST({status} AS VARCHAR), 'unknown') AS id_status FROM staging.{t}")
    con.execute("CREATE OR REPLACE TEMP TABLE lq_staged AS " + (" UNION ALL ".join(parts) if parts else
                "SELECT NULL::VARCHAR tbl, NULL::VARCHAR file, NULL::DATE d, NULL::BIGINT \"row\", "
                "NULL::BIGINT owner_seq, NULL::VARCHAR id_norm, NULL::VARCHAR id_status WHERE false"))

    # Quarantined records of the night (an exploded table's row stands for every owner in it).
    con.execute("CREATE OR REPLACE TEMP TABLE lq_quar (tbl VARCHAR, file VARCHAR, d DATE, \"row\" BIGINT,"
                " reason VARCHAR)")
    if table_exists(con, "audit", "quarantine"):
        rows = con.execute("SELECT DISTINCT source, table_name, file_name, CAST(delivery_date AS DATE), row_no,"
                           " reason FROM audit.quarantine WHERE run_date = ?", [run_date]).fetchall()
        keep = []
        for source, table, file, d, row, reason in rows:
            tbl = spec_to_staged.get((source, table)) or (table if table == ROSTER else None)
            if tbl is not None:
                keep.append((tbl, file, d, row, reason_label(reason, vocabulary)))
        if keep:
            con.executemany("INSERT INTO lq_quar VALUES (?, ?, ?, ?, ?)", keep)

    # The night's deliveries: whatever was staged or quarantined, plus files the load logged (a rejected
    # file stages nothing; its rows are then "not staged").
    con.execute("""CREATE OR REPLACE TEMP TABLE lq_scope AS
        SELECT tbl, file, d, max(status) AS load_status FROM (
            SELECT DISTINCT tbl, file, d, CAST(NULL AS VARCHAR) AS status FROM lq_staged
            UNION ALL SELECT DISTINCT tbl, file, d, NULL FROM lq_quar) GROUP BY ALL""")
    if table_exists(con, "audit", "load_files") and {"run_date", "source", "table_name", "file_name",
                                                       "delivery_date", "status"} <= _columns(con, "audit", "load_files"):
        logged = con.execute("SELECT source, table_name, file_name, CAST(delivery_date AS DATE), status"
                             " FROM audit.load_files WHERE run_date = ? AND delivery_date IS NOT NULL",
                             [run_date]).fetchall()
        for source, table, file, d, status in logged:
            tbl = spec_to_staged.get((source, table)) or (table if table == ROSTER else None)
            if tbl is None:
                continue
            n = con.execute("SELECT count(*) FROM lq_scope WHERE tbl = ? AND file = ? AND d = ?",
                            [tbl, file, d]).fetchone()[0]
            if n:
                con.execute("UPDATE lq_scope SET load_status = ? WHERE tbl = ? AND file = ? AND d = ?",
                            [status, tbl, file, d])
            else:
                con.execute("INSERT INTO lq_scope VALUES (?, ?, ?, ?)", [tbl, file, d, status])

    # Links made (one per record and person, whatever the number of households) and the review band.
    con.execute("CREATE OR REPLACE TEMP TABLE lq_links (tbl VARCHAR, file VARCHAR, d DATE, \"row\" BIGINT,"
                " owner_seq BIGINT, person_id VARCHAR, method VARCHAR)")
    for t in person_tables:
        if not table_exists(con, "linked", t):
            continue
        cols = _columns(con, "linked", t)
        seq = "CAST(owner_seq AS BIGINT)" if "owner_seq" in cols else "CAST(1 AS BIGINT)"
        d = "CAST(_delivery_date AS DATE)" if "_delivery_date" in cols else "CAST(NULL AS DATE)"
        method = "CAST(link_method AS VARCHAR)" if "link_method" in cols else "'id_exact'"
        con.execute(f"""INSERT INTO lq_links SELECT DISTINCT '{t}', CAST(_file AS VARCHAR), {d},
                        CAST(_row AS BIGINT), {seq}, CAST(person_id AS VARCHAR), coalesce({method}, 'unknown')
                        FROM linked.{t}""")
    # A linked table without _delivery_date: its records are the staged ones (one delivery per file a night).
    con.execute("""UPDATE lq_links l SET d = s.d FROM (SELECT DISTINCT tbl, file, d FROM lq_staged) s
                   WHERE l.d IS NULL AND s.tbl = l.tbl AND s.file = l.file""")
    con.execute("CREATE OR REPLACE TEMP TABLE lq_review (tbl VARCHAR, file VARCHAR, d DATE, \"row\" BIGINT,"
                " owner_seq BIGINT, person_id VARCHAR)")
    review_unmatched = 0
    if table_exists(con, "linked", "review"):
        con.execute("""INSERT INTO lq_review
            SELECT DISTINCT r.record_table, s.file, s.d, s."row", s.owner_seq, CAST(r.person_id AS VARCHAR)
            FROM linked.review r JOIN lq_staged s
              ON s.tbl = r.record_table AND s.file = r._file AND s."row" = r._row AND s.id_norm = r.person_id""")
        review_unmatched = con.execute("""SELECT count(*) FROM linked.review r WHERE NOT EXISTS (
            SELECT 1 FROM lq_staged s WHERE s.tbl = r.record_table AND s.file = r._file AND s."row" = r._row
              AND s.id_norm = r.person_id)""").fetchone()[0]
    if table_exists(con, "linked", "fuzzy_review"):     # records without an ID, best candidate below accept
        con.execute("""INSERT INTO lq_review
            SELECT DISTINCT f.record_table, s.file, s.d, s."row", s.owner_seq, CAST(f.person_id AS VARCHAR)
            FROM linked.fuzzy_review f JOIN lq_staged s
              ON s.tbl = f.record_table AND s.file = f._file AND s."row" = f._row""")

    # Household persons as linked, and the roster's true members (whose roster ID may be damaged).
    if table_exists(con, "linked", "household_person"):
        con.execute("CREATE OR REPLACE TEMP TABLE lq_hh AS SELECT DISTINCT CAST(person_id AS VARCHAR) AS person_id"
                    " FROM linked.household_person WHERE person_id IS NOT NULL")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE lq_hh (person_id VARCHAR)")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE lq_members AS
        SELECT DISTINCT t.true_id AS person_id FROM lq_truth t JOIN lq_scope USING (tbl, file, d)
        WHERE t.tbl = '{ROSTER}' AND t.true_id <> ''""")

    # Every in-scope truth record with what happened to it.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE lq_rec AS
        WITH rec AS (
            SELECT t.tbl, t.file, t.d, t."row", t.owner_seq, t.true_id, t.defect, sc.load_status,
                   s.id_norm, s.id_status, s.tbl IS NOT NULL AS staged, q.reason AS quarantine_reason,
                   hh.person_id IS NOT NULL AS in_hh, mm.person_id IS NOT NULL AS true_member
            FROM lq_truth t
            JOIN lq_scope sc USING (tbl, file, d)
            LEFT JOIN lq_hh hh ON hh.person_id = t.true_id AND t.true_id <> ''
            LEFT JOIN lq_members mm ON mm.person_id = t.true_id AND t.true_id <> ''
            LEFT JOIN lq_staged s USING (tbl, file, d, "row", owner_seq)
            LEFT JOIN (SELECT tbl, file, d, "row", min(reason) AS reason FROM lq_quar GROUP BY ALL) q
                   USING (tbl, file, d, "row")
            WHERE t.tbl <> '{ROSTER}'
        ),
        lk AS (
            SELECT r.tbl, r.file, r.d, r."row", r.owner_seq,
                   count(*) AS n_links,
                   bool_or(l.person_id = r.true_id) AS correct,
                   min(l.method) FILTER (WHERE l.person_id = r.true_id) AS correct_method
            FROM rec r JOIN lq_links l USING (tbl, file, d, "row", owner_seq)
            GROUP BY ALL
        ),
        rv AS (
            SELECT r.tbl, r.file, r.d, r."row", r.owner_seq, bool_or(v.person_id = r.true_id) AS review_true
            FROM rec r JOIN lq_review v USING (tbl, file, d, "row", owner_seq)
            GROUP BY ALL
        ),
        linked_people AS (
            SELECT DISTINCT r.tbl, r.true_id FROM rec r JOIN lk USING (tbl, file, d, "row", owner_seq)
            WHERE lk.correct
        )
        SELECT rec.*,
               rec.quarantine_reason IS NOT NULL OR NOT rec.staged AS lost,
               lp.true_id IS NOT NULL AS person_linked,
               coalesce(lk.n_links, 0) AS n_links, coalesce(lk.correct, false) AS correct, lk.correct_method,
               rv.review_true IS NOT NULL AS in_review, coalesce(rv.review_true, false) AS review_true,
               rec.quarantine_reason IS NOT NULL AND rec.defect LIKE '%duplicate_row%' AS dropped_duplicate,
               (rec.in_hh OR rec.true_member) AND NOT (rec.quarantine_reason IS NOT NULL
                   AND rec.defect LIKE '%duplicate_row%') AS should
        FROM rec
        LEFT JOIN lk USING (tbl, file, d, "row", owner_seq)
        LEFT JOIN rv USING (tbl, file, d, "row", owner_seq)
        LEFT JOIN linked_people lp USING (tbl, true_id)""")

    # Per table.
    tables = _records(con, """
        SELECT tbl AS "table", count(*) AS records,
               count(*) FILTER (WHERE true_id <> '') AS person_records,
               count(*) FILTER (WHERE staged) AS staged,
               count(*) FILTER (WHERE quarantine_reason IS NOT NULL) AS quarantined,
               count(*) FILTER (WHERE dropped_duplicate) AS dropped_duplicates,
               count(*) FILTER (WHERE should) AS should_link,
               count(*) FILTER (WHERE should AND correct) AS found,
               count(*) FILTER (WHERE should AND NOT correct) AS missed,
               count(*) FILTER (WHERE should AND NOT correct AND lost) AS lost_before_linking,
               count(*) FILTER (WHERE should AND NOT lost) AS should_link_staged,
               count(*) FILTER (WHERE n_links > 0) AS linked_records,
               count(*) FILTER (WHERE in_review) AS review_records
        FROM lq_rec GROUP BY ALL ORDER BY ALL""")
    link_rows = _records(con, """
        SELECT r.tbl AS "table", l.method, count(*) AS links,
               count(*) FILTER (WHERE l.person_id = r.true_id) AS correct
        FROM lq_rec r JOIN lq_links l USING (tbl, file, d, "row", owner_seq)
        GROUP BY ALL ORDER BY ALL""")
    found_by = {(r["table"], r["method"]): r["n"] for r in _records(con, """
        SELECT tbl AS "table", correct_method AS method, count(*) AS n FROM lq_rec
        WHERE should AND correct GROUP BY ALL""")}
    per_table_links: dict[str, list[int]] = {}
    methods = []
    should_by_table = {t["table"]: t["should_link"] for t in tables}
    for r in link_rows:
        acc = per_table_links.setdefault(r["table"], [0, 0])
        acc[0] += r["links"]
        acc[1] += r["correct"]
        found = found_by.get((r["table"], r["method"]), 0)
        methods.append({"source": staged_to_source.get(r["table"], ""), "table": r["table"],
                        "method": r["method"], "links": r["links"], "correct": r["correct"],
                        "false": r["links"] - r["correct"], "precision": _ratio(r["correct"], r["links"]),
                        "found": found, "recall_share": _ratio(found, should_by_table.get(r["table"], 0))})
    for t in tables:
        links, correct = per_table_links.get(t["table"], [0, 0])
        t["source"] = staged_to_source.get(t["table"], "")
        t.update(links=links, correct_links=correct, false_links=links - correct,
                 precision=_ratio(correct, links), recall=_ratio(t["found"], t["should_link"]),
                 missed_in_linking=t["missed"] - t["lost_before_linking"],
                 recall_staged=_ratio(t["found"], t["should_link_staged"]))
    tables = [{"source": t.pop("source"), **t} for t in tables]

    totals = {k: sum(t[k] for t in tables) for k in
              ("records", "person_records", "should_link", "should_link_staged", "found", "missed",
               "lost_before_linking", "missed_in_linking", "links", "correct_links", "false_links",
               "review_records", "dropped_duplicates")}
    totals["precision"] = _ratio(totals["correct_links"], totals["links"])
    totals["recall"] = _ratio(totals["found"], totals["should_link"])
    totals["recall_staged"] = _ratio(totals["found"], totals["should_link_staged"])

    # Review band.
    review = _records(con, """
        SELECT tbl AS "table", defect,
               count(*) FILTER (WHERE review_true) AS truly_person,
               count(*) FILTER (WHERE NOT review_true AND true_id <> '') AS someone_else,
               count(*) FILTER (WHERE true_id = '') AS no_person,
               count(*) AS records
        FROM lq_rec WHERE in_review GROUP BY ALL ORDER BY "table", records DESC, defect""")

    # Should have been linked, but were not: why.
    unlinked = _records(con, """
        SELECT tbl AS "table",
               CASE
                 WHEN quarantine_reason IS NOT NULL THEN 'quarantined: ' || quarantine_reason
                 WHEN NOT staged THEN 'not staged' || coalesce(' (file ' || load_status || ')', '')
                 WHEN NOT in_hh THEN 'person not in household_person (roster ID damaged)'
                 WHEN in_review AND review_true THEN 'review: ID right, name disagrees'
                 WHEN in_review THEN 'review: ID of another person'
                 WHEN n_links > 0 THEN 'linked to another person only'
                 WHEN id_status IN ('valid', 'upgraded15') THEN 'id_status ' || id_status ||
                      CASE WHEN id_norm = true_id THEN ', ID = true ID' ELSE ', ID ≠ true ID' END
                 ELSE 'id_status ' || id_status
               END AS pipeline_view,
               defect, count(*) AS records,
               count(*) FILTER (WHERE person_linked) AS person_linked_elsewhere
        FROM lq_rec WHERE should AND NOT correct
        GROUP BY ALL ORDER BY "table", records DESC, pipeline_view, defect, person_linked_elsewhere""")

    # False links.
    false_links = _records(con, """
        SELECT r.tbl AS "table", l.method, r.defect,
               CASE WHEN r.true_id = '' THEN 'no person (organisation)'
                    WHEN r.in_hh OR r.true_member THEN 'another household person'
                    ELSE 'not a household person' END AS truly,
               count(*) AS links
        FROM lq_rec r JOIN lq_links l USING (tbl, file, d, "row", owner_seq)
        WHERE l.person_id <> r.true_id
        GROUP BY ALL ORDER BY "table", links DESC, l.method, r.defect, truly""")

    # Links on staged rows the truth does not know (should be none).
    no_truth = _records(con, """
        SELECT l.tbl AS "table", count(*) AS links FROM lq_links l
        WHERE NOT EXISTS (SELECT 1 FROM lq_truth t WHERE t.tbl = l.tbl AND t.file = l.file AND t."row" = l."row"
                          AND t.owner_seq = l.owner_seq AND t.d = l.d)
        GROUP BY ALL ORDER BY ALL""")
    staged_no_truth = _records(con, """
        SELECT s.tbl AS "table", count(*) AS records FROM lq_staged s
        WHERE NOT EXISTS (SELECT 1 FROM lq_truth t WHERE t.tbl = s.tbl AND t.file = s.file AND t."row" = s."row"
                          AND t.owner_seq = s.owner_seq AND t.d = s.d)
        GROUP BY ALL ORDER BY ALL""")

    # The roster itself: its IDs define who can be linked at all.
    roster = _records(con, f"""
        SELECT CASE WHEN q.reason IS NOT NULL THEN 'quarantined: ' || q.reason
                    WHEN s.tbl IS NULL THEN 'not staged'
                    ELSE 'id_status ' || s.id_status END AS pipeline_view,
               CASE WHEN s.tbl IS NULL THEN '-' WHEN s.id_norm = t.true_id THEN 'right' WHEN s.id_norm IS NULL
                    THEN 'none' ELSE 'wrong' END AS staged_id,
               t.defect, count(*) AS rows
        FROM lq_truth t JOIN lq_scope USING (tbl, file, d)
        LEFT JOIN lq_staged s USING (tbl, file, d, "row", owner_seq)
        LEFT JOIN (SELECT tbl, file, d, "row", min(reason) AS reason FROM lq_quar GROUP BY ALL) q
               USING (tbl, file, d, "row")
        WHERE t.tbl = '{ROSTER}'
        GROUP BY ALL ORDER BY rows DESC, pipeline_view, staged_id, defect""")

    deliveries = _records(con, """
        SELECT sc.tbl AS "table", sc.file, sc.d AS delivery_date, sc.load_status,
               count(t.tbl) AS truth_rows
        FROM lq_scope sc LEFT JOIN lq_truth t USING (tbl, file, d)
        GROUP BY ALL ORDER BY ALL""")
    for d in deliveries:
        d["source"] = staged_to_source.get(d["table"], d["table"])

    counts = con.execute("SELECT (SELECT count(*) FROM lq_hh),"
                         " (SELECT count(*) FROM lq_members WHERE person_id NOT IN (SELECT person_id FROM lq_hh))"
                         ).fetchone()
    return {
        "run_date": run_date.isoformat(),
        "household_persons": counts[0],
        "true_members_missing_from_household_person": counts[1],
        "unmapped_truth_tables": unmapped,
        "deliveries": deliveries,
        "tables": tables,
        "totals": totals,
        "methods": methods,
        "review": review,
        "review_rows_without_staged_record": review_unmatched,
        "unlinked": unlinked,
        "false_links": false_links,
        "links_without_truth": no_truth,
        "staged_without_truth": staged_no_truth,
        "roster": roster,
    }


# --------------------------------------------------------------------------------------------------
# Report

def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _table(headers: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def format_link_quality(result: dict, *, precision_target: float = 0.999, recall_target: float = 0.995) -> str:
    """Markdown: per source/table, per method, review band, unlinked by reason, false links by defect."""
    r = result
    lines = [f"# Link quality against planted truth, night of {r['run_date']}", "",
             f"Household persons (linked.household_person): {r['household_persons']}; true roster members "
             f"missing from it (roster ID damaged): {r['true_members_missing_from_household_person']}.",
             f"Targets: precision ≥ {precision_target}, recall ≥ {recall_target} for every table.", ""]
    if r["unmapped_truth_tables"]:
        lines += [f"Truth tables with no staging table in config: {', '.join(r['unmapped_truth_tables'])}", ""]

    lines += ["## Per source and table", "",
              "A link is one (record, person) pair; it is correct when the person is the record's true person. "
              "A record should be linked when its true person is a household person (or a true roster member); "
              "copies of duplicate rows (truth label duplicate_row) that were quarantined are left out. "
              "*Lost* = should-link records quarantined or not staged, before linkage could see them; "
              "*recall (staged)* leaves those out.", ""]
    rows = []
    for t in r["tables"]:
        ok = ("✓" if (t["precision"] is None or t["precision"] >= precision_target)
              and (t["recall"] is None or t["recall"] >= recall_target) else "✗")
        rows.append([t["source"], t["table"], t["records"], t["should_link"], t["links"], t["false_links"],
                     t["precision"], t["found"], t["lost_before_linking"], t["missed_in_linking"], t["recall"],
                     t["recall_staged"], t["review_records"], t["dropped_duplicates"], ok])
    tt = r["totals"]
    rows.append(["**all**", "", tt["records"], tt["should_link"], tt["links"], tt["false_links"], tt["precision"],
                 tt["found"], tt["lost_before_linking"], tt["missed_in_linking"], tt["recall"], tt["recall_staged"],
                 tt["review_records"], tt["dropped_duplicates"], ""])
    lines += _table(["source", "table", "records", "should link", "links", "false", "precision", "found",
                     "lost", "missed in linking", "recall", "recall (staged)", "in review", "dup. dropped",
                     "target"], rows) + [""]

    lines += ["## Per link method", ""]
    lines += _table(["source", "table", "method", "links", "correct", "false", "precision", "found",
                     "share of recall"],
                    [[m["source"], m["table"], m["method"], m["links"], m["correct"], m["false"], m["precision"],
                      m["found"], m["recall_share"]] for m in r["methods"]]) + [""]

    lines += ["## Review band (ID matches whose names disagree; fuzzy candidates below the acceptance threshold)", ""]
    if r["review"]:
        lines += _table(["table", "defect", "records", "truly the roster person", "truly someone else",
                         "no person"],
                        [[v["table"], v["defect"], v["records"], v["truly_person"], v["someone_else"],
                          v["no_person"]] for v in r["review"]]) + [""]
    else:
        lines += ["(empty)", ""]
    if r["review_rows_without_staged_record"]:
        lines += [f"Review rows with no staged record: {r['review_rows_without_staged_record']}", ""]

    lines += ["## Should have been linked, but were not", ""]
    summary: dict[tuple[str, str], int] = {}
    for u in r["unlinked"]:
        summary[(u["table"], u["pipeline_view"])] = summary.get((u["table"], u["pipeline_view"]), 0) + u["records"]
    if summary:
        lines += ["By the pipeline's view:", ""]
        lines += _table(["table", "pipeline's view", "records"],
                        [[t, v, n] for (t, v), n in sorted(summary.items(), key=lambda kv: (kv[0][0], -kv[1]))])
        lines += ["", "By the pipeline's view and the truth's defect (*person linked elsewhere*: the same true "
                  "person is correctly linked through another record of the table):", ""]
        lines += _table(["table", "pipeline's view", "defect", "records", "person linked elsewhere"],
                        [[u["table"], u["pipeline_view"], u["defect"], u["records"], u["person_linked_elsewhere"]]
                         for u in r["unlinked"]])
        lines += [""]
    else:
        lines += ["(none)", ""]

    lines += ["## False links", ""]
    if r["false_links"]:
        lines += _table(["table", "method", "defect", "record truly belongs to", "links"],
                        [[f["table"], f["method"], f["defect"], f["truly"], f["links"]] for f in r["false_links"]])
        lines += [""]
    else:
        lines += ["(none)", ""]

    if r["roster"]:
        lines += ["## Roster rows (their IDs define who can be linked)", ""]
        lines += _table(["pipeline's view", "staged ID", "defect", "rows"],
                        [[x["pipeline_view"], x["staged_id"], x["defect"], x["rows"]] for x in r["roster"]])
        lines += [""]

    if r["links_without_truth"] or r["staged_without_truth"]:
        lines += ["## Not in the truth", ""]
        lines += [f"- {x['table']}: {x['records']} staged rows without a truth row" for x in r["staged_without_truth"]]
        lines += [f"- {x['table']}: {x['links']} links on rows without a truth row" for x in r["links_without_truth"]]
        lines += [""]

    lines += ["## Deliveries measured", ""]
    lines += _table(["source", "table", "file", "delivery date", "load status", "truth rows"],
                    [[d["source"], d["table"], d["file"], d["delivery_date"], d["load_status"], d["truth_rows"]]
                     for d in r["deliveries"]]) + [""]
    return "\n".join(lines)


def write_link_quality(con: duckdb.DuckDBPyConnection, truth_dir: Path, run_date, out_dir: Path,
                       sources: SourcesConfig | None = None) -> Path:
    """Write ``link_quality.md`` and ``link_quality.json`` (owner-only) into out_dir; returns the .md path."""
    result = link_quality(con, truth_dir, run_date, sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "link_quality.md"
    # Belt and braces: nothing here should look like an ID, but mask anything that does.
    write_private_text(md, mask_ids(format_link_quality(result)))
    write_private_text(out_dir / "link_quality.json",
                       mask_ids(json.dumps(result, ensure_ascii=False, indent=1)) + "\n")
    return md
