"""Property-based tests (hypothesis) on the import of auditors' returned workbooks (CONTRACT.md §4a).

Whatever comes back in ``<landing>/feedback/<date>/`` — workbooks with known and unknown case_ids, any text
in 核查结论 and 核查说明 (formulas, numbers, very long text), missing, extra, renamed or doubled columns,
title rows, extra and empty sheets, the same case twice, a 定期复核 sheet, or bytes that are no workbook at all
under a .xlsx name — ``import_feedback``:

* never raises;
* accounts for every row of a sheet it reads: accepted + rejected + blank = rows read (ledger.feedback_files),
  and each rejected row has a message naming the file, the sheet, the row and the reason; a sheet or file it
  cannot read has a message naming the file and why;
* keeps what the auditor wrote: every 核查说明 that is not empty is stored verbatim, with the accepted
  conclusion (ledger.conclusions) or with the rejected row (ledger.feedback_rejects), a note without 查实 /
  查否 included; so is the 复核说明 of a rejected 定期复核 row (an accepted review counts once per household
  and date, as tests/test_feedback.py holds);
* imports a workbook once: the same bytes again (another night, another copy) change nothing.

Examples run against an in-memory warehouse; default runs are small and derandomized (reproducible in CI), the
``slow`` variants run more.
"""
from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.feedback import import_feedback
from cases.ledger import ensure_ledger
from crosscheck.warehouse import connect
from tests.hypothesis_settings import note, props

NIGHT = date(2026, 11, 20)
RETURNED = date(2026, 11, 19)
KNOWN = ["R02-H1", "R02-H2", "R05-H3", "R01-H10"]
HOUSEHOLDS = ["H1", "H2", "H3"]
CASE_HEADER = ["case_id", "规则", "核查结论", "核查说明"]
REVIEW_HEADER = ["家庭编号", "区县", "应复核日期", "状态", "复核日期", "复核说明"]
FULL_ID = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")


# --- cells ----------------------------------------------------------------------------------------------------

def excel_cap(text: str) -> str:
    """A cell holds at most 32,767 UTF-16 code units (a character beyond U+FFFF takes two)."""
    while len(text.encode("utf-16-le")) // 2 > 32767:
        text = text[:-(len(text.encode("utf-16-le")) // 2 - 32767 + 1) // 2 or -1]
    return text


CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00\ufffe\uffff")
free_text = st.one_of(
    st.text(CHARS, max_size=15),
    st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=8),
    st.sampled_from(["车辆在用，家访核实", "  前后有空格  ", "=SUM(A1:A3)", "+86 138", "-已过户", "@备注", "'查实",
                     "420802199001011234", "4.20802E+17", "第一行\n第二行", "a\r\nb", "\t", " ", "\u3000",
                     "查实", "查否"]),
    st.builds(lambda s, n: excel_cap((s * n)[:n]), st.text(CHARS, min_size=1, max_size=3), st.integers(1000, 32767)))
case_ids = st.one_of(st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.sampled_from(
    ["R02-H9", "", " R02-H1 ", "r02-h1", "R02-H1\n", "R02-H1.0", "420802199001011234", "ID420802199001011234"]),
    free_text)
words = st.one_of(st.sampled_from(["查实", "查否"]), st.sampled_from(["查实", "查否"]), st.sampled_from(
    ["", " 查实 ", "属实", "查实。", "=查实", "'查否", "查 实", "查实/查否", "TRUE"]), free_text)
notes = st.one_of(st.just(""), free_text)


@dataclass
class Cell:
    """A cell as written: a string, a number, a boolean, None (empty), or a formula with its cached value."""
    value: object
    formula: str | None = None


def cell_values(texts):
    """Mostly text cells; sometimes a number, a boolean, an empty cell or a formula showing a text."""
    return st.one_of(texts.map(Cell), texts.map(Cell), texts.map(Cell),
                     st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                               st.booleans(), st.none()).map(Cell),
                     texts.map(lambda t: Cell(t, formula='=T("x")')))


@dataclass
class Sheet:
    name: str
    kind: str                       # cases | reviews | other | empty
    header: list[str]
    rows: list[list[Cell]]
    title: bool = False


@dataclass
class Workbook:
    sheets: list[Sheet] = field(default_factory=list)


header_mutation = st.sampled_from(["none", "none", "none", "drop", "extra", "rename", "double", "reorder"])


@st.composite
def case_sheets(draw, name: str = "核对线索"):
    header = list(CASE_HEADER)
    mutation = draw(header_mutation)
    if mutation == "drop":
        header.remove(draw(st.sampled_from(["核查结论", "核查说明", "规则"])))
    elif mutation == "extra":
        header.insert(draw(st.integers(0, len(header))), draw(st.sampled_from(["备注", "区县", "", "核查结论2"])))
    elif mutation == "rename":
        i = draw(st.integers(1, len(header) - 1))
        header[i] = draw(st.sampled_from(["核查 结论", "结论", "核查说明（必填）", "Case_ID"]))
    elif mutation == "double":
        header.append(draw(st.sampled_from(["核查结论", "核查说明"])))
    elif mutation == "reorder":
        header = draw(st.permutations(header))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        values = {"case_id": draw(cell_values(case_ids)), "规则": Cell("R02"),
                  "核查结论": draw(cell_values(words)), "核查说明": draw(cell_values(notes))}
        row = [values.get(h, draw(cell_values(notes))) for h in header]
        if draw(st.integers(0, 6)) == 0:
            row.append(draw(cell_values(free_text)))          # a cell beyond the header
        if draw(st.integers(0, 6)) == 0:
            row = row[:draw(st.integers(0, len(row)))]         # a short row
        rows.append(row)
    if rows and draw(st.booleans()):                         # the same case twice
        rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
    return Sheet(name, "cases", header, rows, title=draw(st.booleans())), mutation


@st.composite
def review_sheets(draw):
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        household = draw(st.one_of(st.sampled_from(HOUSEHOLDS), st.sampled_from(["H9", ""]), free_text))
        when = draw(st.one_of(st.dates(date(2025, 1, 1), date(2026, 12, 31)).map(
            lambda d: Cell(datetime(d.year, d.month, d.day))), st.sampled_from(
            ["2026-11-05", "2026/11/06", "", "上周", "2026-11-30", "2026.11.01"]).map(Cell)))
        rows.append([Cell(household), Cell("东宝区"), Cell("2026-10-01"), Cell("已逾期"), when,
                     draw(cell_values(notes))])
    return Sheet("定期复核", "reviews", list(REVIEW_HEADER), rows)


@st.composite
def workbooks(draw):
    sheets, mutation = [], "none"
    if draw(st.integers(0, 3)) == 0:
        sheets.append(Sheet("说明", "other", ["填表说明"], [[draw(cell_values(free_text))]]))
    if draw(st.integers(0, 4)) == 0:
        sheets.append(Sheet("空", "empty", [], []))
    cases, mutation = draw(case_sheets())
    sheets.append(cases)
    if draw(st.booleans()):
        sheets.append(draw(review_sheets()))
    if draw(st.integers(0, 5)) == 0:
        more, _ = draw(case_sheets(name="补充"))
        sheets.append(more)
    note(f"header {mutation}")
    return Workbook(sheets)


def write_workbook(book: Workbook) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                                   "strings_to_urls": False})
    dates = wb.add_format({"num_format": "yyyy-mm-dd"})
    for sheet in book.sheets:
        ws = wb.add_worksheet(sheet.name)
        r0 = 0
        if sheet.title:
            ws.write_string(0, 0, "东宝区 核对线索 2026-11-19")
            r0 = 1
        if sheet.kind == "empty":
            continue
        ws.write_row(r0, 0, sheet.header)
        for r, row in enumerate(sheet.rows, start=r0 + 1):
            for c, cell in enumerate(row):
                v = cell.value
                if cell.formula is not None:
                    ws.write_formula(r, c, cell.formula, None, v)
                elif v is None or v == "":
                    continue
                elif isinstance(v, bool):
                    ws.write_boolean(r, c, v)
                elif isinstance(v, (int, float)):
                    ws.write_number(r, c, v)
                elif isinstance(v, datetime):
                    ws.write_datetime(r, c, v, dates)
                else:
                    ws.write_string(r, c, v)
    wb.close()
    return buf.getvalue()


# --- the oracle -----------------------------------------------------------------------------------------------

def as_read(cell: Cell | None) -> str:
    """A cell's text as the importer reads it back (numbers as Excel stores them: 16 significant digits)."""
    if cell is None or cell.value is None:
        return ""
    v = cell.value
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        f = float("%.16G" % float(v))
        return str(int(f)) if f.is_integer() else str(f)
    if isinstance(v, datetime):
        return str(v)
    return v


def written(cell: Cell) -> bool:
    return cell.formula is not None or cell.value not in (None, "")


def _strip(text: str) -> str:
    return text.strip()


@dataclass
class Expected:
    accepted: int = 0
    rejected: int = 0
    blank: int = 0
    rows: int = 0
    rejected_rows: list[tuple[str, int]] = field(default_factory=list)     # (sheet, row number)
    notes: list[str] = field(default_factory=list)                         # auditors' notes to be kept
    readable: bool = True


def expected(book: Workbook) -> Expected:
    """What the import must make of a workbook (cases/feedback.py and README "For auditors")."""
    out = Expected()
    found = False
    for sheet in book.sheets:
        header = sheet.header
        if sheet.kind in ("other", "empty"):
            continue
        required = ("case_id", "核查结论", "核查说明") if "case_id" in header else ("家庭编号", "复核日期")
        if "case_id" not in header and "复核日期" not in header:
            continue
        if any(c not in header for c in required) or any(header.count(c) > 1 for c in required):
            continue
        found = True
        first = {h: header.index(h) for h in header}
        row0 = 2 + sheet.title
        # rows after the last cell written are not in the sheet at all
        last = max((k for k, row in enumerate(sheet.rows) if any(map(written, row))), default=-1)
        for n, row in enumerate(sheet.rows[:last + 1], start=row0):
            out.rows += 1
            get = lambda col: as_read(row[first[col]]) if col in first and first[col] < len(row) else ""  # noqa: E731
            if sheet.kind == "cases":
                cid, word, text = _strip(get("case_id")), _strip(get("核查结论")), get("核查说明")
                if not cid and not word and not text.strip():
                    out.blank += 1
                elif cid in KNOWN and not word and not text.strip():
                    out.blank += 1         # not concluded yet
                elif cid not in KNOWN or word not in ("查实", "查否"):
                    out.rejected += 1      # a note without a conclusion too: kept, and said so
                    out.rejected_rows.append((sheet.name, n))
                else:
                    out.accepted += 1
            else:
                household, when, text = _strip(get("家庭编号")), _strip(get("复核日期")), get("复核说明")
                if not when and not text.strip():
                    out.blank += 1
                    continue
                day = _review_day(when)
                if household not in HOUSEHOLDS or day is None or day > RETURNED:
                    out.rejected += 1
                    out.rejected_rows.append((sheet.name, n))
                else:
                    out.accepted += 1
                    continue    # the review counts once per household and date (a copy's note adds nothing)
            if text.strip():
                out.notes.append(text)
    out.readable = found
    return out


def _review_day(text: str) -> date | None:
    text = text.strip().replace("/", "-").replace(".", "-")
    for candidate in (text[:10], text):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            continue
    return None


# --- running the import ---------------------------------------------------------------------------------------

def fresh_ledger():
    from tests.staging_builder import stage

    con = connect(":memory:")
    ensure_ledger(con)
    for case_id in KNOWN:
        con.execute("INSERT INTO ledger.cases (case_id, household_id, rule, status, evidence) "
                    "VALUES (?, 'H', 'R02', 'new', 'e')", [case_id])
    stage(con, "roster", [dict(household_id=h, name="王伟", id_number="420802198001010011") for h in HOUSEHOLDS], NIGHT)
    return con


def counts(con) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM ledger.{t}").fetchone()[0]
            for t in ("conclusions", "feedback_rejects", "case_history", "reviews", "feedback_files")}


def stored_notes(con) -> list[str]:
    rows = con.execute("SELECT note FROM ledger.conclusions UNION ALL SELECT note FROM ledger.feedback_rejects "
                       "UNION ALL SELECT note FROM ledger.reviews").fetchall()
    return [r[0] for r in rows if r[0] is not None]


def check_import(files: dict[str, bytes], books: dict[str, Workbook | None]) -> None:
    """Import ``files`` (name → bytes) returned on RETURNED, then again; check the properties above."""
    con = fresh_ledger()
    with tempfile.TemporaryDirectory(prefix="xc-feedback-") as d:
        landing = Path(d)
        folder = landing / "feedback" / RETURNED.isoformat()
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        result = import_feedback(con, landing, NIGHT)
        after_first = counts(con)
        again = import_feedback(con, landing, NIGHT)
        # a copy of the same workbooks returned a night later: still nothing new
        later = landing / "feedback" / NIGHT.isoformat()
        later.mkdir()
        for name, data in files.items():
            (later / f"副本-{name}").write_bytes(data)
        copies = import_feedback(con, landing, NIGHT)
    distinct = len(set(files.values()))
    assert result.files == distinct and result.already_imported == len(files) - distinct
    assert (again.files, again.accepted, again.rejected) == (0, 0, 0) and again.already_imported == len(files)
    assert (copies.files, copies.accepted, copies.rejected) == (0, 0, 0)
    assert counts(con) == after_first, "a workbook imported twice changed the ledger"
    for text in result.messages:
        assert not FULL_ID.search(text), text
    records = {r[0]: r[1:] for r in con.execute(
        "SELECT file, rows_read, rows_accepted, rows_rejected, rows_blank, message FROM ledger.feedback_files")
        .fetchall()}
    total = {"accepted": 0, "rejected": 0}
    kept = stored_notes(con)
    for name, data in files.items():
        where = f"feedback/{RETURNED}/{name}"
        book = books.get(name)
        if where not in records:          # the same bytes as another file: imported once, under that name
            continue
        rows_read, accepted, rejected, blank, message = records[where]
        assert accepted + rejected + blank == rows_read, (where, records[where])
        total["accepted"] += accepted
        total["rejected"] += rejected
        if book is None:                  # not a workbook: one message naming the file, nothing imported
            assert rows_read == 0 and message
            assert any(m.startswith(where) and "rejected" in m for m in result.messages), result.messages
            note("not a workbook")
            continue
        want = expected(book)
        if not want.readable:
            assert rows_read == 0 and message and any(m.startswith(where) for m in result.messages)
            note("workbook without a usable header")
            continue
        assert (rows_read, accepted, rejected, blank) == (want.rows, want.accepted, want.rejected, want.blank), \
            (where, records[where], want)
        for sheet, row in want.rejected_rows:
            assert any(m.startswith(where) and f"[{sheet}] row {row}:" in m and "rejected:" in m
                       and m.split("rejected:", 1)[1].strip() for m in result.messages), (sheet, row, result.messages)
        for text in want.notes:           # nothing the auditors wrote is lost: kept verbatim
            assert text in kept, (text, kept)
        note("workbook imported" + (" with conclusions" if want.accepted else ""))
    assert (result.accepted, result.rejected) == (total["accepted"], total["rejected"])
    con.close()


# --- the properties -------------------------------------------------------------------------------------------

@props(20)
@given(books=st.lists(workbooks(), min_size=1, max_size=2))
def test_returned_workbooks(books):
    files = {f"东宝区-{k}.xlsx": write_workbook(b) for k, b in enumerate(books)}
    check_import(files, {f"东宝区-{k}.xlsx": b for k, b in enumerate(books)})


@pytest.mark.fuzz
@props(600)
@given(books=st.lists(workbooks(), min_size=1, max_size=3))
def test_returned_workbooks_slow(books):
    files = {f"东宝区-{k}.xlsx": write_workbook(b) for k, b in enumerate(books)}
    check_import(files, {f"东宝区-{k}.xlsx": b for k, b in enumerate(books)})


def _mutate(data: bytes, how: tuple) -> bytes:
    kind, where = how[0], int(how[1] * len(data))
    if kind == "truncate":
        return data[:where]
    if kind == "flip":
        where = min(where, len(data) - 1)
        return data[:where] + bytes([data[where] ^ how[2]]) + data[where + 1:]
    if kind == "insert":
        return data[:where] + how[2] + data[where:]
    return data[:where] + data[where + how[2]:]


mutations = st.one_of(st.tuples(st.just("truncate"), st.floats(0, 1)),
                      st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
                      st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
                      st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 64)))
not_workbooks = st.one_of(st.binary(max_size=400), st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
                          st.sampled_from([b"", "case_id,核查结论,核查说明\nR02-H1,查实,x\n".encode("utf-8"),
                                           b"<html></html>", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500]))


@st.composite
def broken_workbooks(draw):
    book = draw(workbooks())
    return _mutate(write_workbook(book), draw(mutations)), book


def check_bytes(data: bytes, book: Workbook | None) -> None:
    """Bytes that may or may not open as a workbook: a message, or the rows accounted for."""
    con = fresh_ledger()
    with tempfile.TemporaryDirectory(prefix="xc-feedback-") as d:
        folder = Path(d) / "feedback" / RETURNED.isoformat()
        folder.mkdir(parents=True)
        (folder / "东宝区.xlsx").write_bytes(data)
        result = import_feedback(con, Path(d), NIGHT)
        again = import_feedback(con, Path(d), NIGHT)
    assert result.files == 1 and again.files == 0 and again.already_imported == 1
    (rows_read, accepted, rejected, blank, message), = con.execute(
        "SELECT rows_read, rows_accepted, rows_rejected, rows_blank, message FROM ledger.feedback_files").fetchall()
    assert accepted + rejected + blank == rows_read
    assert (result.accepted, result.rejected) == (accepted, rejected)
    if message:
        assert any("东宝区.xlsx" in m for m in result.messages)
        note("refused with a message")
    else:
        note("opened")
    for text in result.messages:
        assert not FULL_ID.search(text), text
    con.close()


@props(20)
@given(data=st.one_of(not_workbooks.map(lambda b: (b, None)), broken_workbooks()))
def test_bytes_under_an_xlsx_name(data):
    check_bytes(*data)


@pytest.mark.fuzz
@props(1000)
@given(data=st.one_of(not_workbooks.map(lambda b: (b, None)), broken_workbooks()))
def test_bytes_under_an_xlsx_name_slow(data):
    check_bytes(*data)


@props(8)
@given(data=not_workbooks)
def test_not_a_workbook_is_refused_with_a_message(data):
    check_import({"东宝区.xlsx": data}, {"东宝区.xlsx": None})


# --- what hypothesis found (each lost what an auditor wrote, or crashed the night, before the fix) -----------

def _book(*sheets: Sheet) -> Workbook:
    return Workbook(list(sheets))


def _cases(rows: list[list], header=CASE_HEADER, name="核对线索") -> Sheet:
    return Sheet(name, "cases", list(header), [[Cell(v) for v in r] for r in rows])


REGRESSIONS = {
    # two case sheets: a rejected row's message said "row 2" without saying which sheet
    "sheet named in the message": _book(_cases([]), _cases([["R02-H9", "R02", "查实", ""]], name="补充")),
    # a note on a known case without 查实/查否 was counted blank: the note was lost without a word
    "note without a conclusion": _book(_cases([["R02-H1", "R02", "", "入户未见人，下周再访"]])),
    # notes were stored stripped of their surrounding spaces
    "note kept verbatim": _book(_cases([["R02-H1", "R02", "查实", "  前后有空格\n"]])),
    # an ID typed where the case_id goes, run together with letters: mask_ids left it whole in the message
    "ID in a message": _book(_cases([["ID420802199001011234", "R02", "查实", ""]])),
    # 核查结论 twice in the header: the second (empty) column silently won over the auditor's answer
    "doubled column": _book(_cases([["R02-H1", "查实", "", "说明"]], header=["case_id", "核查结论", "核查结论", "核查说明"])),
}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_found_by_hypothesis(name):
    book = REGRESSIONS[name]
    check_import({"东宝区.xlsx": write_workbook(book)}, {"东宝区.xlsx": book})


def test_odd_names_in_the_feedback_folder(tmp_path):
    """A folder named like a workbook crashed the import (IsADirectoryError); a workbook saved as .XLSX
    was silently never imported."""
    con = fresh_ledger()
    folder = tmp_path / "feedback" / RETURNED.isoformat()
    (folder / "旧的.xlsx").mkdir(parents=True)
    (folder / "东宝区.XLSX").write_bytes(write_workbook(_book(_cases([["R02-H1", "R02", "查否", "已过户"]]))))
    result = import_feedback(con, tmp_path, NIGHT)
    assert (result.files, result.accepted) == (1, 1)
    assert con.execute("SELECT note FROM ledger.conclusions").fetchall() == [("已过户",)]
