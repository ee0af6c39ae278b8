"""Periodic reviews due (POLICY.md "The case ledger"), table-driven from literal roster rows: A yearly, B every
six months, counted from 救助开始日期 or the last recorded review, in calendar months."""
from __future__ import annotations

import csv
import stat
from datetime import date

import pytest

from cases.reviews import DUE_COLUMNS, record_review, review_night, reviews_due
from crosscheck.idnum import check_digit
from crosscheck.settings import ConfigError, PolicyConfig, _load, load_policy
from crosscheck.warehouse import connect
from reports.night import format_summary, review_line
from tests.staging_builder import stage
from tests.test_config import _write_policy

D = date.fromisoformat


def household(hid: str, cls: str | None, start: date | None, district: str = "东宝区", members: int = 1,
              classes: list[str | None] | None = None) -> list[dict]:
    """Roster rows of one household; ``classes`` gives each member's 分类管理 when they differ."""
    classes = classes or [cls] * members
    rows = []
    for i, member_class in enumerate(classes):
        body = f"4208021980{int(hid[1:]):04d}{i:03d}"
        rows.append(dict(household_id=hid, category="城市低保", management_class=member_class, name=f"成员{i}",
                         id_number=body + check_digit(body), relation="户主" if i == 0 else "配偶",
                         household_size=len(classes), monthly_payment=500, district=district,
                         township=f"{district}街道", village="社区", start_date=start))
    return rows


def run(roster: list[dict], as_of: date, reviews=(), policy: PolicyConfig | None = None):
    con = connect(":memory:")
    stage(con, "roster", roster, as_of)
    for hid, reviewed_on in reviews:
        record_review(con, hid, reviewed_on, "test")
    counts = reviews_due(con, policy or load_policy(), as_of)
    due = set(con.execute("SELECT household_id, management_class, basis, basis_date, due_date, status,"
                          " days_overdue_or_left FROM ledger.reviews_due").fetchall())
    unscheduled = set(con.execute("SELECT household_id, reason FROM ledger.reviews_unscheduled").fetchall())
    return due, unscheduled, counts


CASES = [
    pytest.param(household("H1", "A", D("2025-01-10")), (), D("2026-01-05"),
                 {("H1", "A", "救助开始日期", D("2025-01-10"), D("2026-01-10"), "due_soon", 5)}, set(),
                 id="A-yearly-due-soon"),
    pytest.param(household("H2", "B", D("2025-05-01")), (), D("2025-11-20"),
                 {("H2", "B", "救助开始日期", D("2025-05-01"), D("2025-11-01"), "overdue", 19)}, set(),
                 id="B-half-yearly-overdue"),
    pytest.param(household("H3", "B", D("2025-08-31")), (), D("2026-02-20"),
                 {("H3", "B", "救助开始日期", D("2025-08-31"), D("2026-02-28"), "due_soon", 8)}, set(),
                 id="month-end-clamps-to-feb-28"),
    pytest.param(household("H4", "A", D("2024-03-01")) + household("H5", "B", D("2025-01-15")),
                 [("H4", D("2025-02-20")), ("H5", D("2025-07-10"))], D("2026-02-10"),
                 # H4: overdue since 2025-03-01 without the review; H5: next due 2026-01-10, 31 days past
                 {("H4", "A", "上次复核", D("2025-02-20"), D("2026-02-20"), "due_soon", 10),
                  ("H5", "B", "上次复核", D("2025-07-10"), D("2026-01-10"), "overdue", 31)}, set(),
                 id="review-moves-basis"),
    pytest.param(household("H13", "A", D("2015-03-01")) + household("H14", "B", D("2019-06-25"))
                 + household("H15", "A", D("2018-08-15")), (), D("2026-11-20"),
                 # no review recorded: the review due is the latest anniversary of 救助开始日期 up to the end of
                 # the window (H13: this cycle's, overdue 264 days, not eleven years; H14: the 15th half-year,
                 # 2026-12-25 is past the window so the 2026-06-25 one, overdue 148; H15: 2026-08-15, overdue 97)
                 {("H13", "A", "救助开始日期", D("2015-03-01"), D("2026-03-01"), "overdue", 264),
                  ("H14", "B", "救助开始日期", D("2019-06-25"), D("2026-06-25"), "overdue", 148),
                  ("H15", "A", "救助开始日期", D("2018-08-15"), D("2026-08-15"), "overdue", 97)}, set(),
                 id="anniversaries-of-an-old-start"),
    pytest.param(household("H6", "B", D("2025-01-15")), [("H6", D("2025-07-10"))], D("2025-11-20"),
                 set(), set(), id="review-pushes-out-of-window"),
    pytest.param(household("H7", "A", D("2024-03-01")),
                 [("H7", D("2024-09-01")), ("H7", D("2025-03-05")), ("H7", D("2026-03-01"))], D("2026-02-10"),
                 # latest review on or before the night counts; one dated after the night does not
                 {("H7", "A", "上次复核", D("2025-03-05"), D("2026-03-05"), "due_soon", 23)}, set(),
                 id="latest-review-before-night"),
    pytest.param(household("H8", "B", D("2025-09-01")), [("H8", D("2025-03-01"))], D("2026-02-20"),
                 # a review before a fresh 救助开始日期 no longer counts
                 {("H8", "B", "救助开始日期", D("2025-09-01"), D("2026-03-01"), "due_soon", 9)}, set(),
                 id="start-after-old-review"),
    pytest.param(household("H9", "A", D("2025-06-01")) + household("H10", "B", D("2025-06-21"))
                 + household("H11", "B", D("2025-06-20")) + household("H12", "a", D("2025-05-20")),
                 (), D("2025-11-20"),
                 # H9 due 2026-06-01 and H10 due 2025-12-21 (31 days) are absent; H11 at exactly 30 days is in;
                 # H12's class in lowercase is read as A (not unknown): due 2026-05-20, absent
                 {("H11", "B", "救助开始日期", D("2025-06-20"), D("2025-12-20"), "due_soon", 30)}, set(),
                 id="window-boundary-and-not-due"),
    pytest.param(household("H13", "B", D("2025-05-20")), (), D("2025-11-20"),
                 {("H13", "B", "救助开始日期", D("2025-05-20"), D("2025-11-20"), "due_soon", 0)}, set(),
                 id="due-tonight-is-due-soon"),
    pytest.param(household("H14", "C", D("2025-01-01")) + household("H15", None, D("2025-01-01"))
                 + household("H16", "A", None) + household("H17", "", None)
                 + household("H18", None, D("2025-01-01"), classes=["A", "B"]),
                 (), D("2025-11-20"), set(),
                 {("H14", "分类管理未知：C"), ("H15", "分类管理为空"), ("H16", "缺少救助开始日期"),
                  ("H17", "分类管理为空；缺少救助开始日期"), ("H18", "分类管理不一致：A/B")},
                 id="unknown-class-or-start-listed-with-reason"),
    pytest.param(household("H19", "A", None), [("H19", D("2024-12-01"))], D("2025-11-20"),
                 {("H19", "A", "上次复核", D("2024-12-01"), D("2025-12-01"), "due_soon", 11)}, set(),
                 id="missing-start-but-reviewed"),
    pytest.param(household("H20", "B", D("2025-04-10"), members=3), (), D("2025-11-20"),
                 {("H20", "B", "救助开始日期", D("2025-04-10"), D("2025-10-10"), "overdue", 41)}, set(),
                 id="one-row-per-household"),
]


@pytest.mark.parametrize("roster, reviews, as_of, expected_due, expected_unscheduled", CASES)
def test_reviews_due(roster, reviews, as_of, expected_due, expected_unscheduled):
    due, unscheduled, _ = run(roster, as_of, reviews)
    assert due == expected_due
    assert unscheduled == expected_unscheduled


def test_district_override_of_interval_and_window():
    base = load_policy().model_dump()
    base["districts"] = {**base["districts"], "钟祥市": {"review_months": {"B": 3}},
                         "京山市": {"review_due_soon_days": 60}}
    policy = PolicyConfig.model_validate(base)
    assert policy.for_district("钟祥市").review_months == {"A": 12, "B": 3}
    roster = (household("H1", "B", D("2025-08-01"), district="钟祥市")
              + household("H2", "B", D("2025-08-01"), district="东宝区")
              + household("H3", "A", D("2025-01-10"), district="京山市")
              + household("H4", "A", D("2025-01-10"), district="东宝区"))
    due, _, counts = run(roster, D("2025-11-20"), policy=policy)
    assert due == {("H1", "B", "救助开始日期", D("2025-08-01"), D("2025-11-01"), "overdue", 19),
                   ("H3", "A", "救助开始日期", D("2025-01-10"), D("2026-01-10"), "due_soon", 51)}
    assert counts["by_district"] == {"京山市": {"overdue": 0, "due_soon": 1}, "钟祥市": {"overdue": 1, "due_soon": 0}}


def test_reviews_are_append_only_rows():
    con = connect(":memory:")
    record_review(con, "H1", D("2025-03-01"), "复核台账", "入户复核")
    record_review(con, "H1", D("2025-09-01"), "复核台账")
    assert con.execute("SELECT household_id, reviewed_on, source, note FROM ledger.reviews ORDER BY reviewed_on"
                       ).fetchall() == [("H1", D("2025-03-01"), "复核台账", "入户复核"),
                                        ("H1", D("2025-09-01"), "复核台账", None)]


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["defaults"]["review_months"].update(B=0), "review_months"),
    (lambda d: d["defaults"].update(review_due_soon_days=-1), "review_due_soon_days"),
    (lambda d: d["defaults"].pop("review_months"), "review_months"),
    (lambda d: d["districts"].update({"东宝区": {"review_months": {"B": -6}}}), "review_months"),
], ids=["zero-months", "negative-window", "missing", "bad-district-override"])
def test_bad_review_policy_refused(tmp_path, mutate, needle):
    with pytest.raises(ConfigError) as err:
        _load(PolicyConfig, "policy.yaml", _write_policy(tmp_path, mutate))
    assert needle in str(err.value)


def test_review_night_writes_csv_and_summary_line(tmp_path):
    """The function the nightly flow calls: tables, the CSV (BOM, no personal IDs, owner-only), the counts."""
    as_of = D("2025-11-20")
    roster = (household("H1", "B", D("2025-05-01"), members=2) + household("H2", "A", D("2024-12-10"))
              + household("H3", "A", D("2025-06-01")) + household("H4", "X", D("2025-01-01")))
    con = connect(":memory:")
    stage(con, "roster", roster, as_of)
    result = review_night(con, load_policy(), as_of, tmp_path / "out", {"status": "ok"})
    assert {k: result[k] for k in ("status", "overdue", "due_soon", "unscheduled", "by_district")} == {
        "status": "evaluated", "overdue": 1, "due_soon": 1, "unscheduled": 1,
        "by_district": {"东宝区": {"overdue": 1, "due_soon": 1}}}

    path = tmp_path / "out" / "reviews_due.csv"
    assert result["outputs"]["reviews_due"] == str(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = raw.decode("utf-8-sig")
    assert not any(r["id_number"] in text for r in roster)
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0]) == DUE_COLUMNS
    assert [(r["household_id"], r["basis_date"], r["due_date"], r["status"], r["days_overdue_or_left"])
            for r in rows] == [("H1", "2025-05-01", "2025-11-01", "overdue", "19"),
                               ("H2", "2024-12-10", "2025-12-10", "due_soon", "20")]
    assert rows[0]["run_date"] == "2025-11-20" and rows[0]["basis"] == "救助开始日期"
    unscheduled = list(csv.DictReader((tmp_path / "out" / "reviews_unscheduled.csv")
                                      .read_text(encoding="utf-8-sig").splitlines()))
    assert [(r["household_id"], r["reason"]) for r in unscheduled] == [("H4", "分类管理未知：X")]

    line = review_line(result)
    assert line.startswith("overdue 逾期: 1, due soon 即将到期: 1, class or start date unknown 无法确定: 1")
    assert "东宝区 1/1" in line
    summary = {"run_date": "2025-11-20", "sources": {}, "rules": [], "ledger": {}, "stages": {}, "reviews": result}
    assert "## Periodic reviews 定期复核\n\n" + line in format_summary(summary)


def test_review_night_skipped_when_roster_not_usable(tmp_path):
    con = connect(":memory:")
    stage(con, "roster", household("H1", "B", D("2025-05-01")), D("2025-11-01"))
    result = review_night(con, load_policy(), D("2025-11-20"), tmp_path,
                          {"status": "stale", "reason": "delivery 19 days old"})
    assert result["status"] == "skipped" and result["reason"] == "roster: stale (delivery 19 days old)"
    assert not (tmp_path / "reviews_due.csv").exists()
    assert review_line(result) == "not listed tonight 未列出: roster: stale (delivery 19 days old)"


def test_the_csv_is_byte_for_byte_what_pandas_wrote(tmp_path):
    """write_query_csv (DuckDB's CSV writer) against the pandas path it replaced: a DataFrame, every text
    cell neutralised, ``to_csv(index=False, lineterminator="\\r\\n")``, UTF-8 with BOM; on awkward values."""
    import duckdb

    from cases.reviews import write_query_csv
    from crosscheck.safety import neutralise_frame

    con = duckdb.connect()
    con.execute("CREATE SCHEMA ledger")
    con.execute("""CREATE TABLE ledger.t (k INTEGER, name VARCHAR, note VARCHAR, due DATE, n INTEGER)""")
    rows = [(1, "张三", "plain", date(2026, 1, 2), 5), (2, "李,四", 'say "hi"', None, -3),
            (3, "", "line\nbreak", date(2026, 12, 31), 0), (4, None, "=SUM(A1)", date(2027, 2, 1), None),
            (5, "-5", "+1", None, 7), (6, "@x", "\ttab", None, 8), (7, "\rcr", " lead and trail ", None, 9),
            (8, "王\u3000五", "𠀀 rare", None, 10), (9, "'quoted'", "a;b|c", None, 11), (10, "x\r\ny", ",", None, 12)]
    con.executemany("INSERT INTO ledger.t VALUES (?, ?, ?, ?, ?)", rows)
    columns = ["k", "name", "note", "due", "n"]
    folder = tmp_path / "it's here"                  # a quote in the output folder's name
    folder.mkdir()
    path = write_query_csv(con, "t", columns, "k", folder / "t.csv")
    frame = con.execute("SELECT k, name, note, strftime(due, '%Y-%m-%d') AS due, n FROM ledger.t ORDER BY k").df()
    expected = ("\ufeff" + neutralise_frame(frame).to_csv(index=False, lineterminator="\r\n")).encode("utf-8")
    assert path.read_bytes() == expected
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["t.csv"]          # no body or temp file left
    con.execute("DELETE FROM ledger.t")
    assert write_query_csv(con, "t", columns, "k", folder / "t.csv").read_bytes() == "\ufeffk,name,note,due,n\r\n".encode()
