"""load_source end to end on tiny landing zones written by the tests."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path

import pytest

from connectors.load import _WS, id_sql, load_delivery, load_source, trimmed
from connectors.replay import ReplayConnector
from crosscheck.idnum import check_digit
from crosscheck.warehouse import connect

D1, D2 = date(2024, 5, 1), date(2024, 5, 8)
ROSTER_COLS = ["家庭编号", "救助类别", "分类管理", "成员姓名", "身份证号", "与户主关系", "家庭人口数", "月保障金额",
               "区县", "乡镇街道", "村社区", "家庭住址", "救助开始日期", "残疾类别等级", "重病"]
NAMES = ["张三", "李四", "王五", "赵六", "买买提 艾力", "孙七", "周八", "吴九", "郑十", "冯一"]


def pid(n: int, year: int = 1980) -> str:
    body = f"420802{year}0101{n:03d}"
    return body + check_digit(body)


def roster_row(i: int, **over) -> dict:
    row = dict(zip(ROSTER_COLS, [f"H{i // 2}", "城市低保", "A", NAMES[i % len(NAMES)], pid(i), "户主", "2", "800.00",
                                 "东宝区", "龙泉街道", "某社区", "某路1号", "2020-01-01", "", "否"]))
    row.update(over)
    return row


def write_csv(path: Path, rows: list[dict], cols: list[str] | None = None, encoding: str = "utf-8-sig",
              extra_lines: list[str] | None = None) -> Path:
    cols = cols or list(rows[0])
    lines = [",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in rows] + (extra_lines or [])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def files_of(con, source):
    return con.execute("SELECT table_name, file_name, rows_read, rows_staged, rows_quarantined, status, message "
                       "FROM audit.load_files WHERE source = ? ORDER BY run_date, table_name, file_name",
                       [source]).fetchall()


def assert_accounting(con):
    bad = con.execute("SELECT file_name FROM audit.load_files "
                      "WHERE rows_read <> rows_staged + rows_quarantined").fetchall()
    assert bad == []
    # every staged-time or reader quarantine has its audit row (rejected files: one summary row each)
    per_file = con.execute("""
        SELECT f.run_date, f.file_name, f.rows_quarantined, count(q.file_name) AS q_rows, f.status
        FROM audit.load_files f LEFT JOIN audit.quarantine q
          ON q.run_date = f.run_date AND q.source = f.source AND q.table_name = f.table_name
         AND q.file_name = f.file_name
        GROUP BY ALL""").fetchall()
    for _, name, n_quarantined, q_rows, status in per_file:
        if status == "loaded":
            assert n_quarantined == q_rows, name


def test_roster_loads_typed_and_normalised(tmp_path, con):
    rows = [roster_row(i) for i in range(4)]
    rows[1]["身份证号"] = " ４２０８０２" + pid(1)[6:-1] + "x " if pid(1).endswith("X") else "'" + pid(1)
    rows[2]["救助开始日期"] = "20200315"
    rows[3]["身份证号"] = pid(3)[:6] + pid(3)[8:17]         # 15-digit legacy form
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    assert out["status"] == "loaded" and out["delivery_date"] == D1
    got = con.execute("SELECT id_number, id_norm, id_status, start_date, household_size, monthly_payment, name, "
                      "name_norm, name_key, _row, _file FROM staging.roster ORDER BY _row").fetchall()
    assert [g[2] for g in got] == ["valid", "valid", "valid", "upgraded15"]
    assert got[1][0] == rows[1]["身份证号"] and got[1][1] == pid(1)       # raw text kept, norm repaired
    assert got[3][1] == pid(3)
    assert got[2][3] == date(2020, 3, 15) and got[0][3] == date(2020, 1, 1)
    assert got[0][4] == 2 and float(got[0][5]) == 800.0
    assert [g[9] for g in got] == [1, 2, 3, 4] and got[0][10] == "roster.csv"
    raw = con.execute("SELECT count(*), min(_delivery_date) FROM raw.roster").fetchall()[0]
    assert raw == (4, D1)
    assert_accounting(con)


def test_repeated_unusual_names_and_ids_do_not_duplicate_rows(tmp_path, con):
    rows = [roster_row(i, 成员姓名="朱志?", 身份证号=pid(1), 家庭编号=f"H{i}") for i in range(4)]
    rows += [roster_row(i, 成员姓名="买买提 艾力") for i in range(4, 7)]
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    assert out["rows_staged"] == 7 and out["status"] == "loaded"
    assert con.execute("SELECT count(*), count(DISTINCT _row) FROM staging.roster").fetchall()[0] == (7, 7)
    assert_accounting(con)


def _roster_quarantining_duplicates():
    from crosscheck.settings import load_sources

    cfg = load_sources()
    source = cfg.sources["roster"]
    table = source.tables["roster"].model_copy(update={"keep_exact_duplicates": False})
    source = source.model_copy(update={"tables": {"roster": table}})
    return cfg.model_copy(update={"sources": {**cfg.sources, "roster": source}})


def test_exact_duplicate_rows_quarantined_not_double_counted(tmp_path, con):
    rows = [roster_row(0), roster_row(1), roster_row(1), roster_row(2)]
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    out = load_source(con, tmp_path / "land", "roster", D1, D1, sources=_roster_quarantining_duplicates())
    assert (out["rows_read"], out["rows_staged"], out["rows_quarantined"]) == (4, 3, 1)
    reason, row_no = con.execute("SELECT reason, row_no FROM audit.quarantine").fetchone()
    assert row_no == 3 and "roster.csv 第 2 行" in reason and "duplicate" in reason
    assert_accounting(con)


def test_roster_keeps_a_member_listed_twice_for_r08(tmp_path, con):
    """config/sources.yaml: the roster keeps exact copies (a member listed twice is R08's finding)."""
    rows = [roster_row(0), roster_row(1), roster_row(1), roster_row(2)]
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    assert (out["rows_read"], out["rows_staged"], out["rows_quarantined"]) == (4, 4, 0)
    assert con.execute("SELECT _row FROM staging.roster WHERE id_norm = ? ORDER BY _row",
                       [pid(1)]).fetchall() == [(2,), (3,)]
    assert_accounting(con)


def test_unparseable_date_and_empty_required_go_to_quarantine(tmp_path, con):
    rows = [roster_row(i) for i in range(5)]
    rows[1]["救助开始日期"] = "2020-13-45"
    rows[3]["家庭编号"] = ""
    rows[4]["月保障金额"] = "八百"
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    t = out["tables"]["roster"]
    assert (t["rows_read"], t["rows_staged"], t["rows_quarantined"]) == (5, 2, 3)
    q = con.execute("SELECT row_no, reason, raw_record FROM audit.quarantine ORDER BY row_no").fetchall()
    assert [r[0] for r in q] == [2, 4, 5]
    assert "救助开始日期" in q[0][1] and "date" in q[0][1]
    assert "家庭编号" in q[1][1] and "empty" in q[1][1]
    assert "not a number" in q[2][1]
    assert json.loads(q[0][2])["救助开始日期"] == "2020-13-45"
    assert_accounting(con)


def test_wrong_field_count_row_quarantined_with_row_number(tmp_path, con):
    rows = [roster_row(i) for i in range(3)]
    path = write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows, extra_lines=["H9,城市低保,A"])
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    t = out["tables"]["roster"]
    assert (t["rows_read"], t["rows_staged"], t["rows_quarantined"]) == (4, 3, 1)
    (row_no, reason), = con.execute("SELECT row_no, reason FROM audit.quarantine").fetchall()
    assert row_no == 4 and "wrong number of fields" in reason
    assert path.exists()
    assert_accounting(con)


def test_split_delivery_read_in_order(tmp_path, con):
    folder = tmp_path / "land/roster/2024-05-01"
    write_csv(folder / "part2.csv", [roster_row(i) for i in range(3, 5)])
    write_csv(folder / "part1.csv", [roster_row(i) for i in range(3)])
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    files = out["tables"]["roster"]["files"]
    assert [f["file"] for f in files] == ["part1.csv", "part2.csv"]
    assert [f["rows_staged"] for f in files] == [3, 2]
    assert con.execute("SELECT count(*) FROM staging.roster").fetchall()[0][0] == 5
    assert_accounting(con)


def _manifest(folder: Path, entries: list[tuple[str, int, str]]):
    (folder / "MANIFEST.csv").write_text("file,rows,sha256\n" + "".join(f"{f},{r},{h}\n" for f, r, h in entries))


def test_manifest_match_and_mismatch(tmp_path, con):
    folder = tmp_path / "land/roster/2024-05-01"
    p1 = write_csv(folder / "part1.csv", [roster_row(i) for i in range(3)])
    p2 = write_csv(folder / "part2.csv", [roster_row(i) for i in range(3, 5)])
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    _manifest(folder, [("part1.csv", 3, sha(p1)), ("part2.csv", 2, sha(p2))])
    assert load_source(con, tmp_path / "land", "roster", D1, D1)["status"] == "loaded"
    # truncated second part: row count and hash no longer match
    p2.write_bytes(p2.read_bytes()[: len(p2.read_bytes()) // 2])
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    assert out["status"] == "rejected"
    assert any("MANIFEST" in m and "part2.csv" in m for m in out["messages"])
    assert con.execute("SELECT count(*) FROM staging.roster").fetchall()[0][0] == 0
    statuses = con.execute("SELECT file_name, status FROM audit.load_files ORDER BY file_name").fetchall()
    assert statuses == [("part1.csv", "rejected"), ("part2.csv", "rejected")]
    assert_accounting(con)


def test_manifest_lists_a_missing_file(tmp_path, con):
    folder = tmp_path / "land/roster/2024-05-01"
    p1 = write_csv(folder / "part1.csv", [roster_row(i) for i in range(3)])
    _manifest(folder, [("part1.csv", 3, hashlib.sha256(p1.read_bytes()).hexdigest()), ("part2.csv", 2, "00")])
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    assert any("part2.csv" in m and "not delivered" in m for m in out["messages"])


def test_missing_required_column_rejects_table(tmp_path, con):
    cols = [c for c in ROSTER_COLS if c != "救助开始日期"]
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", [roster_row(i) for i in range(3)], cols)
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    assert out["status"] == "rejected"
    assert any("required column(s) missing: 救助开始日期" in m for m in out["messages"])
    assert out["tables"]["roster"]["rows_staged"] == 0
    assert con.execute("SELECT count(*) FROM staging.roster").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM raw.roster").fetchall()[0][0] == 3    # kept for inspection
    missing = con.execute("SELECT missing_columns FROM audit.load_files").fetchall()[0][0]
    assert missing == ["救助开始日期"]
    assert_accounting(con)


def test_missing_optional_and_extra_column_are_notes(tmp_path, con):
    cols = [c for c in ROSTER_COLS if c != "家庭住址"] + ["备注"]
    rows = [roster_row(i, 备注="x") for i in range(3)]
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows, cols)
    out = load_source(con, tmp_path / "land", "roster", D1, D1)
    assert out["status"] == "loaded" and out["tables"]["roster"]["rows_staged"] == 3
    assert any("extra column(s) ignored: 备注" in m for m in out["messages"])
    assert any("optional column(s) missing" in m and "家庭住址" in m for m in out["messages"])
    assert con.execute("SELECT count(address) FROM staging.roster").fetchall()[0][0] == 0
    assert "备注" in [r[0] for r in con.execute("DESCRIBE raw.roster").fetchall()]
    assert "备注" not in [r[0] for r in con.execute("DESCRIBE staging.roster").fetchall()]


def test_header_matched_ignoring_case_and_width(tmp_path, con):
    rows = [{"aac002": pid(i), "AAC003": NAMES[i], "AAE140": "110", "AAE002": "202404", "AAE180": "4500",
             "AAB004": "某公司", "AAB019": "10", "AAC031": "1"} for i in range(2)]
    folder = tmp_path / "land/social_insurance/2024-05-01"
    write_csv(folder / "contributions.csv", rows, encoding="gbk")
    write_csv(folder / "benefits.csv", [{"AAC002": pid(5), "AAC003": "孙七", "AAE140": "110", "待遇类型": "基本养老金",
                                          "AAE002": "2024-04", "发放金额": "2100.5"}], encoding="gbk")
    out = load_source(con, tmp_path / "land", "social_insurance", D1, D1)
    assert out["status"] == "loaded", out["messages"]
    assert con.execute("SELECT month FROM staging.si_contribution").fetchall()[0][0] == date(2024, 4, 1)
    assert con.execute("SELECT month, amount FROM staging.si_benefit").fetchall()[0][0] == date(2024, 4, 1)
    enc = con.execute("SELECT DISTINCT encoding FROM audit.load_files").fetchall()
    assert enc == [("gb18030",)]


def test_a_table_with_no_file_rejects_the_source(tmp_path, con):
    folder = tmp_path / "land/social_insurance/2024-05-01"
    write_csv(folder / "contributions.csv", [{"AAC002": pid(1), "AAC003": "张三", "AAE140": "110",
                                               "AAE002": "202404", "AAE180": "4500", "AAB004": "",
                                               "AAB019": "10", "AAC031": "1"}], encoding="gbk")
    out = load_source(con, tmp_path / "land", "social_insurance", D1, D1)
    assert out["status"] == "rejected"
    assert any("benefits*.csv" in m for m in out["messages"])
    assert_accounting(con)


def test_undecodable_file_is_rejected_not_garbled(tmp_path, con):
    folder = tmp_path / "land/cremation/2024-05-01"
    folder.mkdir(parents=True)
    (folder / "cremation.csv").write_bytes(b"\xfe\x80\x81\xff" * 40)
    out = load_source(con, tmp_path / "land", "cremation", D1, D1)
    assert out["status"] == "rejected"
    assert any("not read" in m for m in out["messages"])
    assert files_of(con, "cremation")[0][2:6] == (0, 0, 0, "rejected")


def test_missing_source_gets_empty_tables(tmp_path, con):
    (tmp_path / "land").mkdir()
    out = load_source(con, tmp_path / "land", "vehicle", D1, D1)
    assert out["status"] == "missing" and out["delivery_date"] is None
    assert con.execute("SELECT count(*) FROM staging.vehicle").fetchall()[0][0] == 0
    cols = [r[0] for r in con.execute("DESCRIBE staging.vehicle").fetchall()]
    assert {"plate_no", "id_number", "id_norm", "id_status", "name_norm"} <= set(cols)


def test_rerun_is_idempotent_and_repeat_is_recognised(tmp_path, con):
    rows = [roster_row(i) for i in range(4)]
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    load_source(con, tmp_path / "land", "roster", D1, D1)
    load_source(con, tmp_path / "land", "roster", D1, D1)
    assert len(files_of(con, "roster")) == 1
    assert con.execute("SELECT count(*) FROM audit.source_loads").fetchall()[0][0] == 1
    # the next night finds the same folder: same bytes, recognised and not read again
    staged_before = con.execute("SELECT * FROM staging.roster ORDER BY _row").fetchall()
    out = load_source(con, tmp_path / "land", "roster", date(2024, 5, 2), date(2024, 5, 2))
    assert out["reused_from"] == D1 and out["rows_staged"] == 4 and "not read again" in out["messages"][0]
    f = files_of(con, "roster")[-1]
    assert f[2:6] == (4, 4, 0, "loaded") and "not read again" in f[6]
    first, = con.execute("SELECT first_loaded_run FROM audit.load_files WHERE run_date = ?",
                         [date(2024, 5, 2)]).fetchone()
    assert first == D1
    assert con.execute("SELECT * FROM staging.roster ORDER BY _row").fetchall() == staged_before
    # the department sends the very same file again under a new date: a repeat
    write_csv(tmp_path / "land/roster/2024-05-08/roster.csv", rows)
    out = load_source(con, tmp_path / "land", "roster", D2, D2)
    f = out["tables"]["roster"]["files"][0]
    assert f["same_as_delivery"] == D1
    assert any("identical to the file of the delivery of 2024-05-01" in m for m in out["messages"])


def _property_xlsx(path: Path, rows: list[list]):
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    header = ["不动产单元号", "不动产权证号", "权利人", "证件种类", "证件号码", "共有情况", "坐落", "规划用途", "建筑面积",
              "登记时间", "权属状态"]
    ws.write_row(0, 0, header)
    for r, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            ws.write(r, c, v)
    wb.close()


def test_property_excel_ids_and_co_owners(tmp_path, con):
    base = ["U1", "C1", "张三", "身份证", pid(1), "单独所有", "某路", "住宅", 89.5, "2019-05-01", "现势"]
    rows = [
        base,
        ["U2", "C2", "张三、李四", "身份证", f"{pid(1)}、{pid(2)}", "共同共有", "某路", "住宅", 120, "2019-05-02", "现势"],
        ["U3", "C3", "王五", "身份证", 420802198001010000, "单独所有", "某路", "商业", 30, "2020-01-01", "现势"],
        ["U4", "C4", "赵六、孙七", "身份证", pid(4), "按份共有", "某路", "住宅", 60, "2020-01-01", "历史"],
    ]
    _property_xlsx(tmp_path / "land/property/2024-05-01/property.xlsx", rows)
    out = load_source(con, tmp_path / "land", "property", D1, D1)
    assert out["status"] == "loaded", out["messages"]
    owners = con.execute("SELECT unit_no, owner_seq, name, id_number, id_norm, id_status, owners_mismatch "
                         "FROM staging.property_owner ORDER BY unit_no, owner_seq").fetchall()
    assert owners[0] == ("U1", 1, "张三", pid(1), pid(1), "valid", False)
    assert [(o[0], o[1], o[2], o[4]) for o in owners[1:3]] == [("U2", 1, "张三", pid(1)), ("U2", 2, "李四", pid(2))]
    assert owners[3][5] == "excel_damaged" and owners[3][4] is None and owners[3][3] == "420802198001010000"
    assert owners[4][6] and owners[5][3] is None                     # two names, one ID
    unit = con.execute("SELECT floor_area, registration_date FROM staging.property WHERE unit_no = 'U1'").fetchall()
    assert float(unit[0][0]) == 89.5 and unit[0][1] == date(2019, 5, 1)
    assert_accounting(con)


def test_bank_jsonl_malformed_line(tmp_path, con):
    folder = tmp_path / "land/bank/2024-05-01"
    folder.mkdir(parents=True)
    lines = [json.dumps({"zjhm": pid(i), "xm": NAMES[i], "jgmc": "某银行", "zhlx": "活期存款", "ye": "1000.50",
                         "cxrq": "2024-04-30"}, ensure_ascii=False) for i in range(3)]
    lines.insert(1, '{"zjhm": "4208')
    (folder / "bank.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = load_source(con, tmp_path / "land", "bank", D1, D1)
    t = out["tables"]["bank"]
    assert (t["rows_read"], t["rows_staged"], t["rows_quarantined"]) == (4, 3, 1)
    assert con.execute("SELECT row_no FROM audit.quarantine").fetchall() == [(2,)]
    assert con.execute("SELECT sum(balance) FROM staging.bank").fetchall()[0][0] == pytest.approx(3001.5)
    assert_accounting(con)


def test_replay_connector_through_load_delivery(con):
    recs = [roster_row(i) for i in range(3)] + ["garbage"]
    out = load_delivery(con, "roster", D1, D1, {"roster": ReplayConnector(recs, name="replayed")}, as_of=D1)
    t = out["tables"]["roster"]
    assert (t["rows_read"], t["rows_staged"], t["rows_quarantined"]) == (4, 3, 1)
    assert_accounting(con)


# --- ID expressions equal the shared macros ----------------------------------------------------------------

TRICKY = [None, "", "  ", pid(1), pid(1).lower(), " " + pid(2) + " ", "'" + pid(3), "４２０８０２" + pid(4)[6:],
          pid(5)[:6] + pid(5)[8:17], pid(6)[:17] + ("0" if pid(6)[17] != "0" else "1"), pid(7)[:-2],
          "4.20802E+17", "42080219800101001X", "42080219800101001x", "abc", "\u3000" + pid(8), pid(9) + "\u00a0",
          "91420800MA49ABCD1X", "12345678-9"]


def test_id_sql_matches_macros(con):
    for value in TRICKY:
        clean, status = id_sql("?")
        got = con.execute(f"SELECT {clean.replace('?', '$1')}, {status.replace('?', '$1')}, "
                          "id_clean($1), id_status($1)", [value]).fetchall()[0]
        assert got[0] == got[2] and got[1] == got[3], value


WHITE = [" ", "\t", "\r", "\n", "\u3000", "\u00a0"]
TRIM_CASES = [None, "", "a", "王小明", "a b", "王\u3000明", "\u0301", " \u0301", "\u0301 ", "x\u0301",
              *WHITE, *("".join(p) for p in [WHITE, WHITE[::-1]]),
              *(w + v for w in WHITE for v in ("王", "12", "王 明")), *(v + w for w in WHITE for v in ("王", "12")),
              *(w + "王" + w for w in WHITE), "\u2003王", "王\u2003", "\ufeff王"]


def test_trimmed_equals_trim_on_white_space(con):
    # the fast path must give exactly what nullif(trim(x, _WS), '') gives, white space at either end or not
    got = con.execute(f"SELECT x, {trimmed('x')} AS fast, nullif(trim(x, $1), '') AS plain "
                      "FROM unnest($2::VARCHAR[]) t(x)", [_WS, TRIM_CASES]).fetchall()
    assert len(got) == len(TRIM_CASES)
    assert [(x, fast) for x, fast, _ in got] == [(x, plain) for x, _, plain in got]
    assert ("\u3000王\u3000", "王") in {(x, fast) for x, fast, _ in got}
    # any expression, not only a column name: a column the raw table lacks is NULL::VARCHAR
    assert con.execute(f"SELECT {trimmed('NULL::VARCHAR')}, {trimmed(chr(39) + ' a ' + chr(39) + '::VARCHAR')}"
                       ).fetchone() == (None, "a")


def test_excel_damage_in_text_and_staging(tmp_path, con):
    rows = [roster_row(i) for i in range(3)]
    rows[0]["身份证号"] = "4.20802E+17"
    rows[1]["身份证号"] = "4.20802199001011e+17"
    rows[2]["身份证号"] = pid(2)[:15] + "000"             # a text ID ending in 000: a typo at most, not Excel
    write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    load_source(con, tmp_path / "land", "roster", D1, D1)
    got = con.execute("SELECT id_status, id_norm FROM staging.roster ORDER BY _row").fetchall()
    assert got[0] == ("excel_damaged", None) and got[1] == ("excel_damaged", None)
    assert got[2][0] in ("bad_check", "valid")


# --- no full ID or name in any message ---------------------------------------------------------------------

ID_RE = re.compile(r"\d{15}|\d{17}[\dXx]")


def test_no_full_id_or_name_in_messages(tmp_path, con):
    folder = tmp_path / "land/roster/2024-05-01"
    rows = [roster_row(i) for i in range(5)]
    rows[2]["救助开始日期"] = "bad"
    write_csv(folder / "roster.csv", rows, extra_lines=[f"H9,城市低保,A,{NAMES[0]},{pid(9)}"])
    # a headerless file: its first data row becomes the header
    write_csv(tmp_path / "land/cremation/2024-05-01/c.csv",
              [{pid(1): pid(2), "张三": "李四", "2024-01-01": "2024-01-02"}])
    out1 = load_source(con, tmp_path / "land", "roster", D1, D1)
    out2 = load_source(con, tmp_path / "land", "cremation", D1, D1)
    texts = out1["messages"] + out2["messages"]
    for table, cols in {"load_files": ["message", "extra_columns::VARCHAR"], "quarantine": ["reason"],
                        "source_loads": ["message"]}.items():
        for col in cols:
            texts += [r[0] for r in con.execute(f"SELECT {col} FROM audit.{table}").fetchall() if r[0]]
    assert texts
    for text in texts:
        assert not ID_RE.search(text), text
        for name in NAMES + ["张三", "李四"]:
            assert name not in text, text


def test_reuse_only_when_bytes_config_and_staging_are_unchanged(tmp_path, con):
    rows = [roster_row(i) for i in range(4)]
    rows[1]["救助开始日期"] = "not a date"
    path = write_csv(tmp_path / "land/roster/2024-05-01/roster.csv", rows)
    load_source(con, tmp_path / "land", "roster", D1, D1)
    out = load_source(con, tmp_path / "land", "roster", date(2024, 5, 2), date(2024, 5, 2))
    assert out.get("reused_from") == D1
    # the quarantined row is part of tonight's accounting too
    assert con.execute("SELECT count(*) FROM audit.quarantine WHERE run_date = ?", [date(2024, 5, 2)]).fetchone()[0] == 1
    assert_accounting(con)
    # the department rewrites the file in place (same date, other bytes): read again
    rows[2]["成员姓名"] = "钱二"
    write_csv(path, rows)
    out = load_source(con, tmp_path / "land", "roster", date(2024, 5, 3), date(2024, 5, 3))
    assert "reused_from" not in out and out["tables"]["roster"]["files"][0]["rows_read"] == 4
    # staging changed behind the loader's back (another night loaded elsewhere): read again
    con.execute("DELETE FROM staging.roster WHERE _row = (SELECT min(_row) FROM staging.roster)")
    out = load_source(con, tmp_path / "land", "roster", date(2024, 5, 4), date(2024, 5, 4))
    assert "reused_from" not in out
    # another configuration of the source: read again
    from crosscheck.settings import load_sources
    cfg = load_sources()
    spec = cfg.sources["roster"]
    cols = dict(spec.tables["roster"].columns)
    cols["家庭住址"] = cols["家庭住址"].model_copy(update={"required": True})
    changed = cfg.model_copy(update={"sources": {**cfg.sources, "roster": spec.model_copy(update={
        "tables": {"roster": spec.tables["roster"].model_copy(update={"columns": cols})}})}})
    out = load_source(con, tmp_path / "land", "roster", date(2024, 5, 5), date(2024, 5, 5), sources=changed)
    assert "reused_from" not in out
    assert_accounting(con)
