"""Readers: strict decoding, CSV/XLSX/JSONL to text columns with row numbers, landing-zone selection."""
from __future__ import annotations

import io
from datetime import date, datetime

import pytest

from connectors.base import EXCEL_DAMAGED, ROW, mask_ids, scrub_exception
from connectors.files import (DecodeRejected, decode_strict, excel_cell_text, read_csv_bytes, read_jsonl_bytes,
                              read_xlsx_bytes)
from connectors.landing import delivery_dates, find_delivery, natural_key, read_manifest
from connectors.names import name_key, name_norm
from connectors.replay import ReplayConnector
from crosscheck.settings import load_sources

TEXT = "身份证号,姓名,地址\n420802199001011234,张三,湖北省荆门市东宝区\n"


# --- decoding ----------------------------------------------------------------------------------------------

def test_utf8_plain():
    body, used, notes = decode_strict(TEXT.encode("utf-8"), "utf-8")
    assert used == "utf-8" and body.to_pybytes().decode() == TEXT and notes == []


def test_utf8_bom_is_removed():
    body, used, _ = decode_strict(b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig")
    assert used == "utf-8-sig" and body.to_pybytes().decode() == TEXT


def test_gbk_is_transcoded():
    body, used, notes = decode_strict(TEXT.encode("gbk"), "gb18030")
    assert used == "gb18030" and body.to_pybytes().decode() == TEXT and notes == []


def test_gbk_when_utf8_expected_is_read_with_a_note():
    body, used, notes = decode_strict(TEXT.encode("gbk"), "utf-8")
    assert used == "gb18030" and body.to_pybytes().decode() == TEXT
    assert any("GBK" in n for n in notes)


def test_utf8_when_gbk_expected_is_read_with_a_note():
    body, used, notes = decode_strict(TEXT.encode("utf-8"), "gb18030")
    assert used == "utf-8" and body.to_pybytes().decode() == TEXT
    assert any("UTF-8" in n for n in notes)


@pytest.mark.parametrize("garbage", [
    bytes([0xFF, 0xFE, 0x80, 0x81, 0x00, 0xFF]) * 50,           # neither UTF-8 nor GB18030
    "a,b\n".encode() + bytes(range(0x80, 0x100)) * 4,            # high bytes that GB18030 cannot pair up
    TEXT.encode("utf-8") * 20 + b"\xff\xfe" + TEXT.encode("utf-8"),  # UTF-8 damaged in the middle
    "a\n".encode() + bytes.fromhex("aaa1aaa2") * 10,              # GB18030 user-defined area (private use)
    TEXT.encode("utf-16"),                                        # UTF-16 (Excel "Unicode text")
    TEXT.encode("utf-16-le"),
])
def test_garbage_is_rejected_not_garbled(garbage):
    with pytest.raises(DecodeRejected):
        decode_strict(garbage, "gb18030")


def test_csv_reader_rejects_undecodable_file_with_message():
    f = read_csv_bytes(bytes([0xFF, 0xFE, 0x80]) * 30, "bad.csv", "utf-8")
    assert f.table is None and f.error and "not read" in f.error and f.rows_read == 0


def test_utf8_truncated_inside_a_character_is_noted():
    data = TEXT.encode("utf-8") + "李".encode("utf-8")[:2]
    body, used, notes = decode_strict(data, "utf-8")
    assert used == "utf-8" and any("truncated" in n for n in notes)


# --- CSV ---------------------------------------------------------------------------------------------------

def test_csv_all_text_empty_kept_and_row_numbers():
    data = "a,b,c\n1,,003\n\"x,y\",2,3\n".encode()
    f = read_csv_bytes(data, "t.csv")
    assert f.rows_read == 2 and not f.quarantined
    assert f.table.column("a").to_pylist() == ["1", "x,y"]
    assert f.table.column("b").to_pylist() == ["", "2"]          # empty stays empty, not null
    assert f.table.column("c").to_pylist() == ["003", "3"]        # leading zeros kept
    assert f.table.column(ROW).to_pylist() == [1, 2]


def test_csv_wrong_field_count_is_quarantined_with_row_number():
    data = "a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n13,14,15".encode()
    f = read_csv_bytes(data, "t.csv")
    assert f.rows_read == 5
    assert f.table.column(ROW).to_pylist() == [1, 3, 5]
    assert [(q.row, q.raw) for q in f.quarantined] == [(2, "4,5"), (4, "9,10,11,12")]
    assert all("wrong number of fields" in q.reason for q in f.quarantined)
    assert f.table.num_rows + len(f.quarantined) == f.rows_read


def test_csv_quoted_newline_counts_as_one_row():
    data = 'a,b\n"line1\nline2",x\nshort\n3,4\n'.encode()
    f = read_csv_bytes(data, "t.csv")
    assert f.table.column("a").to_pylist() == ["line1\nline2", "3"]
    assert f.table.column(ROW).to_pylist() == [1, 3]
    assert [q.row for q in f.quarantined] == [2]


def test_csv_header_only_and_empty():
    assert read_csv_bytes("a,b\n".encode(), "h.csv").rows_read == 0
    assert read_csv_bytes(b"", "e.csv").error


def test_csv_duplicate_header_is_renamed():
    f = read_csv_bytes("a,a,b\n1,2,3\n".encode(), "d.csv")
    assert f.table.column_names[:3] == ["a", "a__2", "b"] and f.notes


# --- XLSX --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,text,damaged", [
    (4.20802199001011e17, "420802199001011000", True),       # 18-digit ID typed as a number
    (420802199001011234, "420802199001011234", True),        # an int that Excel could not hold exactly
    (420802900101123.0, "420802900101123", False),           # 15-digit legacy ID fits in a double
    (89.5, "89.5", False),
    (0.1 + 0.2, "0.3", False),                                # no float noise
    (120.0, "120", False),
    ("'420802199001011234", "'420802199001011234", False),
    (date(2020, 1, 2), "2020-01-02", False),
    (datetime(2020, 1, 2, 3, 4, 5), "2020-01-02 03:04:05", False),
    (None, "", False),
    (True, "TRUE", False),
])
def test_excel_cell_text(value, text, damaged):
    assert excel_cell_text(value) == (text, damaged)


def _workbook(rows: list[list]) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("Sheet1")
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v is not None:
                ws.write(r, c, v)
    wb.close()
    return buf.getvalue()


def test_xlsx_numeric_ids_marked_and_rows_numbered():
    data = _workbook([["证件号码", "建筑面积"],
                      [420802199001011234, 89.5],
                      ["420802199001011234", 120],
                      [None, None],                              # empty row: skipped, keeps numbering
                      [420802900101123, 50]])
    f = read_xlsx_bytes(data, "p.xlsx")
    assert f.rows_read == 3
    assert f.table.column("证件号码").to_pylist() == ["420802199001011000", "420802199001011234", "420802900101123"]
    assert f.table.column(EXCEL_DAMAGED).to_pylist() == ["|证件号码|", None, None]
    assert f.table.column(ROW).to_pylist() == [1, 2, 4]
    assert f.table.column("建筑面积").to_pylist() == ["89.5", "120", "50"]


def test_xlsx_cells_beyond_header_are_quarantined():
    data = _workbook([["a", "b"], ["1", "2"], ["3", "4", "stray"]])
    f = read_xlsx_bytes(data, "p.xlsx")
    assert f.rows_read == 2 and [q.row for q in f.quarantined] == [2]


def test_xlsx_damaged_workbook_is_rejected():
    f = read_xlsx_bytes(b"PK\x03\x04 not really a zip", "bad.xlsx")
    assert f.table is None and f.error


# --- JSON Lines --------------------------------------------------------------------------------------------

def test_jsonl_malformed_line_quarantined_with_line_number():
    lines = ['{"zjhm": "420802199001011234", "xm": "张三", "ye": "100.50"}',
             '{"zjhm": "420802199001011234", "xm": "张三", "ye": 200}',
             '{"zjhm": "4208021990',                              # truncated line
             '',                                                   # blank: skipped, counted in numbering
             '[1, 2]',                                             # JSON but not an object
             '{"zjhm": null, "xm": "李四", "ye": "3", "extra": {"k": 1}}']
    f = read_jsonl_bytes("\n".join(lines).encode(), "b.jsonl")
    assert f.rows_read == 5
    assert [q.row for q in f.quarantined] == [3, 5]
    assert all("JSON" in q.reason for q in f.quarantined)
    assert f.table.column(ROW).to_pylist() == [1, 2, 6]
    assert f.table.column("ye").to_pylist() == ["100.50", "200", "3"]
    assert f.table.column("zjhm").to_pylist()[2] == ""
    assert f.table.column_names[:3] == ["zjhm", "xm", "ye"] and "extra" in f.table.column_names


def test_jsonl_gbk_is_read():
    f = read_jsonl_bytes('{"xm": "张三"}\n'.encode("gbk"), "b.jsonl")
    assert f.encoding == "gb18030" and f.table.column("xm").to_pylist() == ["张三"]


# --- replay ------------------------------------------------------------------------------------------------

def test_replay_connector():
    conn = ReplayConnector({"a.csv": [{"x": 1, "y": None}, "not a record", {"x": 3, "z": "q"}]})
    (f,) = list(conn.read())
    assert f.rows_read == 3 and [q.row for q in f.quarantined] == [2]
    assert f.table.column("x").to_pylist() == ["1", "3"] and f.table.column("y").to_pylist() == ["", ""]
    assert f.table.column(ROW).to_pylist() == [1, 3] and f.sha256


# --- landing zone ------------------------------------------------------------------------------------------

def test_newest_delivery_on_or_before(tmp_path):
    spec = load_sources().sources["roster"]
    for name in ["2024-04-01", "2024-05-01", "2024-06-01", "2024-13-01", "latest", "2024-5-2"]:
        (tmp_path / "roster" / name).mkdir(parents=True)
        (tmp_path / "roster" / name / "roster.csv").write_text("x\n")
    (tmp_path / "roster" / "2024-05-20.csv").write_text("not a folder")
    assert delivery_dates(tmp_path, "roster") == [date(2024, 4, 1), date(2024, 5, 1), date(2024, 6, 1)]
    assert find_delivery(tmp_path, "roster", date(2024, 5, 31), spec).delivery_date == date(2024, 5, 1)
    assert find_delivery(tmp_path, "roster", date(2024, 5, 1), spec).delivery_date == date(2024, 5, 1)
    assert find_delivery(tmp_path, "roster", date(2024, 3, 31), spec) is None
    assert find_delivery(tmp_path, "nothing", date(2024, 5, 1), spec) is None


def test_split_files_in_natural_order_and_manifest_excluded(tmp_path):
    spec = load_sources().sources["social_insurance"]
    folder = tmp_path / "social_insurance" / "2024-05-01"
    folder.mkdir(parents=True)
    for name in ["contributions_part10.csv", "contributions_part2.csv", "benefits.csv", "MANIFEST.csv",
                 "readme.txt"]:
        (folder / name).write_text("file,rows,sha256\n" if name == "MANIFEST.csv" else "x\n")
    d = find_delivery(tmp_path, "social_insurance", date(2024, 5, 1), spec)
    assert [p.name for p in d.files["si_contribution"]] == ["contributions_part2.csv", "contributions_part10.csv"]
    assert [p.name for p in d.files["si_benefit"]] == ["benefits.csv"]
    assert d.manifest == {} and any("readme.txt" in n for n in d.notes)
    assert sorted(["b10", "b2", "a"], key=natural_key) == ["a", "b2", "b10"]


def test_manifest_reading(tmp_path):
    p = tmp_path / "MANIFEST.csv"
    p.write_text("file,rows,sha256\npart1.csv,10,ABC\npart2.csv,ten,def\n", encoding="utf-8")
    entries, problems = read_manifest(p)
    assert entries["part1.csv"].rows == 10 and entries["part1.csv"].sha256 == "abc"
    assert entries["part2.csv"].rows is None and problems


# --- names and message hygiene -----------------------------------------------------------------------------

@pytest.mark.parametrize("raw,norm", [
    ("张三", "张三"),
    (" 张 三 ", "张三"),                      # stray spaces in a short Han name
    ("买买提·艾力", "买买提·艾力"),
    ("买买提•艾力", "买买提·艾力"),
    ("买买提.艾力", "买买提·艾力"),
    ("买买提 艾力", "买买提·艾力"),
    ("买买提 · 艾力", "买买提·艾力"),
    ("买买提．艾力", "买买提·艾力"),            # full-width full stop (NFKC)
    ("阿依古丽·买买提", "阿依古丽·买买提"),
    ("ＺＨＡＮＧ　San", "ZHANG·San"),
    ("王?明", "王?明"),
    (None, None),
    ("  ", None),
])
def test_name_norm(raw, norm):
    assert name_norm(raw) == norm


def test_name_key_drops_separators():
    assert name_key("买买提 艾力") == name_key("买买提艾力") == "买买提艾力"


def test_mask_ids_and_scrub():
    text = "row 3: 420802199001011234 and 42080219900101X and 420802900101123"
    masked = mask_ids(text)
    assert "420802199001011234" not in masked and "420802900101123" not in masked
    assert "420802********1234" in masked
    err = scrub_exception(ValueError("bad row 420802199001011234,张三"))
    assert "420802199001011234" not in err and "张三" not in err


def test_a_digest_is_reused_only_for_the_unchanged_file(tmp_path):
    """The night's fingerprint hashes every delivery file; the load stage reuses those digests
    (connectors/landing.py sha256_file, known_sha256) but never for a file that changed since."""
    import hashlib
    import os

    from connectors.files import FileConnector
    from connectors.landing import forget_file_hashes, known_sha256, sha256_file

    forget_file_hashes()
    path = tmp_path / "bank.csv"
    path.write_bytes("证件号码,姓名\n420802199001011234,张三\n".encode())
    first = sha256_file(path)
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    assert known_sha256(path, os.stat(path)) == first
    spec = load_sources().sources["bank"].tables["bank"]
    assert next(FileConnector(spec, [path]).read()).sha256 == first
    path.write_bytes("证件号码,姓名\n420802199001011234,李四\n".encode())     # same size, other bytes
    os.utime(path, ns=(1, 1))                  # and a timestamp that cannot match the first one's
    assert known_sha256(path, os.stat(path)) is None
    changed = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_file(path) == changed != first
    assert next(FileConnector(spec, [path]).read()).sha256 == changed
    forget_file_hashes()
    assert known_sha256(path, os.stat(path)) is None
