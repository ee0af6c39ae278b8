"""Per-district bundles: what can be handed to one district office and to no one else.

``<out>/districts/<区县>/`` holds that district's HTML report (``report.html`` and ``report/``, written by
reports/site.py limited to the district), its case workbook with the 定期复核 sheet (reports/workbook.py)
and the printable PDF summary (reports/pdf.py): only that district's cases, charts, trend and fairness
tables. The centre-wide report and workbooks stay in ``<out>`` for the verification centre itself.

The PDFs are printed in the background (reports/pdf.py, two Chromium processes at a time) from
``start_bundles`` on, while the night writes everything else; ``finish`` then reuses the night's ``Site``
(reports/site.py: a page rendered for the centre's report is not rendered again for the district's) and
copies the centre's workbook of the district (the same cases and reviews) instead of writing it again.
"""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from crosscheck.safety import make_private_dir, publish
from reports.pdf import pdf_name, start_district_pdfs
from reports.site import Site, safe_name
from reports.workbook import workbook_name, write_district_workbook


def bundle_districts(con: duckdb.DuckDBPyConnection, cases: pd.DataFrame, reviews: pd.DataFrame | None) -> list[str]:
    """Every district with a case in the ledger, an exported case or a review due tonight."""
    found = set(cases["district"].dropna())
    found |= {d for (d,) in con.execute("SELECT DISTINCT district FROM ledger.cases WHERE district IS NOT NULL")
              .fetchall()}
    if reviews is not None:
        found |= set(reviews["district"].dropna())
    return sorted(found)


class Bundles:
    """The night's bundles, begun by ``start_bundles``: the folders are made and the PDFs start printing in
    the background at once; ``finish`` writes each district's report and workbook and waits for its PDF."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_date: date, out: Path, cases: pd.DataFrame,
                 reviews: pd.DataFrame | None, problems: list[str] | None = None):
        self.con, self.run_date, self.cases, self.reviews = con, run_date, cases, reviews
        root = make_private_dir(out / "districts")
        self.folders = {d: make_private_dir(root / safe_name(d)) for d in bundle_districts(con, cases, reviews)}
        self._pdfs = start_district_pdfs(con, run_date, {d: folder / pdf_name(d, run_date)
                                                         for d, folder in self.folders.items()}, problems=problems)

    def finish(self, *, site: Site | None = None, workbooks: dict[str, Path] | None = None) -> dict[str, Path]:
        """Write the reports (reusing the night's ``site``) and workbooks (copying the centre's ``workbooks``,
        district → file, where there is one: the same district, cases and reviews), then wait for the PDFs.
        Returns district → folder."""
        try:
            site = site or Site(self.con, self.run_date)
            run_date = self.run_date.isoformat()
            for district, folder in self.folders.items():
                site.write(folder, district)
                if workbooks and district in workbooks:
                    _copy_private(workbooks[district], folder / workbook_name(district, run_date))
                else:
                    write_district_workbook(self.cases, self.reviews, district, folder, run_date)
        finally:
            self.close()
        return self.folders

    def close(self) -> None:
        """Wait for the PDFs still printing (their problems go to ``problems``); idempotent."""
        pdfs, self._pdfs = self._pdfs, None
        if pdfs is not None:
            pdfs.wait()


def start_bundles(con: duckdb.DuckDBPyConnection, run_date: date, out: Path, cases: pd.DataFrame,
                  reviews: pd.DataFrame | None, problems: list[str] | None = None) -> Bundles:
    """Make the bundle folders and start printing the PDFs; call ``finish`` (or at least ``close``) later."""
    return Bundles(con, run_date, out, cases, reviews, problems)


def write_bundles(con: duckdb.DuckDBPyConnection, run_date: date, out: Path, cases: pd.DataFrame,
                  reviews: pd.DataFrame | None, problems: list[str] | None = None, *,
                  site: Site | None = None, workbooks: dict[str, Path] | None = None) -> dict[str, Path]:
    """One folder per district; returns district → folder. A PDF that cannot be printed (no Chromium, a
    timeout) leaves the rest of the bundle in place and says so in ``problems``."""
    return start_bundles(con, run_date, out, cases, reviews, problems).finish(site=site, workbooks=workbooks)


def _copy_private(source: Path, target: Path) -> Path:
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    return publish(tmp, target)
