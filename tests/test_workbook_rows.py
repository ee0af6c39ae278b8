"""The 定期复核 sheet's long lists are appended to the finished workbook as inline strings
(reports/workbook.py append_text_rows). Read back, such a workbook must hold exactly what xlsxwriter writes
cell by cell, keep the auditor's fill-in cells styled, and come back through the feedback import."""
from __future__ import annotations

import zipfile
from datetime import date

import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

from reports import workbook
from reports.workbook import REVIEW_COLUMNS, write_workbook

REVIEWS = pd.DataFrame([
    # household, district, township, category, class, basis, basis date, due date, status, days
    ("H001", "东宝区", "龙泉街道", "城市低保", "A", "救助开始日期", date(2024, 3, 1), date(2026, 3, 1), "overdue", -263),
    ("H002", "东宝区", "仙居乡", "农村低保", "B", "上次复核", date(2026, 5, 2), date(2026, 11, 2), "overdue", -17),
    ("=HYPERLINK(\"x\")", "东宝区", None, "特困", "A", "救助开始日期", None, date(2026, 12, 1), "due_soon", 12),
    (" H004 ", "东宝区", "A&B<c>", "城市低保", None, "救助开始日期", date(2020, 1, 1), date(2026, 12, 9), "due_soon", 20),
    ("H005\x07", "东宝区", "龙泉街道", "", "B", "救助开始日期", date(2021, 6, 30), date(2026, 12, 30), "due_soon", 41),
], columns=["household_id", "district", "township", "category", "management_class", "basis", "basis_date",
            "due_date", "status", "days_overdue_or_left"])
NO_CASES = pd.DataFrame(columns=[c for _, c, _ in workbook.COLUMNS if c] + ["run_date"])


def sheet_rows(path, name="定期复核"):
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(name).to_python()


def test_appended_rows_read_back_as_xlsxwriter_writes_them(tmp_path, monkeypatch):
    cell_by_cell = write_workbook(NO_CASES, tmp_path / "a.xlsx", "t", REVIEWS)
    monkeypatch.setattr(workbook, "DIRECT_ROWS_ABOVE", 1)
    appended = write_workbook(NO_CASES, tmp_path / "b.xlsx", "t", REVIEWS)
    expected = sheet_rows(cell_by_cell)
    assert sheet_rows(appended) == expected
    assert len(expected) == 1 + len(REVIEWS)
    assert expected[3][0] == "'=HYPERLINK(\"x\")"             # neutralised, not a formula
    assert expected[4][0] == " H004 " and expected[4][2] == "A&B<c>"
    with zipfile.ZipFile(appended) as z:
        xml = z.read("xl/worksheets/sheet2.xml").decode()
        assert z.testzip() is None
    assert '<dimension ref="A1:K6"/>' in xml
    assert "_x0007_" in xml and "\x07" not in xml                 # a control character cannot be in XML
    # the auditor's two cells are the coloured, unlocked fill-in cells in every row, appended or not
    style = xml.split('<c r="J2" s="')[1].split('"')[0]
    for row in range(2, 2 + len(REVIEWS)):
        assert f'<c r="J{row}" s="{style}"/>' in xml and f'<c r="K{row}" s="{style}"/>' in xml


def test_appending_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(workbook, "DIRECT_ROWS_ABOVE", 1)
    a = write_workbook(NO_CASES.assign(run_date=[]), tmp_path / "a.xlsx", "t", REVIEWS)
    b = write_workbook(NO_CASES.assign(run_date=[]), tmp_path / "b.xlsx", "t", REVIEWS)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("rows", [1001, 2500])
def test_long_review_list_is_appended_and_complete(tmp_path, rows):
    many = pd.DataFrame([(f"H{i:05d}", "东宝区", "龙泉街道", "城市低保", "A", "救助开始日期", date(2020, 1, 1),
                          date(2026, 1, 1), "overdue", -300) for i in range(rows)], columns=REVIEWS.columns)
    path = write_workbook(NO_CASES, tmp_path / "many.xlsx", "t", many)
    got = sheet_rows(path)
    assert [h for h, _, _ in REVIEW_COLUMNS] == got[0]
    assert [r[0] for r in got[1:]] == [f"H{i:05d}" for i in range(rows)]
    assert got[-1][6:9] == ["2020-01-01", "2026-01-01", "已逾期"]
    with zipfile.ZipFile(path) as z:
        assert 't="inlineStr"' in z.read("xl/worksheets/sheet2.xml").decode()


def test_arrow_character_sets_are_pythons():
    """The appended rows are escaped with Arrow's RE2 patterns; over every code point they must agree with
    what xlsxwriter and crosscheck.safety decide in Python (space at the edge, illegal in XML, formula)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from crosscheck.safety import FORMULA_PREFIXES, FORMULA_RE2

    chars = [chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000]
    arr = pa.array(chars)
    space = pc.match_substring_regex(arr, "^" + workbook._SPACE_RE2).to_pylist()
    illegal = pc.match_substring_regex(arr, workbook._XML_ILLEGAL_RE2).to_pylist()
    formula = pc.match_substring_regex(arr, FORMULA_RE2).to_pylist()
    assert [c for c, s in zip(chars, space) if s != c.isspace()] == []
    assert [c for c, s in zip(chars, illegal) if s != bool(workbook._XML_ILLEGAL.search(c))] == []
    assert [c for c, s in zip(chars, formula) if s != c.startswith(FORMULA_PREFIXES)] == []


def test_cells_that_are_not_text_are_written_as_python_writes_them(tmp_path, monkeypatch):
    odd = REVIEWS.assign(management_class=[1, 2, None, 3, 4], township=["x", "\u3000镇", "镇\u3000", "a\tb", "y"])
    monkeypatch.setattr(workbook, "DIRECT_ROWS_ABOVE", 1)
    got = sheet_rows(write_workbook(NO_CASES, tmp_path / "odd.xlsx", "t", odd))
    assert [r[4] for r in got[1:]] == ["1.0", "2.0", "", "3.0", "4.0"]       # str() of the float column pandas made
    assert [r[2] for r in got[1:]] == ["x", "\u3000镇", "镇\u3000", "a\tb", "y"]
    with zipfile.ZipFile(tmp_path / "odd.xlsx") as z:
        xml = z.read("xl/worksheets/sheet2.xml").decode()
    # rows after the first are the appended inline strings
    assert '<t xml:space="preserve">\u3000镇</t>' in xml and '<t xml:space="preserve">镇\u3000</t>' in xml


def test_case_sheet_cells_are_text_neutralised_and_blank_when_missing(tmp_path):
    """The 核对线索 sheet: every value as text, a formula neutralised, a missing date blank (not 'NaT')."""
    case = {c: f"v-{c}" for _, c, _ in workbook.COLUMNS if c}
    case.update(member_name="=HYPERLINK(\"x\")", link_score=0.95, priority=1)
    cases = pd.DataFrame([case, {**case, "case_id": "second"}])
    cases["deadline"] = pd.to_datetime(["2026-12-18", None])
    cases["run_date"] = pd.Timestamp("2026-11-19")
    got = sheet_rows(write_workbook(cases, tmp_path / "cases.xlsx", "t"), "核对线索")
    header = got[0]
    first, second = (dict(zip(header, row)) for row in got[1:])
    assert first["成员姓名"] == "'=HYPERLINK(\"x\")" and first["关联得分"] == "0.95" and first["优先级"] == "1"
    assert first["办理期限"] == "2026-12-18 00:00:00" and second["办理期限"] == ""
    assert first["核查结论"] == "" and first["case_id"] == "v-case_id"
