"""The case workbook auditors fill in (CONTRACT.md §4a): one row per case, a 核查结论 drop-down
(查实 / 查否) and a 核查说明 column; frozen header, filters, widths that fit Chinese text. A second sheet,
定期复核, lists the district's households due for their periodic review with a 复核日期 to fill in; the
next night's feedback import records those reviews (cases/feedback.py).

Every cell is written as text with write_string (never as a formula) and text that a spreadsheet would
run as a formula is neutralised as well, for when the file is re-saved as CSV.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import xlsxwriter

from crosscheck.safety import neutralise_cell, publish

COLUMNS = [  # (header, export column or None for the auditor's columns, width in characters)
    ("case_id", "case_id", 22), ("规则", "rule", 6), ("规则名称", "rule_name", 22), ("区县", "district", 12),
    ("乡镇街道", "township", 12), ("家庭编号", "household_id", 16), ("救助类别", "category", 10),
    ("成员姓名", "member_name", 10), ("身份证号（遮盖）", "member_id_masked", 22), ("证据", "evidence", 70),
    ("关联方式", "link", 10), ("关联得分", "link_score", 9), ("优先级", "priority", 7), ("状态", "status", 7),
    ("办理期限", "deadline", 12), ("责任单位", "responsible_unit", 12),
    ("核查结论", None, 10), ("核查说明", None, 40),
]


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def write_workbook(cases: pd.DataFrame, path: Path, title: str, reviews: pd.DataFrame | None = None) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    book = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False})
    book.set_properties({"title": title})
    sheet = book.add_worksheet("核对线索")
    head = book.add_format({"bold": True, "bg_color": "#DCE6F1", "border": 1, "text_wrap": True})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    fill = book.add_format({"bg_color": "#FFF2CC", "border": 1, "valign": "top", "locked": False})
    for col, (header, source, width) in enumerate(COLUMNS):
        sheet.write_string(0, col, header, head)
        if source is not None and len(cases):
            longest = max(_width(str(v)) for v in cases[source].astype(str)) + 2
            width = min(max(width, _width(header) + 2, longest if source != "evidence" else width), 80)
        sheet.set_column(col, col, width)
    for row, record in enumerate(cases.to_dict("records"), start=1):
        for col, (_, source, _) in enumerate(COLUMNS):
            if source is None:
                sheet.write_blank(row, col, None, fill)
                continue
            value = record[source]
            text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
            sheet.write_string(row, col, neutralise_cell(text), wrap if source == "evidence" else None)
    last = max(len(cases), 1)
    conclusion_col = [h for h, _, _ in COLUMNS].index("核查结论")
    sheet.data_validation(1, conclusion_col, max(last, 1000), conclusion_col, {
        "validate": "list", "source": ["查实", "查否"], "error_title": "核查结论",
        "error_message": "请填写 查实 或 查否"})
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, last, len(COLUMNS) - 1)
    if reviews is not None and len(reviews):
        _write_reviews_sheet(book, reviews)
    book.close()
    return publish(tmp, path)


REVIEW_COLUMNS = [  # (header, column of ledger.reviews_due or None for the auditor's, width)
    ("家庭编号", "household_id", 18), ("区县", "district", 12), ("乡镇街道", "township", 12),
    ("救助类别", "category", 10), ("分类管理", "management_class", 9), ("计算起点", "basis", 12),
    ("起点日期", "basis_date", 12), ("应复核日期", "due_date", 12), ("状态", "status_text", 10),
    ("复核日期", None, 12), ("复核说明", None, 40),
]
REVIEW_STATUS = {"overdue": "已逾期", "due_soon": "即将到期"}


def _write_reviews_sheet(book, reviews: pd.DataFrame) -> None:
    sheet = book.add_worksheet("定期复核")
    head = book.add_format({"bold": True, "bg_color": "#DCE6F1", "border": 1, "text_wrap": True})
    fill = book.add_format({"bg_color": "#FFF2CC", "border": 1, "locked": False, "num_format": "yyyy-mm-dd"})
    for col, (header, _, width) in enumerate(REVIEW_COLUMNS):
        sheet.write_string(0, col, header, head)
        sheet.set_column(col, col, max(width, _width(header) + 2))
    rows = reviews.assign(status_text=reviews["status"].map(REVIEW_STATUS).fillna(reviews["status"]))
    for row, record in enumerate(rows.to_dict("records"), start=1):
        for col, (_, source, _) in enumerate(REVIEW_COLUMNS):
            if source is None:
                sheet.write_blank(row, col, None, fill)
            else:
                value = record[source]
                sheet.write_string(row, col, neutralise_cell("" if value is None or pd.isna(value) else str(value)[:10]
                                                             if "date" in source else str(value)))
    date_col = [h for h, _, _ in REVIEW_COLUMNS].index("复核日期")
    sheet.data_validation(1, date_col, max(len(rows), 1000), date_col, {
        "validate": "date", "criteria": "between", "minimum": pd.Timestamp("2000-01-01").to_pydatetime(),
        "maximum": pd.Timestamp("2100-12-31").to_pydatetime(), "error_title": "复核日期",
        "error_message": "请填写日期，例如 2026-11-05"})
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(len(rows), 1), len(REVIEW_COLUMNS) - 1)


def write_district_workbooks(cases: pd.DataFrame, out: Path, run_date: str,
                             reviews: pd.DataFrame | None = None) -> dict[str, Path]:
    """One workbook per district, holding only that district's cases (and its reviews due)."""
    folder = out / "workbooks"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    reviews = reviews if reviews is not None else pd.DataFrame(columns=[c for _, c, _ in REVIEW_COLUMNS if c])
    districts = sorted(set(cases["district"].dropna()) | set(reviews["district"].dropna()))
    written = {}
    for district in districts:
        written[district] = write_district_workbook(cases, reviews, district, folder, run_date)
    return written


def write_district_workbook(cases: pd.DataFrame, reviews: pd.DataFrame | None, district: str, folder: Path,
                            run_date: str) -> Path:
    """``<folder>/<区县>_核对线索_<date>.xlsx`` with only the district's cases and reviews due."""
    mine = reviews[reviews["district"] == district] if reviews is not None else None
    return write_workbook(cases[cases["district"] == district], folder / f"{district}_核对线索_{run_date}.xlsx",
                          f"{district} 核对线索 {run_date}", mine)
