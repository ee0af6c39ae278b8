"""validate_source: statuses ok / stale / missing / rejected and the audit rows behind them."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from checks.expectations import Observation
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
    assert c["observed"] == pytest.approx(0.4) and c["threshold"] == pytest.approx(0.5)
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
        """Fails every expectation it is given."""
        name = "fake"

        def evaluate(self, con, expectations, *, source, run_date):
            return [Observation(False, 1, 1, 0) for _ in expectations]

    write_roster(tmp_path, "2024-05-01", 20)
    load_source(con, tmp_path, "roster", date(2024, 5, 3), date(2024, 5, 3))
    out = validate_source(con, "roster", date(2024, 5, 3), date(2024, 5, 3), engine=Always())
    assert out["status"] == "rejected" and "rows staged" in out["reason"]
    assert "「月保障金额」1 / 1" in out["reason"]
    assert con.execute("SELECT DISTINCT engine FROM audit.check_results WHERE check_name = 'codes_in_table'"
                       ).fetchall() == [("fake",)]


def test_no_id_in_check_messages(tmp_path, con):
    write_roster(tmp_path, "2024-05-01", 20, bad_ids=4, bad_dates=5)
    night(con, tmp_path, "roster", date(2024, 5, 3))
    texts = [r[0] for r in con.execute("SELECT message FROM audit.check_results UNION ALL "
                                       "SELECT reason FROM audit.source_status").fetchall() if r[0]]
    for t in texts:
        assert not re.search(r"\d{15}", t) and "张三" not in t


def write_rows(landing: Path, day: str, rows: list[list[str]]) -> None:
    folder = landing / "roster" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "roster.csv").write_text("\n".join([",".join(COLS)] + [",".join(r) for r in rows]) + "\n",
                                       encoding="utf-8-sig")


def good_row(i: int) -> list[str]:
    return [f"H{i}", "城市低保", "A", "张三", pid(i), "户主", "1", "575", "东宝区", "龙泉街道", "某社区", "某路",
            "2020-01-01", "", "否"]


def test_codes_and_ranges_quarantine_rows_with_reason_and_keep_accounting(tmp_path, con):
    rows = [good_row(i) for i in range(40)]
    rows[3][1] = "低保户"                      # 救助类别 not in its code table
    rows[5][6] = "0"                           # 家庭人口数 below 1
    rows[7][12] = "2024-09-01"                 # 救助开始日期 after the delivery date + 31 days
    rows[9][1], rows[9][7] = "城镇低保", "-5"     # two reasons on one row: one quarantine row
    write_rows(tmp_path, "2024-05-01", rows)
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert out["status"] == "ok", out["reason"]
    q = dict(con.execute("SELECT row_no, reason FROM audit.quarantine WHERE source = 'roster'").fetchall())
    assert sorted(q) == [4, 6, 8, 10]                                  # data rows 3, 5, 7, 9 → lines 4, 6, 8, 10
    assert "「救助类别」的值「低保户」不在代码表「救助类别」中" in q[4]
    assert "「家庭人口数」数值「0」超出合理范围 1～30" in q[6]
    assert "「救助开始日期」日期「2024-09-01」超出合理范围" in q[8]
    assert "城镇低保" in q[10] and "「-5" in q[10]
    assert con.execute("SELECT count(*) FROM staging.roster").fetchone()[0] == 36
    assert con.execute("SELECT rows_read, rows_staged, rows_quarantined FROM audit.load_files").fetchall() == [(40, 36, 4)]
    c = checks_by_name(out)[("codes_in_table", "roster")] if ("codes_in_table", "roster") in checks_by_name(out) else None
    assert c is not None and c["passed"]
    # re-validating the same night (a resumed run) moves nothing twice and keeps the accounting whole
    out = validate_source(con, "roster", date(2024, 5, 3), date(2024, 5, 3))
    assert out["status"] == "ok"
    assert con.execute("SELECT rows_read, rows_staged, rows_quarantined FROM audit.load_files").fetchall() == [(40, 36, 4)]


def test_a_quarantine_forgets_the_kept_content_fingerprint(tmp_path, con):
    """The link keeps each staging table's content fingerprint in its comment (linkage/incremental.py);
    rows moved out of staging make it stale, so the quarantine forgets it."""
    from crosscheck.warehouse import keep_fingerprint, kept_fingerprint, table_columns

    rows = [good_row(i) for i in range(40)]
    rows[3][1] = "低保户"
    write_rows(tmp_path, "2024-05-01", rows)
    load_source(con, tmp_path, "roster", date(2024, 5, 3), date(2024, 5, 3))
    cols = table_columns(con, "staging", "roster")
    keep_fingerprint(con, "staging", "roster", "before-the-quarantine", 40, cols)
    assert kept_fingerprint(con, "staging", "roster", 40, cols) == "before-the-quarantine"
    assert validate_source(con, "roster", date(2024, 5, 3), date(2024, 5, 3))["status"] == "ok"
    assert con.execute("SELECT count(*) FROM staging.roster").fetchone()[0] == 39
    assert con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = 'staging' "
                       "AND table_name = 'roster'").fetchone()[0] is None


def test_too_many_bad_codes_reject_the_source(tmp_path, con):
    rows = [good_row(i) for i in range(40)]
    for r in rows[:5]:                          # 12.5% > max_row_failure_share 5%
        r[2] = "C"
    write_rows(tmp_path, "2024-05-01", rows)
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert out["status"] == "rejected"
    assert "「分类管理」5 / 40 个值不在代码表中" in out["reason"]
    # a rejected source keeps its rows where they are: nothing is quarantined one by one
    assert con.execute("SELECT count(*) FROM audit.quarantine").fetchone()[0] == 0


def test_padded_codes_and_letter_codes(tmp_path, con):
    from checks.expectations import build_expectations
    from crosscheck.settings import load_sources
    cfg = load_sources()
    exps = build_expectations("vehicle", cfg.sources["vehicle"], cfg.code_tables, as_of=date(2024, 5, 3),
                              delivery_date=date(2024, 5, 1), min_valid_id_share=0.9, max_row_failure_share=0.05)
    con.execute("CREATE OR REPLACE TABLE staging.vehicle (plate_type VARCHAR, status VARCHAR)")
    con.execute("INSERT INTO staging.vehicle VALUES ('2', 'AG'), ('02', 'A'), ('52', 'EGQ'), ('98', 'AZ'), (NULL, NULL)")
    from checks.suite import SqlCheckEngine
    by_label = {e.label: e for e in exps if e.check == "codes_in_table"}
    obs = SqlCheckEngine().evaluate(con, [by_label["HPZL"], by_label["ZT"]], source="vehicle", run_date=date(2024, 5, 3))
    assert (obs[0].element_count, obs[0].unexpected_count) == (4, 1)   # 98 is no plate type; 2 is 02
    assert (obs[1].element_count, obs[1].unexpected_count) == (4, 1)   # Z is no status letter


def test_duplicate_keys_are_reported_not_quarantined(tmp_path, con):
    rows = [good_row(i) for i in range(20)]
    rows[1] = rows[0][:]
    rows[1][3] = "李四"                          # same household and ID, another name: not an exact duplicate
    write_rows(tmp_path, "2024-05-01", rows)
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    c = checks_by_name(out)[("duplicate_keys", "roster")]
    assert out["status"] == "ok" and not c["passed"] and not c["critical"]
    assert "重复 2 / 20 行" in c["message"]
    assert con.execute("SELECT count(*) FROM staging.roster").fetchone()[0] == 20


def test_keep_rows_range_lists_the_row_for_stewards_but_keeps_it_staged(tmp_path, con):
    """A registration dated after the delivery is the department's record (POLICY.md: it does not count on
    the as-of date, which the rules decide): with ``keep_rows`` it stays staged and is listed by row."""
    from crosscheck.settings import load_sources
    from reports.stewards import delivery_problems, problem_line

    cfg = load_sources()
    source = cfg.sources["roster"]
    table = source.tables["roster"]
    column = table.columns["救助开始日期"]
    column = column.model_copy(update={"range": column.range.model_copy(update={"keep_rows": True})})
    table = table.model_copy(update={"columns": {**table.columns, "救助开始日期": column}})
    source = source.model_copy(update={"tables": {**source.tables, "roster": table}})
    cfg = cfg.model_copy(update={"sources": {**cfg.sources, "roster": source}})
    rows = [good_row(i) for i in range(40)]
    rows[7][12] = "2024-09-01"                 # after the delivery date + 31 days
    write_rows(tmp_path, "2024-05-01", rows)
    load_source(con, tmp_path, "roster", date(2024, 5, 3), date(2024, 5, 3))
    out = validate_source(con, "roster", date(2024, 5, 3), date(2024, 5, 3), sources=cfg)
    assert out["status"] == "ok", out["reason"]
    assert con.execute("SELECT count(*) FROM audit.quarantine").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM staging.roster").fetchone()[0] == 40
    assert con.execute("SELECT rows_read, rows_staged, rows_quarantined FROM audit.load_files").fetchall() == [(40, 40, 0)]
    notes = con.execute("SELECT file_name, row_no, reason FROM audit.row_notes").fetchall()
    assert [(f, r) for f, r, _ in notes] == [("roster.csv", 8)]
    assert "「救助开始日期」日期「2024-09-01」超出合理范围" in notes[0][2] and "行已保留" in notes[0][2]
    kept = [p for p in delivery_problems(con, date(2024, 5, 3)) if p["status"] == "kept"]
    assert len(kept) == 1 and kept[0]["rows"] == [8]
    assert "roster · roster.csv · 第 8 行" in problem_line(kept[0])
    # re-validating the night lists the row once, not twice
    validate_source(con, "roster", date(2024, 5, 3), date(2024, 5, 3), sources=cfg)
    assert con.execute("SELECT count(*) FROM audit.row_notes").fetchone()[0] == 1
    # without keep_rows the same row is quarantined (the default)
    con.execute("DELETE FROM audit.row_notes")
    out = night(con, tmp_path, "roster", date(2024, 5, 3))
    assert con.execute("SELECT row_no FROM audit.quarantine").fetchall() == [(8,)]
