"""Per-district bundles: what can be handed to one district office and to no one else.

``<out>/districts/<区县>/`` holds that district's HTML report (``report.html`` and ``report/``, written by
reports/site.py limited to the district), its case workbook with the 定期复核 sheet (reports/workbook.py)
and the printable PDF summary (reports/pdf.py): only that district's cases, charts, trend and fairness
tables. The centre-wide report and workbooks stay in ``<out>`` for the verification centre itself.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from crosscheck.safety import make_private_dir
from reports.pdf import NO_CHROMIUM, find_chromium, pdf_name, write_district_pdf
from reports.site import safe_name, write_site
from reports.workbook import write_district_workbook


def bundle_districts(con: duckdb.DuckDBPyConnection, cases: pd.DataFrame, reviews: pd.DataFrame | None) -> list[str]:
    """Every district with a case in the ledger, an exported case or a review due tonight."""
    found = set(cases["district"].dropna())
    found |= {d for (d,) in con.execute("SELECT DISTINCT district FROM ledger.cases WHERE district IS NOT NULL")
              .fetchall()}
    if reviews is not None:
        found |= set(reviews["district"].dropna())
    return sorted(found)


def write_bundles(con: duckdb.DuckDBPyConnection, run_date: date, out: Path, cases: pd.DataFrame,
                  reviews: pd.DataFrame | None, problems: list[str] | None = None) -> dict[str, Path]:
    """One folder per district; returns district → folder. A PDF that cannot be printed (no Chromium, a
    timeout) leaves the rest of the bundle in place and says so in ``problems``."""
    root = make_private_dir(out / "districts")
    can_print = find_chromium() is not None
    if not can_print and problems is not None:
        problems.append(NO_CHROMIUM)
    folders: dict[str, Path] = {}
    for district in bundle_districts(con, cases, reviews):
        folder = make_private_dir(root / safe_name(district))
        write_site(con, run_date, folder, district=district)
        write_district_workbook(cases, reviews, district, folder, run_date.isoformat())
        if can_print:
            write_district_pdf(con, run_date, district, folder / pdf_name(district, run_date), problems=problems)
        folders[district] = folder
    return folders
