"""File connectors: CSV, XLSX and JSON Lines deliveries, read strictly and without losing a row.

Text files are decoded strictly: UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK). A
file that is neither is rejected with a message; it is never read garbled. The configured encoding is
what the department is expected to send; a file that arrives in the other one is still read correctly,
with a note. Everything comes out as text: types are the loader's business (staging), not the reader's.

A file that was cut off (it ends inside a character, or its last record is incomplete and has no line
end) is read, but marked ``broken``: the loader keeps its rows in raw and does not use the table, since
the rows after the cut are missing without a trace. Messages are for data stewards: Chinese first, the
English in parentheses.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Collection, Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from connectors.base import (EXCEL_DAMAGED, RESERVED, ROW, DeliveredFile, QuarantinedRow, column_key, mask_name,
                             scrub_exception)
from connectors.landing import known_sha256, sha256_bytes
from connectors.readahead import take_read_ahead
from crosscheck.settings import TableSpec

_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 25
# Characters that real text never holds: C0 controls (except tab/newline/CR), DEL, the private use area
# (where GB18030 puts its user-defined byte ranges). Seeing them after a GB18030 decode means garbage.
_IMPLAUSIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000-\uf8ff]")
# UTF-8 bytes that can start one of them (the control bytes; EE and EF lead U+E000–U+FFFF): 1, else 0
_SUSPECT = bytes(1 if (b < 0x20 and b not in (9, 10, 13)) or b in (0x7F, 0xEE, 0xEF) else 0 for b in range(256))
TRUNCATED_NOTE = "文件在一个字符的中间结束，看起来被截断了 (the file ends in the middle of a character: it looks truncated)"


class DecodeRejected(Exception):
    """The bytes are neither UTF-8 nor GB18030; the message says where it went wrong."""


def _line_of(data: bytes | memoryview, pos: int) -> int:
    """1-based physical line of byte offset ``pos``."""
    return bytes(data[:pos]).count(b"\n") + 1


def _expects_gb(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in {"gb18030", "gbk", "gb2312", "cp936"}


def decode_strict(data: bytes, expected: str = "utf-8") -> tuple[pa.Buffer, str, list[str]]:
    """UTF-8 bytes (BOM removed) of a delivered text file, the encoding it was read in, and notes.

    Raises ``DecodeRejected`` when the file is neither UTF-8 nor GB18030, or is UTF-8 damaged in the
    middle (a few invalid bytes in an otherwise UTF-8 file: decoding it as GB18030 would garble it).
    """
    notes: list[str] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(data):
        raise DecodeRejected("文件是 UTF-16 编码（如 Excel 另存为“Unicode 文本”），不是 UTF-8 或 GBK，未读取 "
                             "(the file is UTF-16, e.g. Excel \"Unicode text\", not UTF-8 or GBK; it was not read)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DecodeRejected(f"文件第 {_line_of(data, nul)} 行含有 NUL 字节，不是 UTF-8 或 GBK 文本"
                             "（可能是二进制文件），未读取 (the file holds NUL bytes: binary, not a text export "
                             "in UTF-8 or GBK; it was not read)")
    has_bom = data.startswith(_BOM)
    buf = pa.py_buffer(data)
    body = buf.slice(3) if has_bom else buf
    error = _utf8_error(body)
    if error is None:
        used = "utf-8-sig" if has_bom else "utf-8"
        if _expects_gb(expected) and not data.isascii():
            notes.append("文件是 UTF-8 编码，约定是 GBK/GB18030；已按 UTF-8 正确读取 "
                         "(delivered in UTF-8 although GBK/GB18030 was expected; read as UTF-8)")
        return body, used, notes
    pos, end, reason = error
    view = memoryview(data)[3:] if has_bom else memoryview(data)
    if end >= len(view) and reason == "unexpected end of data":
        notes.append(TRUNCATED_NOTE)
        return body.slice(0, pos), ("utf-8-sig" if has_bom else "utf-8"), notes
    non_ascii_before = int(np.count_nonzero(np.frombuffer(view[:pos], dtype=np.uint8) >= 0x80)) if pos else 0
    if has_bom or non_ascii_before >= 8:
        line = _line_of(view, pos)
        raise DecodeRejected(
            f"文件第 {line} 行（第 {pos} 字节）不是有效的 UTF-8：文件是 UTF-8 但已损坏，为免读成乱码未读取 "
            f"(not valid UTF-8 at byte {pos}, line {line}: the file is UTF-8 but damaged; "
            "it was not read, to avoid garbling it)")
    # GB18030, decoded and re-encoded in chunks so that a large file never exists as one Python str. The UTF-8
    # goes straight into one buffer sized for the worst case (a GB18030 character never takes more than 1.5
    # times its bytes in UTF-8): only the pages written are ever resident, and no join copies it again.
    decoder = codecs.getincrementaldecoder("gb18030")("strict")
    out = np.empty(len(view) + len(view) // 2 + 8, dtype=np.uint8)
    used_bytes = 0
    lines_before = 0
    for start in range(0, len(view), _CHUNK):
        piece = view[start:start + _CHUNK]
        final = start + _CHUNK >= len(view)
        try:
            text = decoder.decode(piece, final=final)
        except UnicodeDecodeError as exc:
            text = None
            if final and exc.reason == "incomplete multibyte sequence" and exc.end >= len(exc.object):
                # GBK cut off inside its last character: truncated, not a wrong encoding
                try:
                    text = codecs.getincrementaldecoder("gb18030")("strict").decode(exc.object[:exc.start], final=True)
                except UnicodeDecodeError:
                    text = None
            if text is None:
                line = _line_of(view, start + max(exc.start, 0))
                raise DecodeRejected(
                    f"文件第 {line} 行附近有无法识别的字节：既不是 UTF-8 也不是 GBK/GB18030，未读取 "
                    f"(neither UTF-8 nor GBK/GB18030: invalid byte near line {line}; the file was not read)") from None
            notes.append(TRUNCATED_NOTE)
        encoded = text.encode("utf-8")
        # a byte scan first (cheap); the regex over the text only where a suspect byte shows up
        bad = _IMPLAUSIBLE.search(text) if encoded.translate(_SUSPECT).find(1) >= 0 else None
        if bad:
            line = lines_before + text.count("\n", 0, bad.start()) + 1
            raise DecodeRejected(
                f"按 GB18030 解码只得到控制字符或自定义区字符（第 {line} 行）：编码不对或文件已损坏，未读取 "
                f"(decodes as GB18030 only into control or private-use characters, line {line}: "
                "wrong encoding or damaged; the file was not read)")
        lines_before += encoded.count(b"\n")
        out[used_bytes:used_bytes + len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
        used_bytes += len(encoded)
        del text, encoded
    if not _expects_gb(expected):
        notes.append("文件是 GBK/GB18030 编码，约定是 UTF-8；已按 GB18030 正确读取 "
                     "(delivered in GBK/GB18030 although UTF-8 was expected; read as GB18030)")
    return pa.py_buffer(out).slice(0, used_bytes), "gb18030", notes


def _looks_utf16(data: bytes) -> bool:
    """UTF-16 without a byte-order mark: every other byte of mostly-ASCII text is NUL."""
    head = np.frombuffer(data[:4096], dtype=np.uint8)
    if len(head) < 16:
        return False
    return max(np.mean(head[0::2] == 0), np.mean(head[1::2] == 0)) >= 0.3


def _utf8_error(body: pa.Buffer) -> tuple[int, int, str] | None:
    """None when ``body`` is valid UTF-8, else (start, end, reason) of the first error."""
    head = body.slice(0, min(body.size, 1 << 16)).to_pybytes()
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=body.size <= len(head))
    except UnicodeDecodeError as exc:
        return exc.start, exc.end, exc.reason
    if body.size > len(head):
        try:  # fast whole-buffer validation in Arrow
            pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, body.size], np.int64)),
                                                         body]).cast(pa.large_string())
            return None
        except pa.ArrowInvalid:
            pass
    try:
        body.to_pybytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start, exc.end, exc.reason
    return None


def _header(names: Sequence[object], keep: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """Header names stripped and made unique; notes for what had to be changed. Unique as DuckDB sees them
    (``column_key``: "x" and "X" would be one column), and never the name of a column the loader adds
    (``RESERVED``: a delivered "_row" must not take the place of the row number). A name in ``keep`` (the
    configured columns) keeps it when another spelling of it comes first ("ZJHM" before "zjhm")."""
    notes: list[str] = []
    cleaned: list[str] = []
    for i, raw in enumerate(names, start=1):
        # NUL is dropped too: DuckDB reads an Arrow column whose name holds one under another name
        name = str(raw if raw is not None else "").replace("\ufeff", "").replace("\x00", "").strip()
        if not name:
            name = f"column_{i}"
            notes.append(f"表头第 {i} 列为空，记为 {name} (header cell {i} is empty; the column is called {name})")
        cleaned.append(name)
    taken = {column_key(n) for n in RESERVED}
    out: list[str | None] = [None] * len(cleaned)
    for i, name in enumerate(cleaned):
        if name in keep and column_key(name) not in taken:
            out[i] = name
            taken.add(column_key(name))
    for i, name in enumerate(cleaned):
        if out[i] is not None:
            continue
        if column_key(name) in taken:
            k = 2
            while column_key(f"{name}__{k}") in taken:
                k += 1
            new = f"{name}__{k}"
            shown, shown_new = mask_name(name), mask_name(new)
            if name in RESERVED:
                notes.append(f"表头「{name}」与装载程序自己的列同名，记为 {new} "
                             f"(header {name} is the name of a column the loader adds; it is called {new})")
            else:
                notes.append(f"表头「{shown}」出现不止一次（不分大小写），另一个记为 {shown_new} "
                             f"(header {shown} appears twice, ignoring case; the other one is called {shown_new})")
            name = new
        taken.add(column_key(name))
        out[i] = name
    return out, notes


def _row_numbers(total: int, bad: list[int]) -> pa.Array:
    """1..total without the rows in ``bad``: the numbers of the rows that parsed."""
    rows = np.arange(1, total + 1, dtype=np.int64)
    if bad:
        keep = np.ones(total, dtype=bool)
        keep[np.asarray(bad, dtype=np.int64) - 1] = False
        rows = np.ascontiguousarray(rows[keep])
    # from_buffers: pa.array(numpy) would import pandas (~1.5 s) on first use
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])


# --- CSV ---------------------------------------------------------------------------------------------------

def _decoded(data: bytes, name: str, expected_encoding: str, sha256: str | None = None):
    """(the file's result so far, its UTF-8 body) — body None when the bytes decode as neither encoding."""
    out = DeliveredFile(name=name, sha256=sha256 or sha256_bytes(data), size=len(data), table=None)
    try:
        body, out.encoding, notes = decode_strict(data, expected_encoding)
    except DecodeRejected as exc:
        out.error = str(exc)
        return out, None
    out.notes.extend(notes)
    return out, body


def read_csv_bytes(data: bytes, name: str, expected_encoding: str = "utf-8", *,
                   columns: Collection[str] = (), sha256: str | None = None) -> DeliveredFile:
    """Read one delivered CSV file from its bytes (see module docstring). ``columns``: the configured
    column names (see ``_header``); ``sha256``: the bytes' digest when already known."""
    out, body = _decoded(data, name, expected_encoding, sha256)
    return _csv_from_text(out, body, columns)


def _csv_from_text(out: DeliveredFile, body: pa.Buffer | None, columns: Collection[str]) -> DeliveredFile:
    """The rest of ``read_csv_bytes`` once the file is decoded: ``body`` its UTF-8 text (None: undecodable)."""
    if body is None:
        return out
    if not out.size:
        out.error = "文件是空的（0 字节），没有表头也没有数据 (the file is empty: 0 bytes)"
        return out
    first_nl = _find_newline(body)
    header_text = body.slice(0, first_nl if first_nl >= 0 else body.size).to_pybytes().decode("utf-8")
    try:
        header_cells = next(csv.reader([header_text]), [])
    except csv.Error as exc:   # a header cell longer than the csv module allows (131,072 characters)
        out.error = f"表头行无法解析，未读取 (the header row could not be parsed: {scrub_exception(exc)})"
        return out
    if not any(c.strip() for c in header_cells):
        out.error = "文件没有内容或第一行不是表头 (the file is empty or has no header row)"
        return out
    names, notes = _header(header_cells, columns)
    out.notes.extend(notes)
    if first_nl < 0:   # the header alone, without a line end: Arrow cannot skip a line that never ends
        body = pa.py_buffer(body.to_pybytes() + b"\n")
    bad: list[tuple[int, str, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, row.text, row.actual_columns))
        return "skip"

    def parse(threads: bool) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(use_threads=threads, skip_rows=1, column_names=names,
                                           block_size=1 << 26),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                 check_utf8=False))

    # threads for the common clean file of some size; a file with unparseable rows (or that fails) is read
    # again on one thread, the only way Arrow tells the row numbers of those rows and the same error text
    table = None
    if body.size > 1 << 22:
        try:
            table = parse(True)
        except (pa.ArrowInvalid, OSError):
            table = None
        if bad:
            table = None
            bad.clear()
    try:
        if table is None:
            table = parse(False)
    except (pa.ArrowInvalid, OSError) as exc:
        out.error = f"CSV 无法解析，未读取 (the CSV could not be parsed: {scrub_exception(exc)})"
        return out
    # number = record number counting the header as 1 (blank lines not counted)
    bad_rows = [(n - 1 if n is not None else None, text, actual) for n, text, actual in bad]
    out.rows_read = table.num_rows + len(bad_rows)
    known = [r for r, _, _ in bad_rows if r is not None]
    if len(known) != len(bad_rows):  # cannot happen single-threaded; keep the count honest anyway
        out.notes.append("some unparseable rows have no known row number")
    table = table.append_column(ROW, _row_numbers(out.rows_read, known) if len(known) == len(bad_rows)
                                else _row_numbers(table.num_rows, []))
    out.table = table
    for row, text, actual in bad_rows:
        out.quarantined.append(QuarantinedRow(
            row, f"字段数不对：应为 {len(names)} 列，实为 {actual} 列 (wrong number of fields)", text))
    # cut off: inside a character, or a last record that is short and has no line end
    ends_open = body.size > 0 and body.slice(body.size - 1).to_pybytes() not in (b"\n", b"\r")
    last_short = any(r == out.rows_read and actual < len(names) for r, _, actual in bad_rows)
    if TRUNCATED_NOTE in out.notes or (ends_open and last_short):
        out.broken = _cut_off(out.rows_read)
    elif ends_open and out.rows_read:
        out.notes.append(f"最后一行（第 {out.rows_read} 行）没有换行符，文件可能不完整，请与部门核对行数 "
                         f"(the last row, row {out.rows_read}, has no line end: the file may be truncated)")
    if out.rows_read == 0:
        out.notes.append(HEADER_ONLY_NOTE)
    return out


HEADER_ONLY_NOTE = "文件只有表头，没有数据行 (header only: no data rows)"


def _cut_off(row: int) -> str:
    where = f"第 {row} 行" if row else "表头行"
    return (f"文件不完整：在{where}中途截断，之后的行都缺失，整个文件未使用 "
            f"(the file is cut off in {'row ' + str(row) if row else 'the header row'}: it looks truncated; "
            "the rows after the cut are missing, so the file was not used)")


def _find_newline(buf: pa.Buffer) -> int:
    """Where the first line ends: at a LF or a CR, since Arrow ends a line at either (and its ``skip_rows``
    skips that physical line), and an old Mac export ends every line with a CR alone."""
    step = 1 << 16
    for start in range(0, buf.size, step):
        chunk = buf.slice(start, min(step, buf.size - start)).to_pybytes()
        ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
        if ends:
            return start + min(ends)
    return -1


# --- XLSX --------------------------------------------------------------------------------------------------

_EXCEL_DIGITS = 15  # Excel keeps 15 significant digits of a number


def excel_cell_text(value: object) -> tuple[str, bool]:
    """A cell as text without float noise, and whether it is a number too long for Excel to hold exactly
    (an 18-digit ID typed as a number reads ...000 or shows 4.20802E+17)."""
    if value is None:
        return "", False
    if isinstance(value, str):
        return value, False
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE"), False
    if isinstance(value, int):
        return str(value), abs(value) >= 10 ** _EXCEL_DIGITS
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "", False
        shown = f"{value:.{_EXCEL_DIGITS}g}"
        if value.is_integer():
            as_int = int(Decimal(shown))
            return str(as_int), abs(as_int) >= 10 ** _EXCEL_DIGITS
        return format(Decimal(shown).normalize(), "f"), False
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S"), False
    if isinstance(value, date):
        return value.isoformat(), False
    if isinstance(value, time):
        return value.isoformat(), False
    return str(value), False


def _excel_column(values: Sequence[object]) -> tuple[pa.Array, list[int]]:
    """One sheet column as text, and the positions of cells that were numbers too long for Excel."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return pa.array(values, pa.string()), []
    if kinds == {float}:   # a numeric column: Arrow formats it; Python only where Arrow would show noise
        import pyarrow.compute as pc

        shown = pa.array(values, pa.float64()).cast(pa.string())
        odd = pc.or_(pc.or_(pc.match_substring(shown, "e"), pc.equal(shown, "-0")),   # Excel shows -0 as 0
                     pc.greater(pc.count_substring_regex(shown, "[0-9]"), _EXCEL_DIGITS))
        odd = pc.or_(odd, pc.match_substring_regex(shown, "^-?(inf|nan)$"))   # as excel_cell_text shows them
        fix = np.flatnonzero(odd.to_numpy(zero_copy_only=False))
        if not len(fix):
            return shown, []
        texts = shown.to_pylist()
        hurt = []
        for k in fix:
            texts[k], damaged = excel_cell_text(values[k])
            if damaged:
                hurt.append(int(k))
        return pa.array(texts, pa.string()), hurt
    texts: list[str] = []
    hurt: list[int] = []
    append = texts.append
    for k, v in enumerate(values):
        if type(v) is str:
            append(v)
            continue
        text, damaged = excel_cell_text(v)
        append(text)
        if damaged:
            hurt.append(k)
    return pa.array(texts, pa.string()), hurt


def read_xlsx_bytes(data: bytes, name: str, *, columns: Collection[str] = (),
                    sha256: str | None = None) -> DeliveredFile:
    """The first sheet of a workbook; the first non-empty row is the header; empty rows are skipped but
    keep their number (``_row`` + header row = the row number Excel shows)."""
    import pyarrow.compute as pc
    from python_calamine import CalamineWorkbook

    out = DeliveredFile(name=name, sha256=sha256 or sha256_bytes(data), size=len(data), table=None, encoding="xlsx")
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet_names = book.sheet_names
        rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # calamine raises its own error types for damaged workbooks, and a panic
        # inside it (pyo3's PanicException) is a BaseException that would otherwise end the night
        out.error = (f"工作簿无法打开（文件损坏、被截断或不是 .xlsx），未读取 "
                     f"(the workbook could not be opened: {scrub_exception(exc)})")
        return out
    if len(sheet_names) > 1:
        out.notes.append(f"工作簿有 {len(sheet_names)} 个工作表，只读取了第一个 "
                         f"(the workbook has {len(sheet_names)} sheets; only the first was read)")

    def blank(v: object) -> bool:
        return v is None or (isinstance(v, str) and not v.strip())

    header_at = next((i for i, r in enumerate(rows) if not all(map(blank, r))), None)
    if header_at is None:
        out.error = "工作簿的第一个工作表是空的 (the workbook's first sheet is empty)"
        return out
    header = list(rows[header_at])
    while header and blank(header[-1]):
        header.pop()
    names, notes = _header([excel_cell_text(v)[0] for v in header], columns)
    out.notes.extend(notes)
    width = len(names)
    body = rows[header_at + 1:]
    del rows
    full = max((len(r) for r in body), default=width)
    body = [r if len(r) == full else list(r) + [""] * (full - len(r)) for r in body]
    columns = list(zip(*body)) if body else [() for _ in range(full)]
    texts: list[pa.Array] = []
    damaged: dict[int, str] = {}
    for j in range(max(full, width)):
        arr, hurt = _excel_column(columns[j] if j < len(columns) else [""] * len(body))
        texts.append(arr)
        if j < width:
            for k in hurt:
                damaged[k] = damaged.get(k, "") + f"|{names[j]}|"
    del columns, body
    # vectorised: empty rows (skipped, numbering kept) and rows with cells beyond the header (quarantined)
    n = len(texts[0]) if texts else 0
    def nonblank(arr: pa.Array) -> pa.Array:
        return pc.not_equal(pc.utf8_trim_whitespace(arr), "")
    used = [nonblank(a) for a in texts]
    any_in = used[0] if width else pa.array([False] * n, pa.bool_())
    for a in used[1:width]:
        any_in = pc.or_(any_in, a)
    beyond = pa.array([False] * n, pa.bool_())
    for a in used[width:]:
        beyond = pc.or_(beyond, a)
    keep = pc.and_(any_in, pc.invert(beyond))
    numbers = _row_numbers(n, [])
    for k in np.flatnonzero(np.asarray(beyond.to_numpy(zero_copy_only=False))):
        out.quarantined.append(QuarantinedRow(
            int(k) + 1, f"该行有表头以外的数据：表头 {width} 列 (cells beyond the header's {width} columns)",
            "\t".join(a[int(k)].as_py() for a in texts)))
    marks = [None] * n
    for k, v in damaged.items():
        marks[k] = v
    table = pa.table({**{names[j]: texts[j] for j in range(width)}, ROW: numbers,
                      EXCEL_DAMAGED: pa.array(marks, pa.string())})
    out.table = table.filter(keep)
    out.rows_read = out.table.num_rows + len(out.quarantined)
    out.notes.extend(_excel_damage_notes(damaged))
    if out.rows_read == 0:
        out.notes.append(HEADER_ONLY_NOTE)
    return out


def _excel_damage_notes(damaged: dict[int, str]) -> list[str]:
    """One note per column whose cells held numbers too long for Excel (row numbers: data rows)."""
    rows_of: dict[str, list[int]] = {}
    for k in sorted(damaged):
        for col in damaged[k].strip("|").split("||"):
            rows_of.setdefault(col, []).append(k + 1)
    notes = []
    for col, rows in rows_of.items():
        more = len(rows) > 5
        col = mask_name(col)   # a header cell may be data (an ID)
        notes.append(
            f"「{col}」列有 {len(rows)} 个单元格存成了数字（第 {'、'.join(map(str, rows[:5]))} 行{'等' if more else ''}）："
            "Excel 只保留 15 位，身份证号末几位已变成 0 或显示为 4.20802E+17，这些号码不能用，请按文本格式重新导出 "
            f"({len(rows)} cell(s) in column {col} were stored as numbers, rows {', '.join(map(str, rows[:5]))}"
            f"{' …' if more else ''}: Excel keeps 15 digits, so these ID numbers are damaged)")
    return notes


# --- JSON Lines --------------------------------------------------------------------------------------------

def read_jsonl_bytes(data: bytes, name: str, expected_encoding: str = "utf-8", *,
                     columns: Collection[str] = (), sha256: str | None = None) -> DeliveredFile:
    """One JSON object per line. Keys become columns (in order of first appearance); values as text
    (numbers as written, null or missing as empty). A line that is not a JSON object is quarantined
    with its line number; blank lines are skipped but counted in the numbering."""
    out, body = _decoded(data, name, expected_encoding, sha256)
    if body is None:
        return out
    lines = body.to_pybytes().decode("utf-8").split("\n")
    numbers = [i for i, line in enumerate(lines, start=1) if line.strip()]
    n_lines = len(lines)
    if not numbers:
        out.error = ("文件是空的（0 字节）(the file is empty: 0 bytes)" if not data
                     else "文件没有任何记录 (the file holds no records)")
        return out
    texts = [lines[i - 1].rstrip("\r") for i in numbers]
    del lines
    con = duckdb.connect()
    try:
        con.register("_lines", pa.table({"n": pa.array(numbers, pa.int64()), "line": pa.array(texts, pa.string())}))
        # an object that names a key twice ({"ye": "1", "ye": "9"}) is set aside too: which value the
        # department meant cannot be told, and reading one of them would drop the other without a word
        con.execute("""CREATE TEMP TABLE j AS SELECT n, line, obj AND NOT twice AS ok, obj AND twice AS twice
                       FROM (SELECT n, line, obj, CASE WHEN obj THEN len(json_keys(line))
                                                      <> len(list_distinct(json_keys(line))) ELSE false END AS twice
                             FROM (SELECT n, line, CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT'
                                                        ELSE false END AS obj FROM _lines))""")
        invalid = set()
        for n, line, twice in con.execute("SELECT n, line, twice FROM j WHERE NOT ok ORDER BY n").fetchall():
            if twice:
                reason = f"第 {n} 行的 JSON 对象有重复的键 (line {n} is a JSON object that repeats a key)"
            else:
                reason = f"第 {n} 行不是完整的 JSON 对象 (line {n} is not a valid JSON object)"
                invalid.add(n)
            out.quarantined.append(QuarantinedRow(n, reason, line))
        keys: list[str] = []
        for (keyset,) in con.execute(
                "SELECT ks FROM (SELECT json_keys(line) AS ks, min(n) AS first FROM j WHERE ok GROUP BY ks) "
                "ORDER BY first").fetchall():
            for k in keyset:
                if k not in keys:
                    keys.append(k)
        names, hnotes = _header(keys, columns)
        out.notes.extend(hnotes)
        # each key as a JSON Pointer passed as a parameter: any key works, even "", "*", "a.b" or one
        # holding quotes, which a JSONPath literal ($."key") cannot say; columns are named in Arrow
        pointers = ["/" + k.replace("~", "~0").replace("/", "~1") for k in keys]
        select = ", ".join(f"coalesce(json_extract_string(line, ${i}), '') AS c{i}"
                           for i in range(1, len(keys) + 1))
        sql = f"SELECT {select + ', ' if select else ''}n AS {ROW} FROM j WHERE ok ORDER BY n"
        out.table = con.sql(sql, params=pointers or None).to_arrow_table().rename_columns([*names, ROW])
    finally:
        con.close()
    out.rows_read = out.table.num_rows + len(out.quarantined)
    # cut off: inside a character, or a last line that is not a whole object and has no line end
    last = numbers[-1]
    if TRUNCATED_NOTE in out.notes or (last == n_lines and last in invalid):
        out.broken = _cut_off(last)
    return out


# --- the connector -----------------------------------------------------------------------------------------

class FileConnector:
    """The files of one table in one delivery folder, read in the order given."""

    kind = "files"

    def __init__(self, spec: TableSpec, paths: Sequence[Path]):
        self.spec = spec
        self.paths = list(paths)

    def describe(self) -> str:
        return f"{self.spec.format} files: {', '.join(p.name for p in self.paths) or '(none)'}"

    def read(self) -> Iterator[DeliveredFile]:
        for path in self.paths:
            # the copy the load stage's read-ahead made of this very file (connectors/readahead.py), if any
            yield take_read_ahead(path, self.spec) or read_file(path, self.spec)


def read_file(path: Path, spec: TableSpec) -> DeliveredFile:
    """One delivered file of a table, read from disk (the file's bytes are freed before it is returned)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
            known = known_sha256(path, os.fstat(handle.fileno()))   # hashed tonight, unchanged since
    except OSError as exc:
        return DeliveredFile(name=path.name, sha256=None, size=None, table=None,
                             error=f"文件无法读取 (the file could not be read: {scrub_exception(exc)})")
    if spec.format == "csv":
        out, body = _decoded(data, path.name, spec.encoding, known)
        # a GB18030 file's bytes are not needed once decoded: freed before the parse (UTF-8 text is the
        # bytes themselves, kept alive by ``body``)
        del data
        return _csv_from_text(out, body, tuple(spec.columns))
    return read_bytes(data, path.name, spec, sha256=known)


def read_bytes(data: bytes, name: str, spec: TableSpec, sha256: str | None = None) -> DeliveredFile:
    if spec.format == "csv":
        return read_csv_bytes(data, name, spec.encoding, columns=tuple(spec.columns), sha256=sha256)
    if spec.format == "xlsx":
        return read_xlsx_bytes(data, name, columns=tuple(spec.columns), sha256=sha256)
    if spec.format == "jsonl":
        return read_jsonl_bytes(data, name, spec.encoding, columns=tuple(spec.columns), sha256=sha256)
    raise ValueError(f"unknown format {spec.format}")
