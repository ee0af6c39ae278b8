"""Ledger transitions across nights, from literal flags."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from cases.ledger import LedgerOrderError, update_ledger
from crosscheck.settings import load_policy
from crosscheck.warehouse import connect

NIGHT1 = date(2026, 11, 1)
NIGHT2 = NIGHT1 + timedelta(days=1)
NIGHT3 = NIGHT2 + timedelta(days=1)


@pytest.fixture()
def con():
    con = connect(":memory:")
    con.execute("CREATE TABLE flags.household AS SELECT * FROM (VALUES ('H1', '东宝区', '龙泉街道', '城市低保', 2, 2, 575.0),"
                " ('H2', '钟祥市', '郢中街道', '农村低保', 1, 1, 375.0)) t(household_id, district, township, category,"
                " household_size, members_listed, standard)")
    con.execute("CREATE TABLE linked.household_person AS SELECT * FROM (VALUES ('H1', 'P1', '王伟', 'member', NULL),"
                " ('H2', 'P2', '张敏', 'member', NULL)) t(household_id, person_id, person_name, kin, hukou_no)")
    con.execute("CREATE TABLE flags.hits (run_date DATE, rule VARCHAR, household_id VARCHAR, member_id VARCHAR,"
                " source VARCHAR, record_table VARCHAR, record_key VARCHAR, source_as_of DATE, trigger VARCHAR,"
                " evidence VARCHAR, link_method VARCHAR, link_score DOUBLE, link_agreed VARCHAR)")
    return con


def hit(con, night, rule, household, member, key, method="id_exact"):
    con.execute("INSERT INTO flags.hits VALUES (?, ?, ?, ?, 'vehicle', 'vehicle', ?, ?, '{}', '名下机动车', ?, 1.0, 'id')",
                [night, rule, household, member, key, night, method])


def evaluated(*rules):
    return [{"rule": r, "status": "evaluated"} for r in rules]


def statuses(con):
    return dict(con.execute("SELECT case_id, status FROM ledger.cases").fetchall())


def test_new_then_open_then_closed(con):
    hit(con, NIGHT1, "R02", "H1", "P1", "v.csv:1")
    assert update_ledger(con, load_policy(), NIGHT1, evaluated("R02"))["new"] == 1
    assert statuses(con) == {"R02-H1": "new"}
    deadline, unit = con.execute("SELECT deadline, responsible_unit FROM ledger.cases").fetchone()
    assert deadline == NIGHT1 + timedelta(days=30) and unit == "龙泉街道"
    hit(con, NIGHT2, "R02", "H1", "P1", "v.csv:1")
    update_ledger(con, load_policy(), NIGHT2, evaluated("R02"))
    assert statuses(con) == {"R02-H1": "open"}
    update_ledger(con, load_policy(), NIGHT3, evaluated("R02"))  # flag gone
    assert statuses(con) == {"R02-H1": "closed"}
    history = con.execute("SELECT from_status, to_status, reason FROM ledger.case_history ORDER BY run_date").fetchall()
    assert [(f, t) for f, t, _ in history] == [(None, "new"), ("new", "open"), ("open", "closed")]
    assert history[-1][2] == "核对条件不再成立（此前证据：名下机动车）"


def test_skipped_rule_leaves_case_alone(con):
    hit(con, NIGHT1, "R02", "H1", "P1", "v.csv:1")
    update_ledger(con, load_policy(), NIGHT1, evaluated("R02"))
    update_ledger(con, load_policy(), NIGHT2, [{"rule": "R02", "status": "skipped"}])
    assert statuses(con) == {"R02-H1": "new"}


def test_refuted_stays_quiet_unless_evidence_changes(con):
    hit(con, NIGHT1, "R02", "H1", "P1", "v.csv:1")
    update_ledger(con, load_policy(), NIGHT1, evaluated("R02"))
    con.execute("UPDATE ledger.cases SET status = 'refuted'")  # as the feedback import will
    hit(con, NIGHT2, "R02", "H1", "P1", "v.csv:1")
    update_ledger(con, load_policy(), NIGHT2, evaluated("R02"))
    assert statuses(con) == {"R02-H1": "refuted"}
    hit(con, NIGHT3, "R02", "H1", "P1", "v.csv:1")
    hit(con, NIGHT3, "R02", "H1", "P1", "v.csv:7")  # a new car
    update_ledger(con, load_policy(), NIGHT3, evaluated("R02"))
    assert statuses(con) == {"R02-H1": "new"}


def test_fuzzy_link_drops_priority(con):
    hit(con, NIGHT1, "R02", "H1", "P1", "v.csv:1", method="fuzzy")
    update_ledger(con, load_policy(), NIGHT1, evaluated("R02"))
    assert con.execute("SELECT priority FROM ledger.cases").fetchone()[0] == 2


def test_same_night_twice_changes_nothing(con):
    hit(con, NIGHT1, "R02", "H1", "P1", "v.csv:1")
    update_ledger(con, load_policy(), NIGHT1, evaluated("R02"))
    before = con.execute("SELECT * FROM ledger.cases").fetchall(), con.execute("SELECT count(*) FROM ledger.case_history").fetchone()
    update_ledger(con, load_policy(), NIGHT1, evaluated("R02"))
    after = con.execute("SELECT * FROM ledger.cases").fetchall(), con.execute("SELECT count(*) FROM ledger.case_history").fetchone()
    assert before == after


def test_older_night_refused(con):
    update_ledger(con, load_policy(), NIGHT2, evaluated("R02"))
    with pytest.raises(LedgerOrderError):
        update_ledger(con, load_policy(), NIGHT1, evaluated("R02"))
