"""Import auditors' conclusions from returned case workbooks (CONTRACT.md §4a).

`<landing>/feedback/<YYYY-MM-DD>/*.xlsx`, each with at least the columns case_id, 核查结论 (查实 or 查否)
and 核查说明. Every workbook not imported before (by content hash) is read; a bad row is rejected on its
own with a message naming file, row and reason, and the rest of the workbook still counts. Importing the
same workbook twice changes nothing.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
from python_calamine import CalamineWorkbook

from cases.ledger import ensure_ledger
from crosscheck.safety import mask_ids

SQL = Path(__file__).with_name("sql")
CONCLUSIONS = {"查实": "confirmed", "查否": "refuted"}
REQUIRED = ("case_id", "核查结论", "核查说明")


@dataclass
class FeedbackResult:
    files: int = 0
    already_imported: int = 0
    accepted: int = 0
    rejected: int = 0
    messages: list[str] = field(default_factory=list)


def feedback_workbooks(landing: Path, as_of: date) -> list[tuple[date, Path]]:
    """Every workbook in a feedback folder dated on or before the night, oldest first."""
    found = []
    for folder in sorted((landing / "feedback").glob("*")):
        try:
            folder_date = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if folder.is_dir() and folder_date <= as_of:
            found += [(folder_date, p) for p in sorted(folder.glob("*.xlsx")) if not p.name.startswith("~$")]
    return found


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read_rows(path: Path) -> tuple[list[tuple[int, dict]], str | None]:
    """(rows as (spreadsheet row number, {column: text}), error). The header is the first row that
    names case_id; rows above it (titles) are ignored."""
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception as exc:  # a corrupt or non-xlsx file is reported, never fatal
        return [], f"cannot be read as an Excel workbook ({type(exc).__name__})"
    for index, row in enumerate(sheet):
        header = [_cell(v) for v in row]
        if "case_id" in header:
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                return [], f"header lacks column(s) {', '.join(missing)}"
            rows = []
            for offset, values in enumerate(sheet[index + 1:], start=index + 2):
                cells = [_cell(v) for v in values] + [""] * (len(header) - len(values))
                rows.append((offset, dict(zip(header, cells))))
            return rows, None
    return [], "no header row with a case_id column"


def import_feedback(con: duckdb.DuckDBPyConnection, landing: Path, as_of: date) -> FeedbackResult:
    ensure_ledger(con)
    con.execute((SQL / "feedback_ddl.sql").read_text(encoding="utf-8"))
    result = FeedbackResult()
    known = {r[0] for r in con.execute("SELECT case_id FROM ledger.cases").fetchall()}
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for feedback_date, path in feedback_workbooks(landing, as_of):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        name = f"feedback/{feedback_date}/{path.name}"
        if con.execute("SELECT 1 FROM ledger.feedback_files WHERE sha256 = ?", [digest]).fetchone():
            result.already_imported += 1
            continue
        result.files += 1
        rows, error = read_rows(path)
        accepted = rejected = blank = 0
        if error:
            result.messages.append(f"{name}: workbook rejected: {error}")
        for row_no, row in rows:
            case_id, word, note = row.get("case_id", ""), row.get("核查结论", ""), row.get("核查说明", "")
            if not case_id and not word and not note:
                blank += 1
                continue
            reason = None
            if case_id not in known:
                reason = f"unknown case_id {case_id!r}" if case_id else "case_id is empty"
            elif not word:
                blank += 1  # not concluded yet: nothing to import, nothing wrong
                continue
            elif word not in CONCLUSIONS:
                reason = f"核查结论 must be 查实 or 查否, found {word!r}"
            if reason:
                reason = mask_ids(reason)
                rejected += 1
                con.execute("INSERT INTO ledger.feedback_rejects VALUES (?, ?, ?, ?, ?, ?)",
                            [digest, name, row_no, case_id, reason, as_of])
                result.messages.append(f"{name} row {row_no}: rejected: {reason}")
                continue
            accepted += 1
            _apply(con, case_id, word, note, feedback_date, name, row_no, digest, as_of, now)
        con.execute("INSERT INTO ledger.feedback_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [digest, name, feedback_date, as_of, len(rows), accepted, rejected, blank, error])
        result.accepted += accepted
        result.rejected += rejected
    return result


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
