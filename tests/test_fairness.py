"""Fairness monitoring (reports/fairness.py): exact rates from literal rows, and the rules never read the
monitored attributes."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from cases.ledger import ensure_ledger
from crosscheck.idnum import check_digit
from crosscheck.settings import load_sources
from crosscheck.warehouse import connect
from reports.fairness import fairness_tables
from tests.staging_builder import stage

NIGHT = date(2026, 11, 20)
ROOT = Path(__file__).resolve().parents[1]


def pid(body17: str) -> str:
    return body17 + check_digit(body17)


A, B, D = pid("42080219800101001"), pid("42080219820202002"), pid("42080219400601003")
E, F, G = pid("42088220081121004"), pid("42088219990909005"), pid("42088219661120006")
I = pid("42088119900505007")

ROSTER = [
    dict(household_id="H1", district="东宝区", township="龙泉街道", category="城市低保", name="王伟", id_number=A, relation="户主"),
    dict(household_id="H1", district="东宝区", township="龙泉街道", category="城市低保", name="李娜", id_number=B, relation="配偶"),
    dict(household_id="H2", district="东宝区", township="龙泉街道", category="特困供养", name="马兰", id_number=D, relation="户主"),
    dict(household_id="H3", district="京山市", township="新市街道", category="农村低保", name="张强", id_number=E, relation="子女"),
    dict(household_id="H3", district="京山市", township="新市街道", category="农村低保", name="张某", id_number=F, relation="户主"),
    dict(household_id="H4", district="京山市", township="新市街道", category="城市低保", name="刘刚", id_number=G, relation="户主"),
    dict(household_id="H5", district="钟祥市", township="郢中街道", category="城市低保", name="陈静", id_number=I, relation="户主"),
]
HUKOU = [   # F has no hukou record: 未知 everywhere; E's ethnicity arrives unpadded ('1' = 汉族)
    dict(id_number=A, name="王伟", sex="1", ethnicity="01", birth_date=date(1980, 1, 1)),
    dict(id_number=B, name="李娜", sex="2", ethnicity="01", birth_date=date(1982, 2, 2)),
    dict(id_number=D, name="马兰", sex="2", ethnicity="03", birth_date=date(1940, 6, 1)),
    dict(id_number=E, name="张强", sex="1", ethnicity="1", birth_date=date(2008, 11, 21)),   # 17, turns 18 tomorrow
    dict(id_number=G, name="刘刚", sex="1", ethnicity="01", birth_date=date(1966, 11, 20)),  # 60 today
    dict(id_number=I, name="陈静", sex="2", ethnicity="01", birth_date=date(1990, 5, 5)),
]
CASES = [("R02-H1", "H1", "R02", "confirmed", "东宝区"), ("R01-H2", "H2", "R01", "refuted", "东宝区"),
         ("R03-H2", "H2", "R03", "new", "东宝区"), ("R04-H3", "H3", "R04", "closed", "京山市"),
         ("R05-H4", "H4", "R05", "new", "京山市")]
CONCLUSIONS = [("R02-H1", "查实", "confirmed", date(2026, 11, 10)), ("R01-H2", "查否", "refuted", date(2026, 11, 12)),
               ("R04-H3", "查实", "confirmed", date(2026, 11, 1)), ("R04-H3", "查否", "refuted", date(2026, 11, 15)),
               ("R05-H4", "查实", "confirmed", date(2026, 11, 25))]     # returned after the night: not counted


@pytest.fixture
def con(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    stage(con, "roster", ROSTER, NIGHT)
    stage(con, "hukou", HUKOU, NIGHT)
    ensure_ledger(con)
    con.execute((ROOT / "cases" / "sql" / "feedback_ddl.sql").read_text(encoding="utf-8"))
    for case_id, household, rule, status, district in CASES:
        con.execute("INSERT INTO ledger.cases (case_id, household_id, rule, status, district) VALUES (?, ?, ?, ?, ?)",
                    [case_id, household, rule, status, district])
    for i, (case_id, word, status, day) in enumerate(CONCLUSIONS):
        con.execute("INSERT INTO ledger.conclusions VALUES (?, ?, ?, '', ?, 'book.xlsx', ?, 'sha', ?)",
                    [case_id, word, status, day, i + 2, day])
    yield con
    con.close()


def rounded(v):
    return None if v is None else round(v, 4)


def table(tables, dimension) -> dict[str, tuple]:
    rows = next(t["rows"] for t in tables if t["dimension"] == dimension)
    return {r["grp"]: (r["members"], r["households"], r["flagged"], rounded(r["flag_rate"]), r["cases"], r["concluded"],
                       r["confirmed"], r["refuted"], rounded(r["confirmation_rate"])) for r in rows}


#        members households flagged flag_rate cases concluded confirmed refuted confirmation_rate
EXPECTED = {
    "sex": {"男": (3, 3, 3, 1.0, 3, 2, 1, 1, 0.5), "女": (3, 3, 2, 0.6667, 3, 2, 1, 1, 0.5),
            "未知": (1, 1, 1, 1.0, 1, 1, 0, 1, 0.0)},
    "age_band": {"<18": (1, 1, 1, 1.0, 1, 1, 0, 1, 0.0), "18–39": (1, 1, 0, 0.0, 0, 0, 0, 0, None),
                 "40–59": (2, 1, 1, 1.0, 1, 1, 1, 0, 1.0), "60–79": (1, 1, 1, 1.0, 1, 0, 0, 0, None),
                 "80+": (1, 1, 1, 1.0, 2, 1, 0, 1, 0.0), "未知": (1, 1, 1, 1.0, 1, 1, 0, 1, 0.0)},
    "ethnic_group": {"汉族": (5, 4, 3, 0.75, 3, 2, 1, 1, 0.5), "少数民族": (1, 1, 1, 1.0, 2, 1, 0, 1, 0.0),
                     "未知": (1, 1, 1, 1.0, 1, 1, 0, 1, 0.0)},
    "district": {"东宝区": (3, 2, 2, 1.0, 3, 2, 1, 1, 0.5), "京山市": (3, 2, 2, 1.0, 2, 1, 0, 1, 0.0),
                 "钟祥市": (1, 1, 0, 0.0, 0, 0, 0, 0, None)},
    "category": {"城市低保": (4, 3, 2, 0.6667, 2, 1, 1, 0, 1.0), "特困供养": (1, 1, 1, 1.0, 2, 1, 0, 1, 0.0),
                 "农村低保": (2, 1, 1, 1.0, 1, 1, 0, 1, 0.0)},
}


@pytest.mark.parametrize("dimension", list(EXPECTED))
def test_rates_per_group(con, dimension):
    assert table(fairness_tables(con, NIGHT), dimension) == EXPECTED[dimension]


def test_small_groups_marked_and_age_bands_in_order(con):
    tables = fairness_tables(con, NIGHT)
    rows = next(t["rows"] for t in tables if t["dimension"] == "age_band")
    assert [r["grp"] for r in rows] == ["<18", "18–39", "40–59", "60–79", "80+", "未知"]
    assert all(r["small"] for t in tables for r in t["rows"])          # every group here has < 20 households


def test_one_district_only(con):
    tables = fairness_tables(con, NIGHT, district="京山市")
    assert set(table(tables, "district")) == {"京山市"}
    assert table(tables, "sex") == {"男": (2, 2, 2, 1.0, 2, 1, 0, 1, 0.0), "未知": (1, 1, 1, 1.0, 1, 1, 0, 1, 0.0)}


# ---- the monitored attributes are never an input to any rule

def monitored_columns() -> set[str]:
    """The canonical names of hukou's 性别, 民族 and 出生日期 in config/sources.yaml."""
    columns = load_sources().sources["hukou"].tables["hukou"].columns
    return {columns[delivered].name for delivered in ("性别", "民族", "出生日期")}


def reads(sql: str, names: set[str]) -> set[str]:
    """Which of the names appear in the SQL as identifiers (comments removed)."""
    sql = re.sub(r"--[^\n]*", "", sql)
    return {n for n in names if re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", sql)} | \
        {n for n in ("性别", "民族", "出生日期") if n in sql}


def test_rules_never_read_sex_ethnicity_or_birth():
    names = monitored_columns()
    assert names == {"sex", "ethnicity", "birth_date"}
    assert reads("SELECT h.sex, x.birth_date FROM t", names) == {"sex", "birth_date"}     # the check can fail
    files = sorted((ROOT / "rules" / "sql").glob("*.sql"))
    assert len(files) >= 9
    offending = {f.name: reads(f.read_text(encoding="utf-8"), names) for f in files}
    assert {k: v for k, v in offending.items() if v} == {}
    assert not re.search(r"\bSELECT\s+\*\s+FROM\s+(staging|linked)\.hukou\b",
                         " ".join(f.read_text(encoding="utf-8") for f in files), re.IGNORECASE)
