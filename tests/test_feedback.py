"""Auditors' workbooks: bad rows rejected one by one, the rest counts, the same workbook twice is a no-op."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import xlsxwriter

from cases.feedback import import_feedback
from cases.ledger import ensure_ledger
from crosscheck.warehouse import connect

NIGHT = date(2026, 11, 20)


def workbook(path: Path, rows: list[list], title: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("线索")
    r = 0
    if title:
        sheet.write_row(r, 0, ["东宝区 核对线索 2026-11-19"])
        r += 1
    sheet.write_row(r, 0, ["case_id", "规则", "核查结论", "核查说明"])
    for row in rows:
        r += 1
        sheet.write_row(r, 0, row)
    book.close()
    return path


def ledger_with(con, *case_ids):
    ensure_ledger(con)
    for case_id in case_ids:
        con.execute("INSERT INTO ledger.cases (case_id, household_id, rule, status, evidence) VALUES (?, 'H', 'R02', 'new', 'e')",
                    [case_id])


def test_import_rejects_bad_rows_keeps_good_and_is_idempotent(tmp_path):
    con = connect(":memory:")
    ledger_with(con, "R02-H1", "R02-H2", "R05-H3")
    workbook(tmp_path / "feedback" / "2026-11-19" / "东宝区.xlsx", [
        ["R02-H1", "R02", "查实", "车辆在用，家访核实"],
        ["R02-H2", "R02", "查否", "车辆已过户"],
        ["R02-H9", "R02", "查实", ""],            # unknown case
        ["R05-H3", "R05", "属实", ""],            # another word
        ["", "", "", ""],                          # blank row
    ])
    first = import_feedback(con, tmp_path, NIGHT)
    assert (first.accepted, first.rejected) == (2, 2)
    assert any("row 5" in m and "unknown case_id" in m for m in first.messages)
    assert any("row 6" in m and "查实 or 查否" in m for m in first.messages)
    statuses = dict(con.execute("SELECT case_id, status FROM ledger.cases").fetchall())
    assert statuses == {"R02-H1": "confirmed", "R02-H2": "refuted", "R05-H3": "new"}
    before = [con.execute(f"SELECT count(*) FROM ledger.{t}").fetchone()[0] for t in ("conclusions", "case_history")]
    second = import_feedback(con, tmp_path, NIGHT)
    assert (second.files, second.already_imported, second.accepted) == (0, 1, 0)
    after = [con.execute(f"SELECT count(*) FROM ledger.{t}").fetchone()[0] for t in ("conclusions", "case_history")]
    assert before == after


def test_later_conclusion_kept_beside_earlier(tmp_path):
    con = connect(":memory:")
    ledger_with(con, "R02-H1")
    workbook(tmp_path / "feedback" / "2026-11-10" / "a.xlsx", [["R02-H1", "R02", "查否", "初查"]], title=False)
    workbook(tmp_path / "feedback" / "2026-11-18" / "b.xlsx", [["R02-H1", "R02", "查实", "复查属实"]], title=False)
    import_feedback(con, tmp_path, NIGHT)
    assert con.execute("SELECT conclusion FROM ledger.conclusions ORDER BY feedback_date").fetchall() == [("查否",), ("查实",)]
    assert con.execute("SELECT status FROM ledger.cases").fetchone()[0] == "confirmed"


def test_feedback_after_the_night_waits(tmp_path):
    con = connect(":memory:")
    ledger_with(con, "R02-H1")
    workbook(tmp_path / "feedback" / "2026-11-25" / "a.xlsx", [["R02-H1", "R02", "查实", ""]])
    assert import_feedback(con, tmp_path, NIGHT).files == 0


def test_unreadable_workbook_reported(tmp_path):
    con = connect(":memory:")
    ledger_with(con)
    bad = tmp_path / "feedback" / "2026-11-19" / "broken.xlsx"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a workbook")
    result = import_feedback(con, tmp_path, NIGHT)
    assert result.files == 1 and "broken.xlsx" in result.messages[0] and "cannot be read" in result.messages[0]


def test_rejected_row_keeps_what_the_auditor_wrote(tmp_path):
    con = connect(":memory:")
    ledger_with(con, "R02-H1")
    workbook(tmp_path / "feedback" / "2026-11-19" / "a.xlsx", [["R02-H7", "R02", "查否", "车辆系借用，已核实"]])
    import_feedback(con, tmp_path, NIGHT)
    assert con.execute("SELECT case_id, conclusion, note, reason FROM ledger.feedback_rejects").fetchall() == [
        ("R02-H7", "查否", "车辆系借用，已核实", "unknown case_id 'R02-H7'")]


def review_workbook(path: Path, rows: list[list], copy_note: str = "") -> Path:
    """A returned workbook with its case sheet and its 定期复核 sheet (as reports/workbook.py writes it);
    a row's 复核日期 may be a date (an Excel date cell) or typed text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("核对线索").write_row(0, 0, ["case_id", "规则", "核查结论", "核查说明"])
    sheet = book.add_worksheet("定期复核")
    sheet.write_row(0, 0, ["家庭编号", "区县", "应复核日期", "状态", "复核日期", "复核说明"])
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    for r, (household, when, note) in enumerate(rows, start=1):
        sheet.write_row(r, 0, [household, "东宝区", "2026-10-01", "已逾期"])
        if isinstance(when, date):
            sheet.write_datetime(r, 4, datetime(when.year, when.month, when.day), dates)
        else:
            sheet.write_string(r, 4, when)
        sheet.write_string(r, 5, note + copy_note)
    book.close()
    return path


def test_review_dates_come_back_through_the_workbook(tmp_path):
    from tests.staging_builder import stage

    con = connect(":memory:")
    ledger_with(con)
    stage(con, "roster", [dict(household_id=h, name="王伟", id_number="420802198001010011") for h in ("H1", "H2", "H3")],
          NIGHT)
    review_workbook(tmp_path / "feedback" / "2026-11-19" / "东宝区.xlsx", [
        ["H1", date(2026, 11, 5), "入户复核，收入无变化"],     # an Excel date cell
        ["H2", "2026/11/06", ""],                                # typed text
        ["H3", "", ""],                                          # not reviewed yet
        ["H9", "2026-11-06", "家庭编号抄错"],                     # unknown household
        ["H3", "上周", ""],                                      # not a date
        ["H3", "2026-11-30", ""],                                # after the workbook came back
    ])
    result = import_feedback(con, tmp_path, NIGHT)
    assert (result.accepted, result.rejected) == (2, 3)
    assert con.execute("SELECT household_id, reviewed_on, note FROM ledger.reviews ORDER BY household_id").fetchall() \
        == [("H1", date(2026, 11, 5), "入户复核，收入无变化"), ("H2", date(2026, 11, 6), None)]
    rejects = con.execute("SELECT row, case_id, reason, note FROM ledger.feedback_rejects ORDER BY row").fetchall()
    assert [r[:2] for r in rejects] == [(5, "H9"), (6, "H3"), (7, "H3")]
    assert "unknown 家庭编号" in rejects[0][2] and rejects[0][3] == "家庭编号抄错"
    assert "not a date" in rejects[1][2] and "after the workbook was returned" in rejects[2][2]
    assert any("[定期复核] row 5" in m for m in result.messages)
    # a second copy of the same reviews (other bytes) adds nothing
    review_workbook(tmp_path / "feedback" / "2026-11-20" / "东宝区-副本.xlsx",
                    [["H1", date(2026, 11, 5), "入户复核，收入无变化"]], copy_note="（副本）")
    assert import_feedback(con, tmp_path, NIGHT).accepted == 1
    assert con.execute("SELECT count(*) FROM ledger.reviews").fetchone()[0] == 2
