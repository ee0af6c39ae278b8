"""The auditors' report (reports/site.py): files, masking, escaping, one district only, and the pages opened
the way an auditor opens them: headless Chromium, file://, network off. Screenshots go to the session's
temporary folder, or to $CROSSCHECK_SCREENSHOTS when set."""
from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from crosscheck.warehouse import connect
from reports.site import mask_text, write_site
from tests.test_stewards_browser import open_offline

NIGHT = date(2026, 11, 20)
FULL_ID = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CROSSCHECK_SCREENSHOTS") or tmp_path_factory.mktemp("report-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def ledger(small_night) -> list[tuple]:
    base, _, _ = small_night
    # the ledger as it stood after NIGHT: other tests run later nights on the same state folder
    with connect(base / "state" / "warehouse.duckdb", read_only=True) as con:
        return con.execute(
            "SELECT c.case_id, c.household_id, c.rule, h.status, c.district FROM ledger.cases c JOIN ("
            " SELECT case_id, arg_max(to_status, recorded_at) AS status FROM ledger.case_history"
            " WHERE run_date <= ? GROUP BY case_id) h USING (case_id)", [NIGHT]).fetchall()


def site_files(out: Path) -> list[Path]:
    return [out / "report.html", *sorted(p for p in (out / "report").rglob("*") if p.is_file())]


def test_site_written_masked_and_private(small_night, ledger):
    base, _, summary = small_night
    out = base / "out"
    assert summary["outputs"]["report"] == str(out / "report.html")
    files = site_files(out)
    cases = {p.stem for p in (out / "report" / "case").glob("*.html")}
    assert cases == {c[0] for c in ledger} and len(cases) > 20
    assert {p.stem for p in (out / "report" / "district").glob("*.html")} == {c[4] for c in ledger}
    assert len(list((out / "report" / "township").glob("*.html"))) > 5
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not FULL_ID.search(text), f"{path.name}: {FULL_ID.search(text).group()}"
        assert "http://" not in text and "https://" not in text and 'src="' not in text    # nothing fetched
        assert path.stat().st_mode & 0o077 == 0
    assert re.search(r"\d{6}\*{8}\d{3}[0-9X]", (out / "report" / "case" / f"{ledger[0][0]}.html").read_text())
    assert (out / "report").stat().st_mode & 0o077 == 0


def test_one_district_holds_nothing_of_another(small_night, tmp_path):
    base, _, _ = small_night
    out = tmp_path / "bundle"
    with connect(base / "state" / "warehouse.duckdb", read_only=True) as con:
        # the site shows the ledger as it is now (other tests may have run a later night on this state)
        ledger = con.execute("SELECT case_id, household_id, rule, status, district FROM ledger.cases").fetchall()
        counts = Counter(c[4] for c in ledger)
        district = counts.most_common(1)[0][0]
        write_site(con, NIGHT, out, district=district)
    text = "\n".join(p.read_text(encoding="utf-8") for p in site_files(out))
    others = [c for c in ledger if c[4] != district]
    assert others
    assert [c[0] for c in others if c[0] in text] == []
    # a household of another district may only be named inside an R08 evidence line (the same person
    # listed twice); never as a case, a page or a row
    assert [c[0] for c in others if c[1] in text and c[2] != "R08"] == []
    assert {p.stem for p in (out / "report" / "case").glob("*.html")} == {c[0] for c in ledger if c[4] == district}
    assert {p.stem for p in (out / "report" / "district").glob("*.html")} == {district}
    for other in set(counts) - {district}:
        assert f">{other}<" not in text and f"data-group=\"{other}\"" not in text    # tables, charts, fairness


def test_free_text_masking():
    text = "成员 420802198001010011 与 ID42080219800101001X，涉及家庭 420881000001178、420881000001667"
    assert mask_text(text) == ("成员 420802********0011 与 ID420802********001X，"
                               "涉及家庭 420881000001178、420881000001667")
    assert mask_text(None) == ""


def test_names_and_evidence_escaped(small_night, ledger, tmp_path):
    base, _, _ = small_night
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(base / "state" / "warehouse.duckdb", warehouse)
    case_id, household = ledger[0][0], ledger[0][1]
    with connect(warehouse) as con:
        con.execute("UPDATE ledger.cases SET member_name = ?, evidence = ? WHERE case_id = ?", [EVIL, EVIL, case_id])
        con.execute("UPDATE linked.household_person SET person_name = ? WHERE household_id = ?", [EVIL, household])
        con.execute("UPDATE flags.hits SET evidence = ?, record_key = ? WHERE rule || '-' || household_id = ?",
                    [EVIL, EVIL, case_id])
        write_site(con, NIGHT, tmp_path / "out")
    page = (tmp_path / "out" / "report" / "case" / f"{case_id}.html").read_text(encoding="utf-8")
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4          # name, evidence, member, record
    for path in site_files(tmp_path / "out"):
        assert EVIL not in path.read_text(encoding="utf-8")


def visible(page, selector: str) -> list[str]:
    return page.locator(f"{selector} tbody tr:not([hidden])").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-case'))")


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 5000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_in_the_browser(small_night, ledger, browser, shots):
    base, _, _ = small_night
    page, context, external = open_offline(browser, base / "out" / "report.html")
    try:
        # overview: counts per status and rule, the charts
        assert page.locator("#tiles [data-key=total] b").inner_text() == str(len(ledger))
        status = Counter(c[3] for c in ledger)
        for s in ("new", "open", "confirmed", "refuted", "closed"):
            assert page.locator(f"#tiles [data-key={s}] b").inner_text() == f"{status.get(s, 0):,}"
        rules = Counter(c[2] for c in ledger)
        rows = page.locator("#by-rule tbody tr")
        assert rows.count() == len(rules)
        for rule, n in rules.items():
            row = page.locator("#by-rule tbody tr", has_text=rule)
            assert row.locator("td").last.inner_text() == f"{n:,}"
        for chart in ("rule", "district", "priority", "trend"):
            assert page.locator(f"#chart-{chart} svg rect.bar").count() >= 1
        assert page.locator("#fairness table.fairness").count() == 5
        assert "仅用于监测" in page.locator("#fairness").inner_text()
        page.screenshot(path=str(shots / "report_overview.png"), full_page=True)

        # a district page lists that district's cases, and only those
        district = Counter(c[4] for c in ledger).most_common(1)[0][0]
        page.locator("#by-district a", has_text=district).click()
        page.wait_for_load_state("load")
        assert "/report/district/" in page.url
        mine = {c[0] for c in ledger if c[4] == district}
        assert set(visible(page, "#cases")) == mine
        assert set(page.locator("#cases tbody tr").evaluate_all(
            "rows => rows.map(r => r.getAttribute('data-district'))")) == {district}

        # filter by rule: rows shrink to that rule's cases
        counts = Counter(c[2] for c in ledger if c[4] == district)
        rule = min(counts, key=counts.get)
        page.select_option("#cases-filters select[data-key=rule]", rule)
        shown = visible(page, "#cases")
        assert len(shown) == counts[rule] < len(mine)
        assert all(case.startswith(rule + "-") for case in shown)
        assert page.locator("#cases-filters .count").inner_text() == f"{counts[rule]} / {len(mine)}"
        page.select_option("#cases-filters select[data-key=rule]", "")
        page.fill("#cases-filters input[type=search]", min(mine))
        assert visible(page, "#cases") == [min(mine)]
        page.fill("#cases-filters input[type=search]", "")
        assert len(visible(page, "#cases")) == len(mine)

        # sort by the case id column, both ways
        header = page.locator("#cases thead th").first
        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        assert visible(page, "#cases") == sorted(mine)
        header.click()
        assert visible(page, "#cases") == sorted(mine, reverse=True)
        page.screenshot(path=str(shots / "report_district.png"), full_page=True)

        # a case page: members, evidence, history
        first = visible(page, "#cases")[0]
        page.locator(f"#cases tr[data-case='{first}'] a").click()
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/report/case/{first}.html")
        assert page.locator("#members tbody tr").count() >= 1
        heads = page.locator("#evidence thead").inner_text()
        for label in ("来源", "数据截至", "关联方式", "关联得分"):
            assert label in heads
        evidence = page.locator("#evidence tbody tr")
        assert evidence.count() >= 1
        cells = evidence.first.locator("td").all_inner_texts()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", cells[2]) and cells[6] in ("id_exact", "id_repaired", "fuzzy")
        assert re.fullmatch(r"[01]\.\d{2}", cells[7])
        assert page.locator("#history tbody tr").count() >= 1
        assert "首次发现" in page.locator("#history").inner_text()
        assert re.search(r"\d{6}\*{8}\d{3}[0-9X]", page.locator("#members").inner_text())
        page.screenshot(path=str(shots / "report_case.png"), full_page=True)
        assert external == []
    finally:
        context.close()
    for name in ("report_overview.png", "report_district.png", "report_case.png"):
        assert_png(shots / name)
