"""Import auditors' conclusions from returned case workbooks (CONTRACT.md §4a).

`<landing>/feedback/<YYYY-MM-DD>/*.xlsx`, each with at least the columns case_id, 核查结论 (查实 or 查否)
and 核查说明. Every workbook not imported before (by content hash) is read; a bad row is rejected on its
own with a message naming file, row and reason (what the auditor wrote is kept with it), and the rest of
the workbook still counts. Importing the same workbook twice changes nothing.

The workbook's 定期复核 sheet (reports/workbook.py) comes back the same way: a row whose 复核日期 is filled
records that household's completed periodic review in ``ledger.reviews``, from which the next one is
counted (cases/reviews.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
from python_calamine import CalamineWorkbook

from cases.ledger import ensure_ledger
from connectors.base import mask_name
from crosscheck.warehouse import table_exists

SQL = Path(__file__).with_name("sql")
CONCLUSIONS = {"查实": "confirmed", "查否": "refuted"}
REQUIRED = ("case_id", "核查结论", "核查说明")
REVIEW_REQUIRED = ("家庭编号", "复核日期")


@dataclass
class FeedbackResult:
    files: int = 0
    already_imported: int = 0
    accepted: int = 0
    rejected: int = 0
    messages: list[str] = field(default_factory=list)


def feedback_workbooks(landing: Path, as_of: date) -> list[tuple[date, Path]]:
    """Every workbook in a feedback folder dated on or before the night, oldest first (``.xlsx`` in any
    letter case, as Windows may name it; not Excel's ``~$`` lock files, not folders)."""
    found = []
    for folder in sorted((landing / "feedback").glob("*")):
        try:
            folder_date = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if folder.is_dir() and folder_date <= as_of:
            found += [(folder_date, p) for p in sorted(folder.iterdir())
                      if p.suffix.lower() == ".xlsx" and not p.name.startswith("~$") and p.is_file()]
    return found


def _text(value) -> str:
    """A cell as the auditor sees it: whole numbers without ".0", text exactly as typed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _cell(value) -> str:
    return _text(value).strip()


def read_sheets(path: Path) -> tuple[list[tuple[str, str, list[tuple[int, dict]]]], str | None]:
    """([(kind, sheet name, rows as (spreadsheet row number, {column: text}))], error) for every sheet
    with a header: ``cases`` (a row naming case_id) or ``reviews`` (家庭编号 and 复核日期). Rows above the
    header (titles) are ignored. The error says why nothing could be read."""
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheets = [(name, workbook.get_sheet_by_name(name).to_python(skip_empty_area=False))
                  for name in workbook.sheet_names]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a corrupt or non-xlsx file is reported, never fatal; calamine raises its
        # own errors, and a panic inside it (pyo3's PanicException) is a BaseException
        return [], f"cannot be read as an Excel workbook ({type(exc).__name__})"
    found, problems = [], []
    for name, sheet in sheets:
        for index, row in enumerate(sheet):
            header = [_cell(v) for v in row]
            kind, required = (("cases", REQUIRED) if "case_id" in header else
                              ("reviews", REVIEW_REQUIRED) if "复核日期" in header else (None, ()))
            if kind is None:
                continue
            missing = [c for c in required if c not in header]
            if missing:
                problems.append(f"sheet {name}: header lacks column(s) {', '.join(missing)}")
                break
            doubled = [c for c in required if header.count(c) > 1]
            if doubled:   # which of the two columns holds the auditor's answer cannot be told
                problems.append(f"sheet {name}: header has column(s) {', '.join(doubled)} more than once")
                break
            rows = []
            for offset, values in enumerate(sheet[index + 1:], start=index + 2):
                cells = [_text(v) for v in values] + [""] * (len(header) - len(values))
                rows.append((offset, {h: c for h, c in reversed(list(zip(header, cells)))}))
            found.append((kind, name, rows))
            break
    if not found:
        return [], "; ".join(problems) or "no header row with a case_id column"
    return found, "; ".join(problems) or None


@dataclass(frozen=True)
class _Returned:
    """One returned workbook being imported."""
    name: str               # feedback/<date>/<file>
    digest: str
    feedback_date: date
    as_of: date
    now: datetime


def import_feedback(con: duckdb.DuckDBPyConnection, landing: Path, as_of: date) -> FeedbackResult:
    ensure_ledger(con)
    con.execute((SQL / "feedback_ddl.sql").read_text(encoding="utf-8"))
    result = FeedbackResult()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for feedback_date, path in feedback_workbooks(landing, as_of):
        name = f"feedback/{feedback_date}/{path.name}"
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:   # unreadable tonight (permissions, removed meanwhile): tried again next night
            result.messages.append(f"{name}: cannot be read ({type(exc).__name__}); not imported")
            continue
        book = _Returned(name, digest, feedback_date, as_of, now)
        if con.execute("SELECT 1 FROM ledger.feedback_files WHERE sha256 = ?", [digest]).fetchone():
            result.already_imported += 1
            continue
        result.files += 1
        sheets, error = read_sheets(path)
        if error:
            what = "sheet(s) not read" if sheets else "workbook rejected"
            result.messages.append(mask_name(f"{book.name}: {what}: {error}"))
        read = accepted = rejected = blank = 0
        for kind, sheet_name, rows in sheets:
            importer = _import_conclusions if kind == "cases" else _import_reviews
            a, r, b = importer(con, result, rows, book, sheet_name)
            read, accepted, rejected, blank = read + len(rows), accepted + a, rejected + r, blank + b
        con.execute("INSERT INTO ledger.feedback_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [digest, book.name, feedback_date, as_of, read, accepted, rejected, blank, error])
        result.accepted += accepted
        result.rejected += rejected
    return result


def _import_conclusions(con, result: FeedbackResult, rows, book: _Returned, sheet: str) -> tuple[int, int, int]:
    """核查结论 rows of the case sheet; returns (accepted, rejected, blank)."""
    known = {r[0] for r in con.execute("SELECT case_id FROM ledger.cases").fetchall()}
    where = f"{book.name} [{sheet}]"
    accepted = rejected = blank = 0
    for row_no, row in rows:
        # case_id and 核查结论 are compared without surrounding spaces; 核查说明 is kept exactly as written
        case_id, word = row.get("case_id", "").strip(), row.get("核查结论", "").strip()
        note = row.get("核查说明", "")
        if not case_id and not word and not note.strip():
            blank += 1
            continue
        reason = None
        if case_id not in known:
            reason = f"unknown case_id {case_id!r}" if case_id else "case_id is empty"
        elif not word and not note.strip():
            blank += 1  # not concluded yet: nothing to import, nothing wrong
            continue
        elif not word:   # a note without a conclusion: kept with the reject, so that nothing written is lost
            reason = "核查说明 is filled in but 核查结论 is empty (查实 or 查否)"
        elif word not in CONCLUSIONS:
            reason = f"核查结论 must be 查实 or 查否, found {word!r}"
        if reason:
            rejected += 1
            _reject(con, result, book, where, row_no, case_id, reason, word, note)
            continue
        accepted += 1
        _apply(con, case_id, word, note, book.feedback_date, book.name, row_no, book.digest, book.as_of, book.now)
    return accepted, rejected, blank


def _reject(con, result: FeedbackResult, book: _Returned, where: str, row_no, key, reason, conclusion,
            note) -> None:
    """A rejected row: the reason in the night's messages, and the row with what the auditor wrote kept."""
    reason = mask_name(reason)   # what the auditor typed may be an ID, even run together with letters
    con.execute("INSERT INTO ledger.feedback_rejects BY NAME SELECT ? AS sha256, ? AS file, ? AS row, "
                "? AS case_id, ? AS reason, ? AS imported_on, ? AS conclusion, ? AS note",
                [book.digest, where, row_no, key, reason, book.as_of, conclusion, note])
    result.messages.append(mask_name(f"{where} row {row_no}: rejected: {reason}"))


def _review_date(text: str) -> date | None:
    """复核日期 as Excel gives it back: a date cell (read as 2026-11-05 or 2026-11-05 00:00:00) or typed text."""
    text = text.strip().replace("/", "-").replace(".", "-")
    for candidate in (text[:10], text):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            continue
    return None


def _import_reviews(con, result: FeedbackResult, rows, book: _Returned, sheet: str) -> tuple[int, int, int]:
    """Completed periodic reviews from a 定期复核 sheet; returns (accepted, rejected, blank)."""
    from cases.reviews import record_review

    where = f"{book.name} [{sheet}]"
    households = {r[0] for r in con.execute("SELECT DISTINCT household_id FROM staging.roster").fetchall()} \
        if table_exists(con, "staging", "roster") else set()
    accepted = rejected = blank = 0
    for row_no, row in rows:
        household, when = row.get("家庭编号", "").strip(), row.get("复核日期", "").strip()
        note = row.get("复核说明", "")
        if not when and not note.strip():
            blank += 1          # not reviewed yet
            continue
        reviewed_on = _review_date(when)
        reason = None
        if household not in households:
            reason = f"unknown 家庭编号 {household!r}" if household else "家庭编号 is empty"
        elif not when:      # a note without a date: kept with the reject
            reason = "复核说明 is filled in but 复核日期 is empty"
        elif reviewed_on is None:
            reason = f"复核日期 is not a date: {when!r}"
        elif reviewed_on > book.feedback_date:
            reason = f"复核日期 {reviewed_on} is after the workbook was returned ({book.feedback_date})"
        if reason:
            rejected += 1
            _reject(con, result, book, where, row_no, household, reason, when, note)
            continue
        already = con.execute("SELECT 1 FROM ledger.reviews WHERE household_id = ? AND reviewed_on = ?",
                              [household, reviewed_on]).fetchone()
        if not already:     # the same review returned again in another copy of the workbook
            record_review(con, household, reviewed_on, f"{where} 第 {row_no} 行", note or None)
        accepted += 1
    return accepted, rejected, blank


def _apply(con, case_id, word, note, feedback_date, name, row_no, digest, as_of, now) -> None:
    """Record the conclusion (append-only) and move the case to confirmed / refuted."""
    status = CONCLUSIONS[word]
    duplicate = con.execute(
        "SELECT 1 FROM ledger.conclusions WHERE case_id = ? AND conclusion = ? AND note = ? AND feedback_date = ?",
        [case_id, word, note, feedback_date]).fetchone()
    if duplicate:
        return  # the same conclusion, returned again in another copy of the workbook
    con.execute("INSERT INTO ledger.conclusions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [case_id, word, status, note, feedback_date, name, row_no, digest, as_of])
    old = con.execute("SELECT status, evidence FROM ledger.cases WHERE case_id = ?", [case_id]).fetchone()
    con.execute("UPDATE ledger.cases SET status = ?, updated_on = ? WHERE case_id = ?", [status, as_of, case_id])
    con.execute("INSERT INTO ledger.case_history VALUES (?, ?, ?, ?, ?, ?, ?)",
                [case_id, as_of, now, old[0], status, f"核查结论：{word}（{name} 第 {row_no} 行）{note}", old[1]])
