"""Per-district bundles (reports/bundles.py): each folder holds its district's report, workbook and PDF,
and no other district's case anywhere: page, workbook cell or PDF text."""
from __future__ import annotations

import re
import stat
import subprocess

import pytest
from python_calamine import CalamineWorkbook

from crosscheck.warehouse import connect

CASE_ID = re.compile(r"R0\d-\d{6,}")


@pytest.fixture(scope="module")
def bundles(small_night):
    base, _, summary = small_night
    night = summary["run_date"]            # the ledger as it stood that night (later tests add nights)
    with connect(base / "state" / "warehouse.duckdb", read_only=True) as con:
        owner = dict(con.execute("SELECT case_id, district FROM ledger.cases WHERE case_id IN ("
                                 "SELECT case_id FROM ledger.case_history WHERE run_date <= ?)", [night]).fetchall())
    return base / "out" / "districts", owner, summary


def _texts(folder):
    """Every case id each file of a bundle mentions, by file."""
    found = {}
    for path in folder.rglob("*"):
        if path.suffix == ".html":
            text = path.read_text(encoding="utf-8")
        elif path.suffix == ".xlsx":
            book = CalamineWorkbook.from_path(str(path))
            text = " ".join(str(v) for name in book.sheet_names
                            for row in book.get_sheet_by_name(name).to_python() for v in row)
        elif path.suffix == ".pdf":
            text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                                  check=True).stdout
        else:
            continue
        found[path] = set(CASE_ID.findall(text))
    return found


def test_one_bundle_per_district_with_report_workbook_and_pdf(bundles):
    root, owner, summary = bundles
    districts = sorted(set(owner.values()))
    assert sorted(p.name for p in root.iterdir()) == districts and summary["bundles"] == len(districts)
    for district in districts:
        folder = root / district
        assert (folder / "report.html").exists() and (folder / "report").is_dir()
        assert len(list(folder.glob("*.xlsx"))) == 1
        assert len(list(folder.glob("*.pdf"))) == 1, "Chromium prints the PDF (crosscheck/systemdeps.py)"
        for path in [folder, *folder.rglob("*")]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_bundle_holds_no_other_districts_case(bundles):
    root, owner, _ = bundles
    for folder in root.iterdir():
        mentioned = _texts(folder)
        everything = set().union(*mentioned.values())
        assert everything, folder                           # the check reads something
        strangers = {c for c in everything if owner.get(c) not in (folder.name, None)}
        assert not strangers, (folder.name, sorted(strangers)[:5])
        mine = {c for c, d in owner.items() if d == folder.name}
        assert mine <= everything                           # and every own case is there


def test_workbooks_from_the_helper_process_and_without_it(tmp_path, monkeypatch):
    """The night writes the district workbooks in a helper process (reports/workbook.py); should the helper
    fail to run, they are written in the night's own process, with the same content either way."""
    import sys

    import pandas as pd

    from reports import workbook

    cases = pd.DataFrame([{c: f"{c}-{i}" for _, c, _ in workbook.COLUMNS if c} | {"district": d}
                          for i, d in enumerate(["东宝区", "京山市", "东宝区"])])
    reviews = pd.DataFrame([{c: f"{c}-{i}" for _, c, _ in workbook.REVIEW_COLUMNS if c and c != "status_text"}
                            | {"district": "京山市", "status": "overdue", "basis_date": pd.Timestamp("2020-01-02")}
                            for i in range(3)])

    def cells(path):
        book = CalamineWorkbook.from_path(str(path))
        return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}

    helped = workbook.start_district_workbooks(cases, tmp_path / "a", "2026-11-20", reviews).result()
    here = workbook.write_district_workbooks(cases, tmp_path / "b", "2026-11-20", reviews)
    monkeypatch.setattr(sys, "executable", "/bin/false")          # the helper cannot start
    fallback = workbook.start_district_workbooks(cases, tmp_path / "c", "2026-11-20", reviews).result()
    assert set(helped) == set(here) == set(fallback) == {"东宝区", "京山市"}
    for district in here:
        assert helped[district] == tmp_path / "a" / "workbooks" / here[district].name
        assert cells(helped[district]) == cells(here[district]) == cells(fallback[district])
        assert stat.S_IMODE(helped[district].stat().st_mode) == 0o600
    assert cells(here["京山市"])["定期复核"][1][6] == "2020-01-02"
