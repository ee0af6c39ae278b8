"""Incremental nights: a source whose load was reused (the same bytes as night R) is not validated again.

validate_source copies night R's check results and row notes to tonight when tonight's load reused R's load,
the check configuration (thresholds, the source's spec, its code tables, the engine) is unchanged and R's
verdict was ok or stale; only freshness is evaluated again. Anything else validates in full.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from checks.suite import SqlCheckEngine
from checks.validate import validate_source
from connectors.load import load_source
from crosscheck.idnum import check_digit
from crosscheck.settings import load_thresholds
from crosscheck.warehouse import connect

COLS = ["家庭编号", "救助类别", "分类管理", "成员姓名", "身份证号", "与户主关系", "家庭人口数", "月保障金额", "区县",
        "乡镇街道", "村社区", "家庭住址", "救助开始日期", "残疾类别等级", "重病"]
DELIVERY = "2024-05-01"
D1, D2 = date(2024, 5, 2), date(2024, 5, 3)


def pid(n: int) -> str:
    body = f"4208021980{n // 100 % 12 + 1:02d}01{n % 100:03d}"[:17]
    return body + check_digit(body)


def write_roster(landing: Path, day: str, n: int, bad_ids: int = 0, bad_codes: int = 0) -> None:
    lines = [",".join(COLS)]
    for i in range(n):
        idn = pid(i)
        if i < bad_ids:
            idn = idn[:17] + ("0" if idn[17] != "0" else "1")       # wrong check digit
        district = "火星区" if i >= n - bad_codes else "东宝区"          # not in the code table: quarantined
        lines.append(",".join([f"H{i}", "城市低保", "A", "张三", idn, "户主", "1", "575", district, "龙泉街道",
                               "某社区", "某路", "2020-01-01", "", "否"]))
    folder = landing / "roster" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


class SpyEngine(SqlCheckEngine):
    """The SQL engine, counting how often it is asked to evaluate anything."""

    def __init__(self):
        self.calls = 0

    def evaluate(self, con, expectations, *, source, run_date):
        self.calls += 1
        return super().evaluate(con, expectations, source=source, run_date=run_date)


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def night(con, landing, day: date, engine, thresholds=None, source="roster"):
    load = load_source(con, landing, source, day, day)
    return load, validate_source(con, source, day, day, engine=engine, thresholds=thresholds or load_thresholds())


def checks_of(con, day: date) -> list[tuple]:
    return sorted(con.execute(
        "SELECT table_name, check_name, passed, observed, threshold, critical, engine FROM audit.check_results "
        "WHERE run_date = ? AND check_name <> 'freshness'", [day]).fetchall(), key=repr)


def test_second_night_on_the_same_bytes_carries_the_checks_over(tmp_path, con):
    write_roster(tmp_path, DELIVERY, 40, bad_codes=2)
    spy = SpyEngine()
    load1, first = night(con, tmp_path, D1, spy)
    assert first["status"] == "ok" and spy.calls == 1 and "reused_from" not in load1
    load2, second = night(con, tmp_path, D2, spy)
    assert load2["reused_from"] == D1
    assert spy.calls == 1, "a reused source went through the check engine again"
    assert second["status"] == first["status"] == "ok" and second.get("carried_from") == D1
    assert checks_of(con, D2) == checks_of(con, D1)
    messages = [r[0] for r in con.execute("SELECT message FROM audit.check_results WHERE run_date = ? "
                                          "AND check_name <> 'freshness'", [D2]).fetchall()]
    assert messages and all(f"carried over from the night of {D1}" in m for m in messages)
    status = con.execute("SELECT run_date, status, delivery_date, max_age_days, reason, check_sha IS NOT NULL, "
                         "carried_from FROM audit.source_status ORDER BY run_date").fetchall()
    assert [s[1:6] for s in status] == [("ok", date(2024, 5, 1), 7, None, True)] * 2
    assert [s[6] for s in status] == [None, D1]
    # the rows validation set aside on night 1 stay accounted for on night 2
    q = "SELECT rows_read, rows_staged, rows_quarantined FROM audit.load_files WHERE run_date = ?"
    assert con.execute(q, [D2]).fetchall() == con.execute(q, [D1]).fetchall() == [(40, 38, 2)]
    assert con.execute("SELECT count(*) FROM audit.quarantine WHERE run_date = ?", [D2]).fetchone()[0] == 2


def test_third_night_names_the_night_that_really_ran_the_checks(tmp_path, con):
    write_roster(tmp_path, DELIVERY, 20)
    spy = SpyEngine()
    for day in (D1, D2, D2 + timedelta(days=1)):
        night(con, tmp_path, day, spy)
    assert spy.calls == 1
    msgs = [r[0] for r in con.execute("SELECT message FROM audit.check_results WHERE run_date = ? "
                                      "AND check_name = 'rows_staged'", [D2 + timedelta(days=1)]).fetchall()]
    assert len(msgs) == 1 and msgs[0].count("carried over") == 1 and f"night of {D1}" in msgs[0]


def test_row_notes_are_carried_over(tmp_path, con):
    write_roster(tmp_path, DELIVERY, 20)
    spy = SpyEngine()
    night(con, tmp_path, D1, spy)
    con.execute("INSERT INTO audit.row_notes VALUES (?, 'roster', 'roster', 'roster.csv', ?, 3, 'a note')",
                [D1, date(2024, 5, 1)])
    night(con, tmp_path, D2, spy)
    assert spy.calls == 1
    assert con.execute("SELECT file_name, row_no, reason FROM audit.row_notes WHERE run_date = ?",
                       [D2]).fetchall() == [("roster.csv", 3, "a note")]


def test_freshness_still_turns_stale(tmp_path, con):
    write_roster(tmp_path, DELIVERY, 20)
    spy = SpyEngine()
    _, first = night(con, tmp_path, D1, spy)
    _, later = night(con, tmp_path, date(2024, 5, 11), spy)      # 10 days after the delivery; maximum 7
    assert first["status"] == "ok" and later["status"] == "stale" and spy.calls == 1
    assert later["age_days"] == 10 and "10 day(s) old" in later["reason"] and "maximum 7" in later["reason"]
    fresh = con.execute("SELECT passed, observed FROM audit.check_results WHERE run_date = ? AND check_name = "
                        "'freshness'", [date(2024, 5, 11)]).fetchall()
    assert fresh == [(False, 10.0)]


def test_changed_file_validates_again(tmp_path, con):
    write_roster(tmp_path, DELIVERY, 20)
    spy = SpyEngine()
    night(con, tmp_path, D1, spy)
    write_roster(tmp_path, DELIVERY, 21)                         # the same delivery folder, other bytes
    load2, second = night(con, tmp_path, D2, spy)
    assert "reused_from" not in load2 and spy.calls == 2 and "carried_from" not in second


def test_changed_threshold_validates_again(tmp_path, con):
    write_roster(tmp_path, DELIVERY, 20)
    spy = SpyEngine()
    night(con, tmp_path, D1, spy)
    stricter = load_thresholds().model_copy(update={"max_quarantine_share": 0.1})
    load2, second = night(con, tmp_path, D2, spy, thresholds=stricter)
    assert load2["reused_from"] == D1 and spy.calls == 2 and "carried_from" not in second
    assert second["status"] == "ok"


def test_rejected_night_is_not_carried_over(tmp_path, con):
    write_roster(tmp_path, DELIVERY, 20, bad_ids=5)               # 75 % usable IDs: rejected
    spy = SpyEngine()
    _, first = night(con, tmp_path, D1, spy)
    load2, second = night(con, tmp_path, D2, spy)
    assert first["status"] == "rejected" and load2["reused_from"] == D1
    assert spy.calls == 2 and second["status"] == "rejected" and "carried_from" not in second
