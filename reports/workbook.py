"""The case workbook auditors fill in (CONTRACT.md §4a): one row per case, a 核查结论 drop-down
(查实 / 查否) and a 核查说明 column; frozen header, filters, widths that fit Chinese text.

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


def write_workbook(cases: pd.DataFrame, path: Path, title: str) -> Path:
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
    book.close()
    return publish(tmp, path)


def write_district_workbooks(cases: pd.DataFrame, out: Path, run_date: str) -> dict[str, Path]:
    """One workbook per district, holding only that district's cases."""
    folder = out / "workbooks"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = {}
    for district, part in cases.groupby("district", sort=True):
        written[district] = write_workbook(part, folder / f"{district}_核对线索_{run_date}.xlsx",
                                           f"{district} 核对线索 {run_date}")
    return written
