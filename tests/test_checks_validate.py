"""validate_source: statuses ok / stale / missing / rejected and the audit rows behind them."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from checks.suite import CheckResult
from checks.validate import source_statuses, usable_sources, validate_source
from connectors.load import load_source
from crosscheck.idnum import check_digit
from crosscheck.warehouse import connect

COLS = ["家庭编号", "救助类别", "分类管理", "成员姓名", "身份证号", "与户主关系", "家庭人口数", "月保障金额", "区县",
        "乡镇街道", "村社区", "家庭住址", "救助开始日期", "残疾类别等级", "重病"]


def pid(n: int) -> str:
    body = f"4208021980{n // 100 % 12 + 1:02d}01{n % 100:03d}"[:17]
    return body + check_digit(body)


def write_roster(landing: Path, day: str, n: int, bad_ids: int = 0, bad_dates: int = 0) -> None:
    lines = [",".join(COLS)]
    for i in range(n):
        idn = pid(i)
        if i < bad_ids:
            idn = idn[:17] + ("0" if idn[17] != "0" else "1")       # wrong check digit
        start = "not-a-date" if i >= n - bad_dates else "2020-01-01"
        lines.append(",".join([f"H{i}", "城市低保", "A", "张三", idn, "户主", "1", "575", "东宝区", "龙泉街道", "某社区",
                               "某路", start, "", "否"]))
    folder = landing / "roster" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def night(con, landing, source, day: date):
    load_source(con, landing, source, day, day)
    return validate_source(con, source, day, day)


def checks_by_name(result):
    return {(c["check"], c["table"]): c for c in result["checks"]}


def test_ok_source(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20)
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert out["status"] == "ok" and out["age_days"] == 2 and out["reason"] is None
    assert all(c["passed"] for c in out["checks"] if c["critical"])
    row = con.execute("SELECT status, delivery_date, age_days, max_age_days FROM audit.source_status").fetchall()
    assert row == [("ok", date(2024, 5, 1), 2, 7)]
    assert usable_sources(con, date(2024, 5, 3)) == {"roster"}
    n = con.execute("SELECT count(*) FROM audit.check_results").fetchall()[0][0]
    assert n == len(out["checks"]) >= 8


def test_stale_source(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20)
    out = night(con, tmp_path, "roster", date(2024, 5, 20))
    assert out["status"] == "stale" and out["age_days"] == 19
    assert "19 day(s) old" in out["reason"] and "maximum 7" in out["reason"]
    assert usable_sources(con, date(2024, 5, 20)) == set()


def test_missing_source(tmp_path, con):
    write_roster(tmp_path, "2024-06-01", 20)                 # only a later delivery exists
    out = night(con, tmp_path, "roster", date(2024, 5, 20))
    assert out["status"] == "missing" and out["delivery_date"] is None
    assert "no delivery" in out["reason"]
    assert source_statuses(con, date(2024, 5, 20))["roster"]["status"] == "missing"


def test_not_loaded_counts_as_missing(con):
    out = validate_source(con, "hukou", date(2024, 5, 3), date(2024, 5, 3))
    assert out["status"] == "missing"


def test_too_few_usable_ids_rejects(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20, bad_ids=4)       # 80 % usable < 90 %
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert out["status"] == "rejected"
    c = checks_by_name(out)[("valid_id_share", "roster")]
    assert not c["passed"] and c["observed"] == pytest.approx(0.8) and c["threshold"] == 0.9
    assert "16 of 20" in out["reason"]


def test_too_many_quarantined_rows_rejects(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20, bad_dates=5)     # 25 % > 20 %
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert out["status"] == "rejected"
    c = checks_by_name(out)[("quarantine_share", "roster")]
    assert not c["passed"] and c["observed"] == pytest.approx(0.25)


def test_load_rejection_rejects(tmp_path, con):
    folder = tmp_path / "roster" / "2024-05-01"
    folder.mkdir(parents=True)
    (folder / "roster.csv").write_text("家庭编号,成员姓名\nH1,张三\n", encoding="utf-8")
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert out["status"] == "rejected"
    names = {c["check"] for c in out["checks"] if not c["passed"]}
    assert {"load_accepted", "required_columns_present", "rows_staged"} <= names


def test_row_count_against_previous_delivery(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20)
    assert night(con, tmp_path, "roster", date(2024, 5, 2))["status"] == "ok"
    write_roster(tmp_path, "2024-05-08", 8)                   # 0.4 of the previous delivery
    out = night(con, tmp_path, "roster", date(2024, 5, 9))
    assert out["status"] == "rejected"
    c = checks_by_name(out)[("row_count_vs_previous", "roster")]
    assert c["observed"] == pytest.approx(0.4) and c["threshold"] == 0.5
    assert "2024-05-01" in c["message"]
    # the next good delivery is compared with the last accepted one, not the truncated one
    write_roster(tmp_path, "2024-05-15", 21)
    out = night(con, tmp_path, "roster", date(2024, 5, 16))
    assert out["status"] == "ok", out["reason"]


def test_repeated_delivery_is_a_warning_only(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20)
    night(con, tmp_path, "roster", date(2024, 5, 2))
    write_roster(tmp_path, "2024-05-08", 20)                  # same bytes, new date
    out = night(con, tmp_path, "roster", date(2024, 5, 9))
    c = checks_by_name(out)[("repeated_delivery", None)]
    assert not c["passed"] and not c["critical"] and out["status"] == "ok"


def test_repeat_of_an_unloaded_earlier_delivery_is_recognised(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20)
    write_roster(tmp_path, "2024-05-08", 20)                  # same bytes; 05-01 was never loaded
    out = night(con, tmp_path, "roster", date(2024, 5, 9))
    c = checks_by_name(out)[("repeated_delivery", None)]
    assert not c["passed"] and "2024-05-01" in c["message"]


def test_rerun_replaces_the_nights_rows(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20)
    night(con, tmp_path, "roster", date(2024, 5, 3))
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert con.execute("SELECT count(*) FROM audit.source_status").fetchall()[0][0] == 1
    assert con.execute("SELECT count(*) FROM audit.check_results").fetchall()[0][0] == len(out["checks"])


def test_engine_can_be_swapped(tmp_path, con):
    class Always:
        name = "fake"

        def run(self, ctx):
            return [CheckResult("expect_something", "roster", False, 0.0, 1.0, True, "roster: fake failure")]

    write_roster(tmp_path, "2024-05-01", 20)
    load_source(con, tmp_path, "roster", date(2024, 5, 3), date(2024, 5, 3))
    out = validate_source(con, "roster", date(2024, 5, 3), date(2024, 5, 3), engine=Always())
    assert out["status"] == "rejected" and out["reason"] == "roster: fake failure"
    assert con.execute("SELECT DISTINCT engine FROM audit.check_results WHERE check_name = 'expect_something'"
                       ).fetchall() == [("fake",)]


def test_no_id_in_check_messages(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20, bad_ids=4, bad_dates=5)
    night(con, tmp_path, "roster", date(2024, 5, 3))
    texts = [r[0] for r in con.execute("SELECT message FROM audit.check_results UNION ALL "
                                       "SELECT reason FROM audit.source_status").fetchall() if r[0]]
    for t in texts:
        assert not re.search(r"\d{15}", t) and "张三" not in t
