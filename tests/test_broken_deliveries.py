"""A corpus of broken deliveries, each with its expected outcome (CONTRACT.md §3).

A small synthetic landing zone is generated once. Every case copies it, breaks ONE source's newest
delivery on or before the night in one way, and runs the night's load and validate stages for every
source exactly as ``flows/nightly.py`` does (load all, then validate all; no Prefect). For every case:

* the broken source gets the expected status (ok / rejected / stale / missing), the broken file the
  expected load status;
* a steward can read what went wrong: one message line names the source, the file, the row where there
  is one, and the reason in Chinese (English in parentheses);
* every row is accounted for: rows_read = rows_staged + rows_quarantined for every file, staging holds
  exactly the staged rows, each quarantined row of a loaded file has its audit.quarantine row;
* the night's other sources go on exactly as on the clean landing (status and row counts);
* no full ID number appears in any message;
* validation's verdict (what the summary and the rules stage show) says why (``test_validation_says_why``).

One case runs as the night after the clean one (a delivery cut at a line end shows only against the
previous delivery). The landing's biggest files are cut to KEEP_ROWS rows so that ~22 nights fit in a
minute. At the end (marked slow): the whole night through ``crosscheck run`` with three broken sources.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from checks.validate import validate_source
from connectors.files import read_csv_bytes, read_jsonl_bytes
from connectors.landing import delivery_dates
from connectors.load import load_source
from crosscheck.settings import load_sources
from crosscheck.warehouse import connect
from synthetic.generate import generate

AS_OF = date(2026, 11, 20)
SCALE, SEED = 0.005, 7          # the smallest scale the generator supports; ~1 s
FULL_ID = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")
BOM = b"\xef\xbb\xbf"


# --- running the night's load and validate stages ----------------------------------------------------------

@dataclass
class Night:
    loads: dict[str, dict]          # source → load_source() result
    status: dict[str, dict]         # source → validate_source() result
    files: list[dict]               # audit.load_files rows
    quarantine: list[dict]          # audit.quarantine rows (without raw_record)
    checks: list[dict]              # audit.check_results rows
    staged: dict[str, int]          # staging table → rows
    probe: object = None            # the case's own query on the warehouse, if any

    def source_files(self, source: str) -> list[dict]:
        return [f for f in self.files if f["source"] == source]

    def file(self, source: str, name: str) -> dict | None:
        rows = [f for f in self.source_files(source) if f["file_name"] == name]
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def totals(self, source: str) -> tuple:
        fs = self.source_files(source)
        return (self.status[source]["status"], sum(f["rows_read"] for f in fs), sum(f["rows_staged"] for f in fs),
                sum(f["rows_quarantined"] for f in fs))

    def steward_lines(self, source: str) -> list[str]:
        """Everything a steward is told about one source tonight, one line per finding."""
        lines = list(self.loads[source]["messages"])
        lines += [f["message"] for f in self.source_files(source) if f["message"]]
        lines += [f"{source} {q['file_name']} 第 {q['row_no']} 行：{q['reason']}" if q["row_no"] is not None
                  else f"{source} {q['file_name']}：{q['reason']}"
                  for q in self.quarantine if q["source"] == source]
        if self.status[source]["reason"]:
            lines.append(self.status[source]["reason"])
        return lines

    def all_texts(self) -> list[str]:
        texts = [m for r in self.loads.values() for m in r["messages"]]
        texts += [f["message"] for f in self.files if f["message"]]
        texts += [c for f in self.files for c in (f["extra_columns"] or []) + (f["missing_columns"] or [])]
        texts += [q["reason"] for q in self.quarantine if q["reason"]]
        texts += [s["reason"] for s in self.status.values() if s["reason"]]
        texts += [c["message"] for c in self.checks if c["message"]]
        return texts


def _dicts(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def run_stages(landing: Path, db: Path, probe: str | None = None, as_of: date = AS_OF) -> Night:
    """The night's load and validate stages for every source, as flows/nightly.py calls them."""
    cfg = load_sources()
    with connect(db) as con:
        loads = {s: load_source(con, landing, s, as_of, as_of) for s in cfg.sources}
        status = {s: validate_source(con, s, as_of, as_of) for s in cfg.sources}
        tables = [t for spec in cfg.sources.values() for t in spec.tables]
        return Night(
            loads, status,
            _dicts(con, f"SELECT * EXCLUDE (loaded_at) FROM audit.load_files WHERE run_date = '{as_of}' "
                        "ORDER BY source, table_name, file_name"),
            _dicts(con, f"SELECT * EXCLUDE (raw_record) FROM audit.quarantine WHERE run_date = '{as_of}' "
                        "ORDER BY source, file_name, row_no"),
            _dicts(con, f"SELECT * FROM audit.check_results WHERE run_date = '{as_of}'"),
            {t: con.execute(f'SELECT count(*) FROM staging."{t}"').fetchone()[0] for t in tables},
            con.execute(probe).fetchall() if probe else None)


KEEP_ROWS = 2000   # the generator's biggest files cut to this many rows: the same shapes, a faster night


def _shorten(landing: Path) -> None:
    """Keep the first KEEP_ROWS rows of each larger text file (not where MANIFEST.csv counts them)."""
    for path in sorted(landing.glob("*/*/*")):
        if path.suffix in (".csv", ".jsonl") and path.name != "MANIFEST.csv" \
                and not (path.parent / "MANIFEST.csv").exists():
            lines = path.read_bytes().split(b"\n")
            keep = KEEP_ROWS + (path.suffix == ".csv")
            if len(lines) > keep + 1:
                path.write_bytes(b"\n".join(lines[:keep]) + b"\n")


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    base = tmp_path_factory.mktemp("clean")
    landing = base / "landing"
    generate(landing, AS_OF, SCALE, SEED, base / "truth")
    _shorten(landing)
    return landing, run_stages(landing, base / "w.duckdb", PROPERTY_PROBE), base / "w.duckdb"


# --- editing deliveries ------------------------------------------------------------------------------------

def newest(landing: Path, source: str) -> Path:
    """The delivery folder the night reads for ``source``."""
    return landing / source / max(d for d in delivery_dates(landing, source) if d <= AS_OF).isoformat()


def read_rows(path: Path) -> tuple[list[list[str]], str, bool]:
    """A delivered CSV as rows of cells, the encoding it is in and whether it starts with a BOM."""
    data = path.read_bytes()
    bom = data.startswith(BOM)
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = data.decode("gb18030"), "gb18030"
    return list(csv.reader(io.StringIO(text, newline=""))), encoding, bom


def write_rows(path: Path, rows: list[list[str]], encoding: str, bom: bool) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes((BOM if bom else b"") + buf.getvalue().encode(encoding))


def edit_csv(path: Path, change: Callable[[list[list[str]]], None]) -> None:
    rows, encoding, bom = read_rows(path)
    change(rows)
    write_rows(path, rows, encoding, bom)


def data_rows(path: Path) -> int:
    return len(read_rows(path)[0]) - 1


def _cut_inside_row(path: Path, row: int, *, inside_character: bool = False) -> None:
    """Keep the header, rows before ``row`` and part of ``row``: in the middle of its first Chinese
    character when ``inside_character`` (a GBK or UTF-8 file cut between the bytes of one character)."""
    rows, encoding, bom = read_rows(path)
    head = io.StringIO(newline="")
    csv.writer(head, lineterminator="\n").writerows(rows[:row])
    line = ",".join(rows[row])
    k = next(i for i, ch in enumerate(line) if ord(ch) > 0x2E80) if inside_character else len(line) // 2
    tail = line[:k].encode(encoding) + (line[k].encode(encoding)[:1] if inside_character else b"")
    path.write_bytes((BOM if bom else b"") + head.getvalue().encode(encoding) + tail)


# --- the mutations: each breaks one source and returns what the expectations refer to ----------------------

def wrong_encoding_utf16(landing):
    p = newest(landing, "vehicle") / "vehicle.csv"
    p.write_bytes(p.read_bytes().decode("utf-8-sig").encode("utf-16"))   # Excel's "Unicode text"
    return {"file": "vehicle.csv"}


def damaged_utf8(landing):
    p = newest(landing, "vehicle") / "vehicle.csv"
    lines = p.read_bytes().split(b"\n")
    lines[100] = lines[100].replace(b",", b",\xff\xfe", 1)               # data row 100 = line 101
    p.write_bytes(b"\n".join(lines))
    return {"file": "vehicle.csv"}


def truncated_mid_row(landing):
    p = newest(landing, "tax") / "part2.csv"
    _cut_inside_row(p, 500)
    return {"file": "part2.csv", "rows_read": 500}


def truncated_gbk_inside_character(landing):
    p = newest(landing, "hukou") / "hukou.csv"
    _cut_inside_row(p, 700, inside_character=True)
    return {"file": "hukou.csv", "rows_read": 700}


def cut_at_a_row_boundary_next_night(landing):
    """The night after the clean one: hukou sends a new delivery that stops after 40 % of its rows, exactly
    at a line end (nothing in the file itself shows it). Only the comparison with the previous delivery can."""
    folder = newest(landing, "hukou")
    new = landing / "hukou" / (AS_OF + timedelta(days=1)).isoformat()
    new.mkdir()
    lines = (folder / "hukou.csv").read_bytes().split(b"\n")
    keep = (len(lines) - 2) * 2 // 5
    (new / "hukou.csv").write_bytes(b"\n".join(lines[:keep + 1]) + b"\n")
    return {"file": "hukou.csv", "rows_read": keep, "previous": folder.name, "delivery_date": AS_OF + timedelta(days=1)}


def manifest_row_count(landing):
    folder = newest(landing, "business")
    n = data_rows(folder / "persons.csv")
    m = (folder / "MANIFEST.csv").read_text(encoding="utf-8")
    assert f"persons.csv,{n}," in m
    (folder / "MANIFEST.csv").write_text(m.replace(f"persons.csv,{n},", f"persons.csv,{n + 7},"), encoding="utf-8")
    return {"file": "persons.csv", "n": n, "m": n + 7, "rows_read": n}


def manifest_sha(landing):
    p = newest(landing, "payroll") / "payroll.csv"
    n = data_rows(p)

    def change(rows):
        col = rows[0].index("月应发工资")
        rows[10][col] = str(round(float(rows[10][col] or 0) + 100, 2))    # the same row count, other bytes
    edit_csv(p, change)
    return {"file": "payroll.csv", "rows_read": n}


def manifest_part_missing(landing):
    folder = newest(landing, "tax")
    lines = ["file,rows,sha256"] + [f"{p.name},{data_rows(p)},{hashlib.sha256(p.read_bytes()).hexdigest()}"
                                    for p in sorted(folder.glob("part*.csv"))]
    (folder / "MANIFEST.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    n1 = data_rows(folder / "part1.csv")
    (folder / "part2.csv").unlink()                                      # the second half never arrived
    return {"file": "part1.csv", "rows_read": n1}


def missing_column(landing):
    p = newest(landing, "housing_fund") / "housing_fund.csv"
    n = data_rows(p)

    def change(rows):
        col = rows[0].index("账户状态")
        for r in rows:
            del r[col]
    edit_csv(p, change)
    return {"file": "housing_fund.csv", "rows_read": n}


def renamed_column(landing):
    p = newest(landing, "cremation") / "cremation.csv"
    n = data_rows(p)
    edit_csv(p, lambda rows: rows[0].__setitem__(rows[0].index("死亡日期"), "死亡时间"))
    return {"file": "cremation.csv", "rows_read": n}


def extra_column(landing):
    p = newest(landing, "tax") / "part1.csv"

    def change(rows):
        rows[0].append("备注")
        for r in rows[1:]:
            r.append("补录")
    edit_csv(p, change)
    return {"file": "part1.csv"}


def empty_file(landing):
    (newest(landing, "cremation") / "cremation.csv").write_bytes(b"")
    return {"file": "cremation.csv"}


def header_only(landing):
    p = newest(landing, "housing_fund") / "housing_fund.csv"
    edit_csv(p, lambda rows: rows.__delitem__(slice(1, None)))
    return {"file": "housing_fund.csv", "rows_read": 0}


def same_delivery_twice(landing):
    folder = newest(landing, "housing_fund")
    again = landing / "housing_fund" / (AS_OF - timedelta(days=2)).isoformat()
    shutil.copytree(folder, again)                                       # byte for byte, under a new date
    return {"file": "housing_fund.csv", "first": folder.name, "delivery_date": AS_OF - timedelta(days=2)}


PROPERTY_PROBE = "SELECT count(*) FILTER (id_status = 'excel_damaged') FROM staging.property_owner"


def _property_ids_as_numbers(landing, how_many: int | None) -> dict:
    """Rewrite property.xlsx with single-owner 18-digit ID cells stored as numbers (all when None), as
    when someone opens the extract in Excel and saves it: Excel keeps 15 digits (4.20802E+17)."""
    import xlsxwriter
    from python_calamine import CalamineWorkbook

    path = newest(landing, "property") / "property.xlsx"
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False)
    col = rows[0].index("证件号码")
    turned = []                                  # data row numbers (header excluded), as the loader counts
    for i, row in enumerate(rows[1:], start=1):
        if how_many is not None and (len(turned) == how_many or i % 7 != 3):
            continue
        if isinstance(row[col], str) and re.fullmatch(r"\d{18}", row[col]):
            row[col] = float(row[col])
            turned.append(i)
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Sheet1")
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if isinstance(v, str):
                sheet.write_string(r, c, v)
            elif isinstance(v, (int, float)):
                sheet.write_number(r, c, v)
            elif v is not None:
                raise AssertionError(f"unexpected cell {type(v)}")
    book.close()
    return {"file": "property.xlsx", "turned": len(turned), "first_row": turned[0]}


def excel_ids_some(landing):
    return _property_ids_as_numbers(landing, 5)


def excel_ids_whole_column(landing):
    return _property_ids_as_numbers(landing, None)


def malformed_json_line(landing):
    p = newest(landing, "bank") / "bank_reply.jsonl"
    lines = p.read_text(encoding="utf-8").split("\n")
    lines.insert(49, '{"zjhm": "4208021990')                             # becomes line 50; the rest move down
    p.write_text("\n".join(lines), encoding="utf-8")
    return {"file": "bank_reply.jsonl"}


def unparseable_date(landing):
    p = newest(landing, "tax") / "part1.csv"
    edit_csv(p, lambda rows: rows[7].__setitem__(rows[0].index("所属期起"), "2026-02-30"))
    return {"file": "part1.csv"}


def source_not_delivered(landing):
    shutil.rmtree(landing / "payroll")
    return {}


def delivered_after_the_night(landing):
    folder = newest(landing, "hukou")
    later = (AS_OF + timedelta(days=3)).isoformat()
    for other in delivery_dates(landing, "hukou"):
        if other.isoformat() != folder.name:
            shutil.rmtree(landing / "hukou" / other.isoformat())
    folder.rename(landing / "hukou" / later)                             # arrived, but after the night
    return {"later": later}


def stale_source(landing):
    """The department's latest delivery did not come: the one before it is older than max_age_days."""
    dates = [d for d in delivery_dates(landing, "payroll") if d <= AS_OF]
    shutil.rmtree(landing / "payroll" / dates[-1].isoformat())
    old = dates[-2]
    max_age = load_sources().sources["payroll"].max_age_days
    assert (AS_OF - old).days > max_age
    return {"file": "payroll.csv", "old": old.isoformat(), "age": (AS_OF - old).days, "max_age": max_age,
            "delivery_date": old}


# --- the corpus --------------------------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    source: str
    mutate: Callable[[Path], dict]
    status: str               # validate status of the broken source
    file_status: str | None   # audit.load_files status of the broken file; None: no file row at all
    message: str              # regex (formatted with the mutation's facts) that one steward line must match
    quarantined: str | int | None  # the broken file: "all" rows set aside, "unread" (0 read), the change in
                                   # quarantined rows against the clean landing, or None: not compared (a
                                   # source rejected by validation keeps its rows staged, none moved)
    reason: str | None = None      # regex for validation's verdict (audit.source_status.reason); None: ok
    reason_xfail: str | None = None  # validation does not say it right yet: what is missing
    nights_after: int = 0          # run as the n-th night after the clean one, on the clean night's warehouse


CASES = [
    Case("wrong_encoding_utf16", "vehicle", wrong_encoding_utf16, "rejected", "rejected",
         r"vehicle\.csv.*UTF-16.*未读取", "unread",
         reason=r"vehicle\.csv: .*UTF-16"),
    Case("damaged_utf8", "vehicle", damaged_utf8, "rejected", "rejected",
         r"vehicle\.csv.*第 101 行.*不是有效的 UTF-8", "unread",
         reason=r"vehicle\.csv: .*第 101 行"),
    Case("truncated_mid_row", "tax", truncated_mid_row, "rejected", "rejected",
         r"part2\.csv.*第 500 行中途截断.*\(.*truncated", "all",
         reason=r"part2\.csv: .*截断"),
    Case("truncated_gbk_inside_character", "hukou", truncated_gbk_inside_character, "rejected", "rejected",
         r"hukou\.csv.*第 700 行中途截断", "all",
         reason=r"hukou\.csv: .*截断"),
    Case("cut_at_a_row_boundary_next_night", "hukou", cut_at_a_row_boundary_next_night, "rejected", "loaded",
         r"hukou.*本次 {rows_read} 行，{previous} 的上次交付 [\d,]+ 行", None,
         reason=r"hukou.*本次 {rows_read} 行，{previous} 的上次交付", nights_after=1),
    Case("manifest_row_count", "business", manifest_row_count, "rejected", "rejected",
         r"persons\.csv.*MANIFEST.*读到 {n} 行，MANIFEST\.csv 写的是 {m} 行", "all",
         reason=r"persons\.csv: .*MANIFEST"),
    Case("manifest_sha256", "payroll", manifest_sha, "rejected", "rejected",
         r"payroll\.csv.*sha256 与 MANIFEST\.csv 不符", "all",
         reason=r"payroll\.csv: .*sha256"),
    Case("manifest_part_missing", "tax", manifest_part_missing, "rejected", "rejected",
         r"tax.*MANIFEST\.csv 列出的 part2\.csv 没有交付", "all",
         reason=r"part2\.csv 没有交付"),
    Case("missing_column", "housing_fund", missing_column, "rejected", "rejected",
         r"housing_fund\.csv.*缺少必填列：账户状态", "all",
         reason=r"housing_fund\.csv: .*账户状态"),
    Case("renamed_column", "cremation", renamed_column, "rejected", "rejected",
         r"cremation\.csv.*缺少必填列：死亡日期；多出的列：死亡时间，可能是列名被改了", "all",
         reason=r"cremation\.csv: .*死亡日期"),
    Case("extra_column", "tax", extra_column, "ok", "loaded",
         r"tax part1\.csv.*多出的列已忽略：备注", 0),
    Case("empty_file", "cremation", empty_file, "rejected", "rejected",
         r"cremation\.csv.*文件是空的（0 字节）", "unread",
         reason=r"cremation\.csv: .*空"),
    Case("header_only", "housing_fund", header_only, "rejected", "loaded",
         r"housing_fund\.csv.*文件只有表头，没有数据行", 0,
         reason=r"housing_fund\b.*入库 0 行"),
    Case("same_delivery_twice", "housing_fund", same_delivery_twice, "ok", "loaded",
         r"housing_fund\.csv.*与 {first} 的交付逐字节相同", 0),
    Case("excel_ids_some", "property", excel_ids_some, "ok", "loaded",
         r"property\.xlsx.*「证件号码」列有 \d+ 个单元格存成了数字（第 [\d、]+ 行等?）.*Excel", 0),
    Case("excel_ids_whole_column", "property", excel_ids_whole_column, "rejected", "loaded",
         r"property\.xlsx.*「证件号码」列有 \d+ 个单元格存成了数字（第 [\d、]+ 行等?）.*Excel", None,
         reason=r"「证件号码」可用身份证号 [\d,]+ / [\d,]+"),
    Case("malformed_json_line", "bank", malformed_json_line, "ok", "loaded",
         r"bank bank_reply\.jsonl 第 50 行：.*不是完整的 JSON 对象", 1),
    Case("unparseable_date", "tax", unparseable_date, "ok", "loaded",
         r"tax part1\.csv 第 7 行：.*「所属期起」不是可识别的日期", 1),
    Case("source_not_delivered", "payroll", source_not_delivered, "missing", None,
         r"payroll：未收到交付.*2026-11-20.*\(no delivery", "unread",
         reason=r"payroll：未收到交付"),
    Case("delivered_after_the_night", "hukou", delivered_after_the_night, "missing", None,
         r"hukou：未收到交付.*2026-11-20.*{later}", "unread",
         reason=r"hukou：未收到交付.*{later}"),
    Case("stale_source", "payroll", stale_source, "stale", "loaded",
         r"payroll.*{old}.*\b{age}\b.*\b{max_age}\b", 0,
         reason=r"payroll.*{old}.*\b{age}\b.*\b{max_age}\b"),
]


_NIGHTS: dict[str, tuple[dict, Night]] = {}


def broken_night(case: Case, clean, tmp_path_factory) -> tuple[dict, Night]:
    """The case's facts and its night (run once per session, shared by the tests below)."""
    if case.id not in _NIGHTS:
        clean_landing, _, clean_db = clean
        base = tmp_path_factory.mktemp(case.id)
        landing = base / "landing"
        shutil.copytree(clean_landing, landing)
        facts = case.mutate(landing)
        if case.nights_after:
            shutil.copy(clean_db, base / "w.duckdb")
        night = run_stages(landing, base / "w.duckdb", PROPERTY_PROBE, AS_OF + timedelta(days=case.nights_after))
        _NIGHTS[case.id] = facts, night
    return _NIGHTS[case.id]


def _fill(pattern: str, facts: dict) -> re.Pattern:
    return re.compile(pattern.format(**{k: re.escape(str(v)) for k, v in facts.items()}))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_delivery(case: Case, clean, tmp_path_factory):
    _, before, _ = clean
    facts, night = broken_night(case, clean, tmp_path_factory)

    # the broken source: its status for the night, and the broken file's
    assert night.status[case.source]["status"] == case.status, night.steward_lines(case.source)
    if "delivery_date" in facts:
        assert night.status[case.source]["delivery_date"] == facts["delivery_date"]
    f = night.file(case.source, facts["file"]) if "file" in facts else None
    if case.file_status is None:
        assert night.source_files(case.source) == []
    else:
        assert f is not None and f["status"] == case.file_status, f

    # the steward's message: file, row where there is one, reason (Chinese, then English)
    pattern = _fill(case.message, facts)
    lines = night.steward_lines(case.source)
    assert any(pattern.search(line) for line in lines), "\n".join(lines)
    for line in lines:
        assert re.search(r"[\u4e00-\u9fff]", line), f"no Chinese in: {line}"

    # row accounting of the broken file
    if f is not None:
        assert f["rows_read"] == f["rows_staged"] + f["rows_quarantined"]
        if "rows_read" in facts:
            assert f["rows_read"] == facts["rows_read"]
        if case.quarantined == "all":
            assert f["rows_staged"] == 0 and f["rows_quarantined"] == f["rows_read"] > 0
            whole = [q for q in night.quarantine if q["source"] == case.source and q["file_name"] == f["file_name"]]
            assert len(whole) == 1 and whole[0]["row_no"] is None and "整个文件未入库" in whole[0]["reason"]
        elif case.quarantined == "unread":
            assert f["rows_read"] == 0
        elif case.quarantined is not None:
            was = before.file(case.source, facts["file"])
            assert f["rows_quarantined"] == was["rows_quarantined"] + case.quarantined
    if case.id == "excel_ids_some":
        assert night.probe[0][0] == before.probe[0][0] + facts["turned"]
        assert re.search(rf"第 [\d、]*\b{facts['first_row']}\b", "\n".join(lines))

    # every row of every file accounted for, and staging holds exactly what was staged
    for row in night.files:
        assert row["rows_read"] == row["rows_staged"] + row["rows_quarantined"], row
        if row["status"] == "loaded":
            n = sum(1 for q in night.quarantine if (q["source"], q["table_name"], q["file_name"])
                    == (row["source"], row["table_name"], row["file_name"]) and q["row_no"] is not None)
            assert n == row["rows_quarantined"], row
    for table, n in night.staged.items():
        assert n == sum(r["rows_staged"] for r in night.files if r["table_name"] == table), table

    # the night's other sources go on exactly as on the clean landing
    for source in night.status:
        if source != case.source:
            assert night.totals(source) == before.totals(source), (source, night.steward_lines(source))

    # no full ID number in anything a person reads
    for text in night.all_texts():
        assert not FULL_ID.search(text), text


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.reason_xfail)) if c.reason_xfail else c
    for c in CASES], ids=[c.id for c in CASES])
def test_validation_says_why(case: Case, clean, tmp_path_factory):
    """Validation's verdict on the broken source (what the rules stage and the summary show) names the
    file or the column and the reason; a source that is ok has no reason."""
    facts, night = broken_night(case, clean, tmp_path_factory)
    reason = night.status[case.source]["reason"]
    if case.reason is None:
        assert reason is None and case.status == "ok"
    else:
        assert reason and _fill(case.reason, facts).search(reason), reason


def test_clean_landing_baseline(clean):
    """What the corpus compares with: on the clean landing every source is usable."""
    _, before, _ = clean
    assert {s: r["status"] for s, r in before.status.items()} == {s: "ok" for s in load_sources().sources}
    assert all(r["status"] == "loaded" for r in before.files)


# --- the readers on the smallest inputs (fast, no warehouse) -------------------------------------------------

def test_csv_cut_inside_last_row_is_broken_not_just_a_short_row():
    cut = read_csv_bytes("a,b,c\n1,2,3\n4,5".encode(), "t.csv")
    assert cut.broken and "第 2 行" in cut.broken and cut.rows_read == 2
    short_in_the_middle = read_csv_bytes("a,b,c\n4,5\n1,2,3\n".encode(), "t.csv")
    assert short_in_the_middle.broken is None and [q.row for q in short_in_the_middle.quarantined] == [1]
    no_final_newline = read_csv_bytes("a,b,c\n1,2,3".encode(), "t.csv")
    assert no_final_newline.broken is None and any("没有换行符" in n for n in no_final_newline.notes)


def test_gbk_cut_inside_a_character_is_truncated_not_wrong_encoding():
    data = "姓名,住址\n张三,湖北省荆门市\n李四,湖北省荆门市\n".encode("gbk")
    f = read_csv_bytes(data[:-4], "h.csv", "gb18030")          # ends with the first byte of 门
    assert f.error is None and f.broken and "第 2 行" in f.broken and f.rows_read == 2


def test_jsonl_cut_in_the_last_line_is_broken():
    good = '{"zjhm": "1", "ye": "2"}\n'
    f = read_jsonl_bytes((good * 3 + '{"zjhm": "1", "y').encode(), "b.jsonl")
    assert f.broken and "第 4 行" in f.broken and f.rows_read == 4
    g = read_jsonl_bytes((good + "{oops\n" + good).encode(), "b.jsonl")
    assert g.broken is None and [q.row for q in g.quarantined] == [2]
    assert read_jsonl_bytes(b"", "b.jsonl").error


def test_utf16_without_byte_order_mark_is_named():
    f = read_csv_bytes("HPHM,SYR\n鄂H12345,张三\n".encode("utf-16-le"), "v.csv", "gb18030")
    assert f.error and "UTF-16" in f.error


# --- the whole night, three sources broken at once ---------------------------------------------------------

@pytest.mark.slow   # ~40 s, most of it starting Prefect's temporary server
def test_night_with_three_broken_sources(tmp_path):
    """``crosscheck run`` on a landing (full scale-0.005 files) where vehicle arrives in UTF-16, business's
    persons.csv does not match its MANIFEST.csv, payroll did not arrive, and bank has one malformed line:
    the night finishes, the summary names each broken source, file, row and reason, and the other sources
    still produce cases."""
    from crosscheck.cli import main

    landing = tmp_path / "landing"
    generate(landing, AS_OF, SCALE, SEED, tmp_path / "truth")
    wrong_encoding_utf16(landing)
    manifest_row_count(landing)
    source_not_delivered(landing)
    malformed_json_line(landing)
    out = tmp_path / "out"
    printed = io.StringIO()    # not capsys: Prefect's log handlers would keep its stream, closed after the test
    with contextlib.redirect_stdout(printed):
        code = main(["run", "--landing", str(landing), "--as-of", AS_OF.isoformat(), "--out", str(out),
                     "--state", str(tmp_path / "state")])
    assert code == 0

    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    md = (out / "run_summary.md").read_text(encoding="utf-8")
    problems = [line for line in md.splitlines() if line.startswith("- ")]
    broken = {"vehicle": ("rejected", r"vehicle · vehicle\.csv: .*UTF-16.*未读取"),
              "business": ("rejected", r"business · persons\.csv: .*MANIFEST.*读到 \d+ 行，MANIFEST\.csv 写的是 \d+ 行"),
              "payroll": ("missing", r"payroll: payroll：未收到交付.*2026-11-20")}
    for source, (status, line) in broken.items():
        assert summary["sources"][source]["status"] == status
        row = next(r for r in md.splitlines() if r.startswith(f"| {source} |"))
        assert f"| {status} |" in row, row
        assert any(re.search(line, p) for p in problems), (source, problems)
    assert any(re.search(r"bank · bank_reply\.jsonl · 第 50 行.*JSON", p) for p in problems), problems
    for source, info in summary["sources"].items():
        if source not in broken:
            assert info["status"] == "ok", (source, info.get("reason"))
            assert info["rows_read"] == info["rows_staged"] + info["rows_quarantined"] > 0

    rules = {r["rule"]: r for r in summary["rules"]}
    assert {r for r, v in rules.items() if v["status"] != "evaluated"} == {"R02", "R04", "R05"}
    export = list(csv.DictReader(io.StringIO((out / "cases.csv").read_text(encoding="utf-8-sig"), newline="")))
    assert summary["cases_exported"] == len(export) > 0
    flagged = {r for r, v in rules.items() if v["households"] > 0}
    assert {"R01", "R03", "R06", "R07", "R09"} <= flagged
    assert "| vehicle |" in printed.getvalue()
    for text in (md, printed.getvalue(), (out / "run_summary.json").read_text(encoding="utf-8")):
        assert not FULL_ID.search(text)
