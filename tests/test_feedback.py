"""Auditors' workbooks: bad rows rejected one by one, the rest counts, the same workbook twice is a no-op."""
from __future__ import annotations

from datetime import date
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
