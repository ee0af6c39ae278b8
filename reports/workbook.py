"""The case workbook auditors fill in (CONTRACT.md §4a): one row per case, a 核查结论 drop-down
(查实 / 查否) and a 核查说明 column; frozen header, filters, widths that fit Chinese text. A second sheet,
定期复核, lists the district's households due for their periodic review with a 复核日期 to fill in; the
next night's feedback import records those reviews (cases/feedback.py).

Every cell is written as text with write_string (never as a formula) and text that a spreadsheet would
run as a formula is neutralised as well, for when the file is re-saved as CSV.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
import subprocess
import sys
import threading
import zipfile
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from crosscheck.runtime import background_helper
from crosscheck.safety import FORMULA_RE2, publish

log = logging.getLogger(__name__)

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


def _case_cells(cases: pd.DataFrame) -> pa.Table:
    """Each case's cells as written, one Arrow column per COLUMNS entry (as ``_review_cells``): str(value),
    '' for a missing one, neutralised; null for the auditor's columns."""
    return pa.table([_text_array(cases[source], False) if source else pa.nulls(len(cases), pa.string())
                     for _, source, _ in COLUMNS], names=[f"c{i}" for i in range(len(COLUMNS))])


def _review_cells(reviews: pd.DataFrame) -> pa.Table:
    """Each review due as the cells written, one Arrow column per REVIEW_COLUMNS entry: text (a date as its
    first ten characters, '' when missing, neutralised) or null for the auditor's columns. Built with Arrow
    compute: a Jingmen-sized city has 259 thousand reviews due, 2.8 million cells."""
    status = reviews["status"].map(REVIEW_STATUS).fillna(reviews["status"])
    columns = []
    for _, source, _ in REVIEW_COLUMNS:
        if source is None:
            columns.append(pa.nulls(len(reviews), pa.string()))
        else:
            columns.append(_text_array(status if source == "status_text" else reviews[source], "date" in source))
    return pa.table(columns, names=[f"c{i}" for i in range(len(REVIEW_COLUMNS))])


def _text_array(values: pd.Series, date_prefix: bool) -> pa.Array:
    """str(value) ('' for a missing one; with ``date_prefix`` its first ten characters), neutralised."""
    arr = pa.array(values, from_pandas=True)
    if date_prefix:
        arr = pc.utf8_slice_codeunits(arr.cast(pa.string()), 0, 10)
    elif not pa.types.is_string(arr.type):   # numbers and the like: Python's own str(), as written before
        arr = pa.array([None if missing else str(v) for v, missing in zip(values.tolist(), values.isna().tolist())],
                       pa.string())
    arr = pc.fill_null(arr, "")
    formula = pc.match_substring_regex(arr, FORMULA_RE2)
    return pc.if_else(formula, pc.binary_join_element_wise("'", arr, ""), arr)


def _cell_rows(cells: pa.Table) -> list[tuple]:
    """The table's rows as tuples (None for a null cell), for xlsxwriter."""
    return list(zip(*(column.to_pylist() for column in cells.columns)))


def write_workbook(cases: pd.DataFrame, path: Path, title: str, reviews: pd.DataFrame | None = None) -> Path:
    cells = _review_cells(reviews) if reviews is not None and len(reviews) else None
    return _write_book(cases, path, title, cells)


def _write_book(cases: pd.DataFrame, path: Path, title: str, review_cells: pa.Table | None) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    book = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False})
    # a fixed creation time (the night's date): the same night writes the same bytes, so a rerun or a
    # resumed night is byte-identical to an uninterrupted one
    created = (datetime.combine(pd.Timestamp(cases["run_date"].iloc[0]).date(), datetime.min.time())
               if len(cases) and "run_date" in cases else datetime(2000, 1, 1))
    book.set_properties({"title": title, "created": created})
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
    formats = [wrap if source == "evidence" else None for _, source, _ in COLUMNS]
    _write_rows(sheet, _cell_rows(_case_cells(cases)), formats, fill)
    last = max(len(cases), 1)
    conclusion_col = [h for h, _, _ in COLUMNS].index("核查结论")
    sheet.data_validation(1, conclusion_col, max(last, 1000), conclusion_col, {
        "validate": "list", "source": ["查实", "查否"], "error_title": "核查结论",
        "error_message": "请填写 查实 或 查否"})
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, last, len(COLUMNS) - 1)
    appended = _write_reviews_sheet(book, review_cells) if review_cells is not None and review_cells.num_rows else None
    book.close()
    if appended is not None and appended.num_rows:
        append_text_rows(tmp, f"xl/worksheets/sheet{len(book.worksheets())}.xml", appended, first_row=3)
    return publish(tmp, path)


def _write_rows(sheet, rows: list[tuple], formats: list, fill) -> None:
    """Row by row, cell by cell (so the shared strings keep their order): text as text, None as the
    auditor's blank, coloured cell."""
    write_string, write_blank = sheet.write_string, sheet.write_blank
    cells = list(zip(range(len(formats)), formats))
    for row, texts in enumerate(rows, start=1):
        for (col, fmt), text in zip(cells, texts):
            if text is None:
                write_blank(row, col, None, fill)
            else:
                write_string(row, col, text, fmt)


REVIEW_COLUMNS = [  # (header, column of ledger.reviews_due or None for the auditor's, width)
    ("家庭编号", "household_id", 18), ("区县", "district", 12), ("乡镇街道", "township", 12),
    ("救助类别", "category", 10), ("分类管理", "management_class", 9), ("计算起点", "basis", 12),
    ("起点日期", "basis_date", 12), ("应复核日期", "due_date", 12), ("状态", "status_text", 10),
    ("复核日期", None, 12), ("复核说明", None, 40),
]
REVIEW_STATUS = {"overdue": "已逾期", "due_soon": "即将到期"}


# Above this many rows the 定期复核 sheet's rows after the first are appended to the finished file as inline
# strings (append_text_rows): xlsxwriter costs about 4 µs a cell, 12 s for the 2.85 million cells of a
# Jingmen-sized city; the appended rows take about a tenth of that.
DIRECT_ROWS_ABOVE = 1000


def _write_reviews_sheet(book, cells: pa.Table) -> pa.Table:
    """The 定期复核 sheet; returns the rows left for ``append_text_rows`` (none for a short list)."""
    sheet = book.add_worksheet("定期复核")
    head = book.add_format({"bold": True, "bg_color": "#DCE6F1", "border": 1, "text_wrap": True})
    fill = book.add_format({"bg_color": "#FFF2CC", "border": 1, "locked": False, "num_format": "yyyy-mm-dd"})
    for col, (header, _, width) in enumerate(REVIEW_COLUMNS):
        sheet.write_string(0, col, header, head)
        sheet.set_column(col, col, max(width, _width(header) + 2))
    n = cells.num_rows
    written = n if n <= DIRECT_ROWS_ABOVE else 1
    _write_rows(sheet, _cell_rows(cells.slice(0, written)), [None] * len(REVIEW_COLUMNS), fill)
    date_col = [h for h, _, _ in REVIEW_COLUMNS].index("复核日期")
    sheet.data_validation(1, date_col, max(n, 1000), date_col, {
        "validate": "date", "criteria": "between", "minimum": pd.Timestamp("2000-01-01").to_pydatetime(),
        "maximum": pd.Timestamp("2100-12-31").to_pydatetime(), "error_title": "复核日期",
        "error_message": "请填写日期，例如 2026-11-05"})
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(n, 1), len(REVIEW_COLUMNS) - 1)
    return cells.slice(written)


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# The same sets in RE2's syntax (Arrow's regular expressions): what XML cannot hold, what Python's
# str.isspace calls a space (xml:space="preserve" when a text begins or ends with one).
_XML_ILLEGAL_RE2 = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]"
_SPACE_RE2 = (r"[\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}"
              r"\x{3000}]")


def _xml_text(text: str) -> str:
    """A cell's text as the XML of an inline string (escaped as xlsxwriter escapes shared strings)."""
    if _XML_ILLEGAL.search(text):
        text = _XML_ILLEGAL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f"<t{space}>{text}</t>"


def append_text_rows(path: Path, sheet_xml: str, cells: pa.Table, *, first_row: int) -> None:
    """Append the rows of ``cells`` (one string column per sheet column: text, or null for the auditor's blank
    cell) to a sheet of the finished workbook at ``path``, from row ``first_row`` on: text as inline strings,
    a null cell with the style xlsxwriter gave the same column in the row above (the coloured, unlocked cell
    to fill in), '' as no cell. The sheet's dimension grows to cover them. The row XML is built with Arrow
    compute, column by column; entries keep their order, timestamps and compression, so the same rows give
    the same bytes."""
    with zipfile.ZipFile(path) as zin:
        infos = zin.infolist()
        blobs = {i.filename: zin.read(i) for i in infos}
    xml = blobs[sheet_xml].decode("utf-8")
    if "</sheetData>" not in xml:
        raise ValueError(f"{sheet_xml} has no sheetData to append to")
    above = first_row - 1
    styles = dict(re.findall(rf'<c r="([A-Z]+){above}" s="(\d+)"/>', xml))
    ncols = cells.num_columns
    letters = [xl_col_to_name(i) for i in range(ncols)]
    numbers = pa.array(range(first_row, first_row + cells.num_rows), pa.int64()).cast(pa.string())
    row_cells = [_cells_xml(column, letter, numbers, styles.get(letter, "0"))
                 for letter, column in zip(letters, cells.columns)]
    rows = pc.binary_join_element_wise('<row r="', numbers, f'" spans="1:{ncols}">', *row_cells, "</row>", "")
    last = first_row + cells.num_rows - 1
    xml = xml.replace("</sheetData>", "".join(rows.to_pylist()) + "</sheetData>", 1)
    xml = re.sub(r'<dimension ref="[A-Z]+1:[A-Z]+\d+"/>', f'<dimension ref="A1:{letters[-1]}{last}"/>', xml, count=1)
    blobs[sheet_xml] = xml.encode("utf-8")
    rewritten = path.with_name(path.name + ".rows")
    with zipfile.ZipFile(rewritten, "w") as zout:
        for info in infos:   # the long sheet at zlib's fastest level: a third of the time, a fifth larger
            zout.writestr(info, blobs[info.filename], compresslevel=1 if info.filename == sheet_xml else None)
    os.replace(rewritten, path)


def _cells_xml(texts: pa.ChunkedArray, letter: str, numbers: pa.Array, style: str) -> pa.Array:
    """One column's cells as XML: an inline string, the styled blank for null, nothing for ''."""
    texts = texts.combine_chunks()
    blank = pc.binary_join_element_wise(f'<c r="{letter}', numbers, f'" s="{style}"/>', "")
    if texts.null_count == len(texts):           # the auditor's column
        return blank
    filled = pc.binary_join_element_wise(f'<c r="{letter}', numbers, '" t="inlineStr"><is>',
                                         _xml_texts(pc.fill_null(texts, "")), "</is></c>", "")
    filled = pc.if_else(pc.equal(texts, ""), "", filled)
    return pc.if_else(pc.is_null(texts), blank, filled) if texts.null_count else filled


def _xml_texts(texts: pa.Array) -> pa.Array:
    """``_xml_text`` over an array: escaped in Arrow; the rare text with a character XML cannot hold goes
    through ``_xml_text`` itself."""
    escaped = texts
    if pc.any(pc.match_substring_regex(texts, "[&<>]")).as_py():
        for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            escaped = pc.replace_substring(escaped, char, entity)
    edge_space = pc.or_(pc.match_substring_regex(texts, "^" + _SPACE_RE2),
                        pc.match_substring_regex(texts, _SPACE_RE2 + "$"))
    out = pc.if_else(edge_space, pc.binary_join_element_wise('<t xml:space="preserve">', escaped, "</t>", ""),
                     pc.binary_join_element_wise("<t>", escaped, "</t>", ""))
    illegal = pc.match_substring_regex(texts, _XML_ILLEGAL_RE2).to_numpy(zero_copy_only=False)
    if illegal.any():
        fixed = out.to_pylist()
        originals = texts.to_pylist()
        for i in illegal.nonzero()[0]:
            fixed[i] = _xml_text(originals[i])
        out = pa.array(fixed, pa.string())
    return out


def workbook_name(district: str, run_date: str) -> str:
    return f"{district}_核对线索_{run_date}.xlsx"


def write_district_workbooks(cases: pd.DataFrame, out: Path, run_date: str,
                             reviews: pd.DataFrame | None = None) -> dict[str, Path]:
    """One workbook per district, holding only that district's cases (and its reviews due)."""
    folder = out / "workbooks"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    reviews = reviews if reviews is not None else pd.DataFrame(columns=[c for _, c, _ in REVIEW_COLUMNS if c])
    districts = sorted(set(cases["district"].dropna()) | set(reviews["district"].dropna()))
    cells = _review_cells(reviews) if len(reviews) else None
    written = {}
    for district in districts:
        mine = cells.filter(pa.array((reviews["district"] == district).to_numpy())) if cells is not None else None
        written[district] = _write_book(cases[cases["district"] == district], folder / workbook_name(district, run_date),
                                        f"{district} 核对线索 {run_date}", mine)
    return written


def write_district_workbook(cases: pd.DataFrame, reviews: pd.DataFrame | None, district: str, folder: Path,
                            run_date: str) -> Path:
    """``<folder>/<区县>_核对线索_<date>.xlsx`` with only the district's cases and reviews due."""
    mine = reviews[reviews["district"] == district] if reviews is not None else None
    return write_workbook(cases[cases["district"] == district], folder / workbook_name(district, run_date),
                          f"{district} 核对线索 {run_date}", mine)


class WorkbookJob:
    """``write_district_workbooks`` running in a helper process (``start_district_workbooks``), so that the
    workbooks, pure Python spreadsheet writing, take the other core while the night writes its reports.

    The cases and reviews go to the helper through a pipe (never through a file); ``result()`` waits and
    returns district → path. Should the helper fail for any reason, the workbooks are written here instead,
    so the outcome is the same either way (and an error that is not the helper's own is raised from here)."""

    def __init__(self, cases: pd.DataFrame, out: Path, run_date: str, reviews: pd.DataFrame | None):
        self.args = (cases, Path(out), run_date, reviews)
        payload = pickle.dumps((cases, str(Path(out).resolve()), run_date, reviews), protocol=pickle.HIGHEST_PROTOCOL)
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from reports.workbook import _helper_main; _helper_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=background_helper)
        self._feeder = threading.Thread(target=self._feed, args=(payload,), daemon=True, name="workbook-feed")
        self._feeder.start()

    def _feed(self, payload: bytes) -> None:
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.close()
        except OSError:          # the helper died early: result() sees it and writes here instead
            pass

    def result(self) -> dict[str, Path]:
        self._feeder.join()                 # the helper reads all its input before it writes anything
        self.proc.stdin = None              # closed by the feeder; communicate() only reads
        out, err = self.proc.communicate()
        if self.proc.returncode == 0:
            try:
                names = json.loads(out)
                return {district: self.args[1] / "workbooks" / Path(path).name for district, path in names.items()}
            except ValueError:
                pass
        tail = " | ".join(line for line in err.decode("utf-8", "replace").splitlines()[-3:] if line.strip())
        log.warning("workbook helper failed (exit %s): %s; writing the workbooks in this process",
                    self.proc.returncode, tail)
        return write_district_workbooks(*self.args)


def start_district_workbooks(cases: pd.DataFrame, out: Path, run_date: str,
                             reviews: pd.DataFrame | None = None) -> WorkbookJob:
    """Start ``write_district_workbooks`` in a helper process; ``.result()`` waits for it."""
    return WorkbookJob(cases, out, run_date, reviews)


def _helper_main() -> None:
    """The helper process: (cases, out, run_date, reviews) pickled on stdin, district → path as JSON on stdout."""
    cases, out, run_date, reviews = pickle.load(sys.stdin.buffer)
    written = write_district_workbooks(cases, Path(out), run_date, reviews)
    sys.stdout.write(json.dumps({district: str(path) for district, path in written.items()}, ensure_ascii=False))
