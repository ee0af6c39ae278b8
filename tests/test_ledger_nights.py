"""Two nights through the real flow on literal deliveries, with an auditor's workbook in between
(issue 5): every ledger transition of POLICY.md shows, each with its reason in the history.

Night 1 (2026-11-01): six households, each member owning a car → six R02 cases, all ``new``.
Between the nights the auditors return night 1's workbook: H1 查实, H2 查否, H3 查否, plus a row with an
unknown case_id (rejected on its own) and H4 left blank.
Night 2 (2026-11-02), a new vehicle delivery in another row order: H4's car deregistered (ZT E), H3 buys
a second car, H5's car is new tonight; the others unchanged. Expected:
  H1 confirmed stays confirmed · H2 refuted and quiet · H3 refuted, raised again by new evidence → new ·
  H4 closed with its reason · H5 new · H6 new → open.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook

from crosscheck.cli import run_night
from crosscheck.idnum import check_digit
from crosscheck.warehouse import connect

NIGHT1, NIGHT2 = date(2026, 11, 1), date(2026, 11, 2)
ROSTER_COLS = ["家庭编号", "救助类别", "分类管理", "成员姓名", "身份证号", "与户主关系", "家庭人口数", "月保障金额",
               "区县", "乡镇街道", "村社区", "家庭住址", "救助开始日期", "残疾类别等级", "重病"]
HUKOU_COLS = ["公民身份号码", "姓名", "性别", "民族", "出生日期", "户号", "与户主关系", "住址", "人员状态", "注销日期"]
VEHICLE_COLS = ["HPHM", "HPZL", "CLLX", "SYR", "SFZMMC", "SFZMHM", "CCDJRQ", "ZT", "SYXZ", "CLPP"]
NAMES = ["王建华", "李秀英", "张志强", "刘桂兰", "陈国庆", "杨淑珍"]


def pid(i: int) -> str:
    body = f"42080219{60 + i:02d}0101{i:03d}"
    return body + check_digit(body)


HOUSEHOLDS = [(f"H{i + 1}", NAMES[i], pid(i + 1)) for i in range(6)]


def write_csv(path: Path, cols: list[str], rows: list[list[str]], encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([",".join(cols)] + [",".join(r) for r in rows]) + "\n"
    path.write_bytes(text.encode(encoding))


def car(plate: str, name: str, owner: str, status: str = "A") -> list[str]:
    return [plate, "02", "K33", name, "A", owner, "2020-05-06 09:30:00", status, "A", "五菱"]


def deliver(landing: Path) -> None:
    day1 = NIGHT1.isoformat()
    write_csv(landing / "roster" / day1 / "roster.csv", ROSTER_COLS,
              [[hid, "城市低保", "A", name, idn, "户主", "1", "575", "东宝区", "龙泉街道", "象山社区", "某路1号",
                "2024-01-15", "", "否"] for hid, name, idn in HOUSEHOLDS], "utf-8-sig")
    write_csv(landing / "hukou" / day1 / "hukou.csv", HUKOU_COLS,
              [[idn, name, "1", "01", idn[6:14], f"HK{hid}", "02", "东宝区龙泉街道某路1号", "0", ""]
               for hid, name, idn in HOUSEHOLDS], "gbk")
    night1_cars = [car(f"鄂H1000{i}", name, idn) for i, (_, name, idn) in enumerate(HOUSEHOLDS, start=1) if i != 5]
    write_csv(landing / "vehicle" / day1 / "vehicle.csv", VEHICLE_COLS, night1_cars, "gbk")
    night2_cars = [car(f"鄂H1000{i}", name, idn, status="E" if hid == "H4" else "A")
                   for i, (hid, name, idn) in enumerate(HOUSEHOLDS, start=1)]
    h3 = HOUSEHOLDS[2]
    night2_cars.append(car("鄂H20003", h3[1], h3[2]))           # H3 buys a second car
    night2_cars.reverse()       # the department sorts differently: same cars, other rows (not new evidence)
    write_csv(landing / "vehicle" / NIGHT2.isoformat() / "vehicle.csv", VEHICLE_COLS, night2_cars, "gbk")


def return_workbook(night1_out: Path, landing: Path) -> Path:
    """Night 1's workbook as an auditor returns it: conclusions typed into the two last columns."""
    [book] = sorted((night1_out / "workbooks").glob("*.xlsx"))
    sheet = CalamineWorkbook.from_path(str(book)).get_sheet_by_index(0).to_python()
    header, rows = sheet[0], sheet[1:]
    answers = {"R02-H1": ("查实", "入户核实，车辆自用"), "R02-H2": ("查否", "车辆登记在其名下但已过户给亲属，待交警更新"),
               "R02-H3": ("查否", "经核实为代办登记")}
    target = landing / "feedback" / NIGHT2.isoformat() / "东宝区_已核查.xlsx"
    target.parent.mkdir(parents=True, exist_ok=True)
    out = xlsxwriter.Workbook(str(target))
    ws = out.add_worksheet()
    for col, name in enumerate(header):
        ws.write_string(0, col, str(name))
    filled = rows + [["R02-H99"] + [""] * (len(header) - 3) + ["查实", "case_id 抄错"]]
    for r, values in enumerate(filled, start=1):
        values = list(values)
        case_id = str(values[0])
        if case_id in answers:
            values[header.index("核查结论")], values[header.index("核查说明")] = answers[case_id]
        for col, value in enumerate(values):
            ws.write_string(r, col, "" if value is None else str(value))
    reviews = CalamineWorkbook.from_path(str(book)).get_sheet_by_name("定期复核").to_python()
    ws = out.add_worksheet("定期复核")
    for r, values in enumerate(reviews):
        values = [str(v) for v in values]
        if r and values[0] == "H1":                              # H1 was reviewed on night 1's day
            values[reviews[0].index("复核日期")] = NIGHT1.isoformat()
        ws.write_row(r, 0, values)
    out.close()
    return target


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    base = tmp_path_factory.mktemp("ledger-nights")
    landing, state = base / "landing", base / "state"
    deliver(landing)
    first = run_night(landing, NIGHT1, base / "out1", state)
    return_workbook(base / "out1", landing)
    second = run_night(landing, NIGHT2, base / "out2", state)
    return base, first, second


def test_night1_opens_a_new_case_per_household(nights):
    base, first, _ = nights
    r02 = {r["rule"]: r for r in first["rules"]}["R02"]
    assert r02["status"] == "evaluated" and r02["households"] == 5
    cases = pd.read_csv(base / "out1" / "cases.csv", dtype=str, encoding="utf-8-sig")
    assert sorted(cases["case_id"]) == ["R02-H1", "R02-H2", "R02-H3", "R02-H4", "R02-H6"]
    assert set(cases["status"]) == {"new"}


def test_night2_shows_every_transition_with_its_reason(nights):
    base, _, second = nights
    with connect(base / "state" / "warehouse.duckdb", read_only=True) as con:
        status = dict(con.execute("SELECT case_id, status FROM ledger.cases").fetchall())
        history = con.execute("SELECT case_id, run_date, from_status, to_status, reason FROM ledger.case_history "
                              "ORDER BY case_id, recorded_at").fetchall()
        closed_reason = con.execute("SELECT closed_reason FROM ledger.cases WHERE case_id = 'R02-H4'").fetchone()[0]
        conclusions = con.execute("SELECT case_id, conclusion, note FROM ledger.conclusions ORDER BY case_id").fetchall()
        rejects = con.execute("SELECT row, case_id, reason FROM ledger.feedback_rejects").fetchall()
    assert status == {"R02-H1": "confirmed", "R02-H2": "refuted", "R02-H3": "new", "R02-H4": "closed",
                      "R02-H5": "new", "R02-H6": "open"}
    steps = {}
    for case_id, run_date, old, new, reason in history:
        steps.setdefault(case_id, []).append((run_date, old, new, reason))
    assert [(d, o, n) for d, o, n, _ in steps["R02-H1"]] == [(NIGHT1, None, "new"), (NIGHT2, "new", "confirmed")]
    assert "查实" in steps["R02-H1"][-1][3] and "入户核实" in steps["R02-H1"][-1][3]
    assert [(o, n) for _, o, n, _ in steps["R02-H2"]] == [(None, "new"), ("new", "refuted")]       # quiet
    assert [(o, n) for _, o, n, _ in steps["R02-H3"]] == [(None, "new"), ("new", "refuted"), ("refuted", "new")]
    assert steps["R02-H3"][-1][3] == "查否后出现新证据，重新提出"
    assert [(o, n) for _, o, n, _ in steps["R02-H4"]] == [(None, "new"), ("new", "closed")]
    assert closed_reason == steps["R02-H4"][-1][3] and closed_reason.startswith("核对条件不再成立")
    assert "鄂H10004" in closed_reason                     # the evidence that no longer holds is named
    assert [(o, n) for _, o, n, _ in steps["R02-H5"]] == [(None, "new")]
    assert [(o, n) for _, o, n, _ in steps["R02-H6"]] == [(None, "new"), ("new", "open")]
    assert [c for c, _, _ in conclusions] == ["R02-H1", "R02-H2", "R02-H3"]
    assert [(case, reason) for _, case, reason in rejects] == [("R02-H99", "unknown case_id 'R02-H99'")]
    assert second["feedback"]["accepted"] == 4 and second["feedback"]["rejected"] == 1   # 3 conclusions, 1 review


def test_night2_export_holds_only_new_and_open_cases(nights):
    base, _, _ = nights
    cases = pd.read_csv(base / "out2" / "cases.csv", dtype=str, encoding="utf-8-sig")
    assert dict(zip(cases["case_id"], cases["status"])) == {"R02-H3": "new", "R02-H5": "new", "R02-H6": "open"}
    h3 = cases.set_index("case_id").loc["R02-H3"]
    assert "鄂H20003" in h3["evidence"] and h3["link"] == "id_exact" and h3["priority"] == "1"


def test_running_night2_again_changes_nothing(nights):
    base, _, _ = nights
    db = base / "state" / "warehouse.duckdb"
    with connect(db, read_only=True) as con:
        before = (con.execute("SELECT * FROM ledger.cases ORDER BY case_id").fetchall(),
                  con.execute("SELECT count(*) FROM ledger.case_history").fetchone(),
                  con.execute("SELECT count(*) FROM ledger.conclusions").fetchone())
    run_night(base / "landing", NIGHT2, base / "out2-again", base / "state")
    with connect(db, read_only=True) as con:
        after = (con.execute("SELECT * FROM ledger.cases ORDER BY case_id").fetchall(),
                 con.execute("SELECT count(*) FROM ledger.case_history").fetchone(),
                 con.execute("SELECT count(*) FROM ledger.conclusions").fetchone())
    assert before == after


def test_reviews_go_out_in_the_workbook_and_come_back(nights):
    """Started 2024-01-15, class A: this cycle's review was due 2026-01-15 for every household; night 1's
    workbook lists them in its 定期复核 sheet, the auditor dates H1's review, night 2 counts H1 from it."""
    base, first, second = nights
    [book] = sorted((base / "out1" / "workbooks").glob("*.xlsx"))
    sheet = CalamineWorkbook.from_path(str(book)).get_sheet_by_name("定期复核").to_python()
    assert sorted(str(r[0]) for r in sheet[1:]) == [h for h, _, _ in HOUSEHOLDS]
    assert {str(r[7])[:10] for r in sheet[1:]} == {"2026-01-15"} and {r[8] for r in sheet[1:]} == {"已逾期"}
    assert first["reviews"]["overdue"] == 6
    due = pd.read_csv(base / "out2" / "reviews_due.csv", dtype=str, encoding="utf-8-sig")
    assert sorted(due["household_id"]) == ["H2", "H3", "H4", "H5", "H6"] and second["reviews"]["overdue"] == 5
    with connect(base / "state" / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("SELECT household_id, reviewed_on FROM ledger.reviews").fetchall() == [("H1", NIGHT1)]
