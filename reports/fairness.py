"""Fairness monitoring for the night's overview: who gets flagged, and how often flags hold up.

Per group of district, 救助类别, sex, age band and Han / minority: roster members, households, households
with a case in the ledger (every case raised so far: new, open, confirmed, refuted or closed), the flag
rate, and from auditors' conclusions (the latest per case decides) the confirmation rate
confirmed / (confirmed + refuted).

Convention: a household belongs to every group one of its members belongs to (a household with a woman and
a man counts under 女 and under 男), and its cases count wherever the household does. Sex, ethnicity and
birth date come from the hukou extract; a member without a hukou record counts as 未知 (unknown).

These attributes are for monitoring only. No rule reads them (tests/test_fairness.py holds the rules to it).
"""
from __future__ import annotations

from datetime import date

import duckdb

from crosscheck.warehouse import fetch_dicts, table_exists

SMALL_GROUP = 20        # fewer households than this: the rates are shown but not meaningful
DIMENSIONS = {"district": "区县 district", "category": "救助类别 category", "sex": "性别 sex",
              "age_band": "年龄段 age band", "ethnic_group": "汉族 / 少数民族 Han / minority"}
AGE_BANDS = ((18, "<18"), (40, "18–39"), (60, "40–59"), (80, "60–79"))

FAIRNESS_SQL = """
WITH
roster AS (
    SELECT DISTINCT household_id, id_norm, coalesce(id_norm, CAST(id_number AS VARCHAR), name) AS member_key,
           district, category
    FROM staging.roster
    WHERE household_id IS NOT NULL
),
hukou AS (
    SELECT id_norm, any_value(sex) AS sex, any_value(lpad(ethnicity, 2, '0')) AS ethnicity,
           any_value(birth_date) AS birth_date
    FROM {hukou} WHERE id_norm IN (SELECT id_norm FROM roster) GROUP BY id_norm   -- members only, not the city
),
conclusions AS (
    SELECT case_id, arg_max(status, (feedback_date, imported_on, row)) AS status
    FROM {conclusions} WHERE feedback_date <= getvariable('fair_date') GROUP BY case_id
),
members AS (
    SELECT r.district AS roster_district, r.household_id, r.member_key,
           coalesce(r.district, '未知') AS district, coalesce(r.category, '未知') AS category,
           CASE h.sex WHEN '1' THEN '男' WHEN '2' THEN '女' ELSE '未知' END AS sex,
           {age_band} AS age_band,
           CASE WHEN h.ethnicity IS NULL THEN '未知' WHEN h.ethnicity = '01' THEN '汉族' ELSE '少数民族' END
               AS ethnic_group
    FROM roster r LEFT JOIN hukou h USING (id_norm)
),
-- every report the figures go to: the centre's (every roster member, every case) and each district's
-- (the members on that district's roster, the cases of that district in the ledger)
scoped_members AS (
    SELECT true AS centre, '' AS scope, * EXCLUDE (roster_district) FROM members
    UNION ALL
    SELECT false AS centre, roster_district AS scope, * EXCLUDE (roster_district) FROM members
    WHERE roster_district IS NOT NULL
),
cases AS (
    SELECT true AS centre, '' AS scope, case_id, household_id FROM ledger.cases
    UNION ALL
    SELECT false AS centre, district AS scope, case_id, household_id FROM ledger.cases WHERE district IS NOT NULL
),
member_groups AS (
    UNPIVOT scoped_members ON district, category, sex, age_band, ethnic_group INTO NAME dimension VALUE grp
),
household_cases AS (
    SELECT c.centre, c.scope, c.household_id, count(*) AS cases, count(k.status) AS concluded,
           count(*) FILTER (WHERE k.status = 'confirmed') AS confirmed,
           count(*) FILTER (WHERE k.status = 'refuted') AS refuted
    FROM cases c LEFT JOIN conclusions k USING (case_id) GROUP BY c.centre, c.scope, c.household_id
),
group_members AS (
    SELECT centre, scope, dimension, grp, count(DISTINCT household_id || '|' || member_key) AS members
    FROM member_groups GROUP BY ALL
),
group_households AS (
    SELECT DISTINCT centre, scope, dimension, grp, household_id FROM member_groups
)
SELECT g.centre, g.scope, g.dimension, g.grp, any_value(m.members) AS members, count(*) AS households,
       count(hc.household_id) AS flagged, coalesce(sum(hc.cases), 0) AS cases,
       coalesce(sum(hc.concluded), 0) AS concluded, coalesce(sum(hc.confirmed), 0) AS confirmed,
       coalesce(sum(hc.refuted), 0) AS refuted
FROM group_households g
JOIN group_members m USING (centre, scope, dimension, grp)
LEFT JOIN household_cases hc USING (centre, scope, household_id)
GROUP BY g.centre, g.scope, g.dimension, g.grp
"""

EMPTY_HUKOU = "(SELECT NULL::VARCHAR AS id_norm, NULL::VARCHAR AS sex, NULL::VARCHAR AS ethnicity," \
              " NULL::DATE AS birth_date WHERE false)"


def conclusions_relation(con: duckdb.DuckDBPyConnection) -> str:
    """ledger.conclusions, or an empty stand-in before any workbook was ever imported."""
    if table_exists(con, "ledger", "conclusions"):
        return "ledger.conclusions"
    return ("(SELECT NULL::VARCHAR AS case_id, NULL::VARCHAR AS conclusion, NULL::VARCHAR AS status,"
            " NULL::VARCHAR AS note, NULL::DATE AS feedback_date, NULL::DATE AS imported_on, NULL::BIGINT AS row"
            " WHERE false)")


def age_band_sql() -> str:
    """Age in whole years on the run date, as its band; 未知 without a birth date."""
    age = ("(year(getvariable('fair_date')) - year(h.birth_date) - CASE WHEN strftime(getvariable('fair_date'), "
           "'%m%d') < strftime(h.birth_date, '%m%d') THEN 1 ELSE 0 END)")
    whens = " ".join(f"WHEN {age} < {upper} THEN '{label}'" for upper, label in AGE_BANDS)
    return f"CASE WHEN h.birth_date IS NULL THEN '未知' {whens} ELSE '80+' END"


def fairness_rows_by_report(con: duckdb.DuckDBPyConnection, run_date: date) -> dict[str | None, list[dict]]:
    """``fairness_rows`` for the centre's report (key None) and for every district's, in one query."""
    if not (table_exists(con, "staging", "roster") and table_exists(con, "ledger", "cases")):
        return {}
    con.execute("SET VARIABLE fair_date = ?::DATE", [run_date])
    hukou = "staging.hukou" if table_exists(con, "staging", "hukou") else EMPTY_HUKOU
    out: dict[str | None, list[dict]] = {}
    for r in fetch_dicts(con, FAIRNESS_SQL.format(hukou=hukou, age_band=age_band_sql(),
                                                  conclusions=conclusions_relation(con))):
        centre, scope = r.pop("centre"), r.pop("scope")
        out.setdefault(None if centre else scope, []).append(with_rates(r))
    return out


def fairness_rows(con: duckdb.DuckDBPyConnection, run_date: date, district: str | None = None) -> list[dict]:
    """One row per (dimension, group) with counts and rates (``with_rates``), for the whole roster or the
    members on ``district``'s roster with that district's cases."""
    return fairness_rows_by_report(con, run_date).get(district, [])


def with_rates(row: dict) -> dict:
    households, decided = int(row["households"]), int(row["confirmed"]) + int(row["refuted"])
    return {**{k: (int(v) if isinstance(v, (int, float)) else v) for k, v in row.items()},
            "flag_rate": row["flagged"] / households if households else None,
            "confirmation_rate": row["confirmed"] / decided if decided else None,
            "small": households < SMALL_GROUP}


def fairness_tables(con: duckdb.DuckDBPyConnection, run_date: date, district: str | None = None, *,
                    rows: list[dict] | None = None) -> list[dict]:
    """The rows grouped per dimension in a fixed order: [{dimension, title, rows}], groups sorted by name
    (age bands in age order, 未知 last). ``rows`` are the report's rows when already read."""
    rows = fairness_rows(con, run_date, district) if rows is None else rows
    order = [label for _, label in AGE_BANDS] + ["80+"]

    def key(r):
        unknown = r["grp"] == "未知"
        return (unknown, order.index(r["grp"]) if r["grp"] in order else 0, r["grp"])

    return [{"dimension": dim, "title": title,
             "rows": sorted((r for r in rows if r["dimension"] == dim), key=key)}
            for dim, title in DIMENSIONS.items()]
