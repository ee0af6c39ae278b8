"""Printable PDF of each district's case summary (区县 · 核对线索汇总), Chinese text rendered correctly.

The summary is an autoescaped Jinja2 HTML page (``templates/pdf/district_summary.html.j2``) printed to PDF
by the Chromium binary itself, with no Python dependency (the night does not lean on Playwright, which is
only a dev dependency): one Chromium per print worker prints its pages over the DevTools pipe
(reports/chromium.py: the start-up is paid once, not once a page), and ``chromium --headless
--print-to-pdf`` prints a page when that printer cannot start or fails; the PDF is the same. Chromium is run
headless, offline (a Content-Security-Policy of ``default-src 'none'`` in the page and every host name
resolving to nothing), niced, with a throw-away user-data-dir and a time limit per page; its whole process
group is ended on timeout.

Fonts: the page asks for Noto Sans CJK SC (fonts-noto-cjk) and falls back, character by character, to
HanaMinA / HanaMinB (fonts-hanazono) for rare characters outside Noto's coverage (CJK Ext B and beyond:
𠀀 U+20000, 𪛖 U+2A6D6). Skia embeds Noto's CFF outlines as Type 3 fonts and the Hanazono TrueType fonts as
CID fonts; both are real glyph outlines (tests/test_report_pdf.py rasterises the PDF and checks them).

Only masked IDs (CONTRACT.md §5, digits 7–14) reach the page; free-text evidence goes through mask_ids too.
A missing Chromium, a timeout or a failed print never raises into the night: the writer returns None and
appends a message to ``problems`` (and logs it).

The night prints its districts with ``start_district_pdfs`` (reports/bundles.py): the pages are rendered
up front, then printed in the background, ``PRINT_WORKERS`` Chromium processes at a time, each with its own
time limit; one district that fails leaves the others and is reported by name.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader

from crosscheck.idnum import mask
from crosscheck.runtime import background_helper
from crosscheck.safety import mask_ids, publish, write_private_text
from crosscheck.settings import load_policy
from reports.chromium import PipePrinter, PrinterError, PrintTimeout

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates") / "pdf"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
PRINT_TIMEOUT_S = 120
PRINT_WORKERS = 2              # Chromium processes printing at once (each mostly waits; two keep two cores busy)
MAX_TABLE_ROWS = 5000          # a printable summary; beyond this the page says how many more are in the workbook
# headless, offline (every host name resolves to nothing), quiet: for the command-line printer and PipePrinter
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-quic", "--host-resolver-rules=MAP * ~NOTFOUND"]
STATUSES = [("new", "新发现"), ("open", "持续"), ("confirmed", "查实"), ("refuted", "查否"), ("closed", "已关闭")]
ACTIVE = ("new", "open")


class PdfError(RuntimeError):
    """Chromium is missing, timed out or printed no PDF."""


NO_CHROMIUM = "PDF summaries not written: Chromium is not installed (apt-get install chromium)"


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


_ENV: Environment | None = None


def _env() -> Environment:
    """One environment per process: the template is compiled once."""
    global _ENV
    if _ENV is None:
        _ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                           lstrip_blocks=True, auto_reload=False)
    return _ENV


def print_html_to_pdf(html_path: Path, pdf_path: Path, *, timeout: float = PRINT_TIMEOUT_S,
                      env: dict[str, str] | None = None) -> Path:
    """Print a local HTML file to ``pdf_path`` with headless Chromium; raise PdfError when it fails.
    ``env`` replaces the process environment (tests use it to point fontconfig elsewhere)."""
    chromium = find_chromium()
    if chromium is None:
        raise PdfError("Chromium is not installed (apt-get install chromium, or python3 crosscheck/systemdeps.py)")
    profile = tempfile.mkdtemp(prefix="crosscheck-pdf-profile-")
    cmd = [chromium, *CHROMIUM_FLAGS, "--no-pdf-header-footer",
           f"--user-data-dir={profile}", f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]
    try:
        pdf_path.unlink(missing_ok=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env=env, preexec_fn=background_helper)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # Chromium's helpers share the new session's process group
            proc.communicate()
            raise PdfError(f"Chromium did not finish printing {html_path.name} within {timeout:.0f} s") from None
        ok = pdf_path.exists() and pdf_path.stat().st_size > 0 and pdf_path.read_bytes()[:5] == b"%PDF-"
        if proc.returncode != 0 or not ok:
            tail = " | ".join(line for line in (err or "").splitlines()[-3:] if line.strip())
            raise PdfError(f"Chromium printed no PDF (exit {proc.returncode}): {tail}")
        return pdf_path
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _district_context(con: duckdb.DuckDBPyConnection, run_date: date, district: str,
                      max_rows: int = MAX_TABLE_ROWS) -> dict:
    names = {code: spec.name for code, spec in load_policy().rules.items()}
    rows = con.execute(
        "SELECT case_id, township, household_id, rule, member_name, member_id, evidence, priority, deadline, status"
        " FROM ledger.cases WHERE district = ? ORDER BY priority, deadline, rule, township, case_id",
        [district]).fetchall()
    cases = [dict(zip(["case_id", "township", "household_id", "rule", "member_name", "member_id", "evidence",
                       "priority", "deadline", "status"], r)) for r in rows]
    active = [c for c in cases if c["status"] in ACTIVE]
    for c in active:
        c["member_id_masked"] = mask(c.pop("member_id"))
        c["evidence"] = mask_ids(c["evidence"] or "")
        c["overdue"] = c["deadline"] is not None and c["deadline"] < run_date
        c["rule_name"] = names.get(c["rule"], "")
    for c in cases:
        c.pop("member_id", None)          # never let a full ID reach the template

    by_rule: dict[str, Counter] = {}
    by_town: dict[str, Counter] = {}
    for c in cases:
        by_rule.setdefault(c["rule"], Counter())[c["status"]] += 1
        town = by_town.setdefault(c["township"] or "（未填）", Counter())
        town[c["status"]] += 1
        if c["status"] in ACTIVE:
            town["active"] += 1
            town["overdue"] += bool(c.get("overdue"))
    status_counts = Counter(c["status"] for c in cases)
    priority_counts = Counter(c["priority"] for c in active)
    overdue = [c for c in active if c["overdue"]]
    return {
        "district": district, "run_date": run_date.isoformat(), "statuses": STATUSES,
        "total": len(cases), "active_total": len(active),
        "by_rule": [{"rule": r, "name": names.get(r, ""), "counts": by_rule[r], "total": sum(by_rule[r].values())}
                    for r in sorted(by_rule)],
        "by_status": [(code, label, status_counts.get(code, 0)) for code, label in STATUSES],
        "by_town": [{"township": t, "counts": by_town[t]} for t in sorted(by_town)],
        "by_priority": [(p, priority_counts.get(p, 0)) for p in (1, 2, 3)],
        "overdue": overdue, "cases": active[:max_rows], "more": max(0, len(active) - max_rows),
    }


def render_district_html(con: duckdb.DuckDBPyConnection, run_date: date, district: str) -> str:
    return _env().get_template("district_summary.html.j2").render(**_district_context(con, run_date, district))


def _fail(district: str, exc: Exception, problems: list[str] | None) -> None:
    detail = str(exc) if isinstance(exc, PdfError) else f"{type(exc).__name__}: {exc}"
    message = f"PDF {district}: {detail}"
    log.warning(message)
    if problems is not None:
        problems.append(message)


def _print_to(html: str, path: Path, timeout: float, printer: "_Printers | None" = None) -> Path:
    """Print a rendered page to ``path`` (owner-only, put in place atomically) through a private scratch
    folder next to it, removed afterwards: with the thread's PipePrinter when there is one (``printer``),
    else with ``chromium --print-to-pdf``. Raises PdfError (or OSError) when it cannot."""
    work = Path(tempfile.mkdtemp(prefix=".pdf-", dir=path.parent))   # 0700, same file system as ``path``
    try:
        html_path = work / "summary.html"
        write_private_text(html_path, html)
        tmp_pdf = work / "summary.pdf"
        if printer is None or not printer.print_pdf(html_path, tmp_pdf, timeout):
            print_html_to_pdf(html_path, tmp_pdf, timeout=timeout)
        return publish(tmp_pdf, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Printers:
    """One PipePrinter per worker thread of a batch, started on first use. A printer that fails for any reason
    but a timeout is dropped and the page goes to ``chromium --print-to-pdf`` instead (so does every later page
    of the batch, when a printer cannot even be started): the PDF is the same either way."""

    def __init__(self):
        self._local = threading.local()
        self._all: list[PipePrinter] = []
        self._lock = threading.Lock()
        self._unavailable = False

    def print_pdf(self, html_path: Path, pdf_path: Path, timeout: float) -> bool:
        """True when printed; False when the caller should use the command-line printer. Raises PdfError on a
        timeout (the page is not printed again: it would hang there as well)."""
        printer = self._printer()
        if printer is None:
            return False
        try:
            printer.print_pdf(html_path, pdf_path, timeout)
            return True
        except PrintTimeout:
            self._local.printer = None
            raise PdfError(f"Chromium did not finish printing {html_path.name} within {timeout:.0f} s") from None
        except (PrinterError, OSError, ValueError) as exc:
            log.info("DevTools printing failed (%s); printing with chromium --print-to-pdf instead", exc)
            self._local.printer = None
            printer.close(kill=True)
            return False

    def _printer(self) -> PipePrinter | None:
        printer = getattr(self._local, "printer", None)
        if printer is not None or self._unavailable:
            return printer
        chromium = find_chromium()
        if chromium is None:
            return None
        try:
            printer = PipePrinter(chromium, CHROMIUM_FLAGS)
        except PrinterError as exc:
            log.info("%s; printing with chromium --print-to-pdf instead", exc)
            self._unavailable = True
            return None
        with self._lock:
            self._all.append(printer)
        self._local.printer = printer
        return printer

    def close(self) -> None:
        with self._lock:
            printers, self._all = self._all, []
        for printer in printers:
            printer.close()


def write_district_pdf(con: duckdb.DuckDBPyConnection, run_date: date, district: str, path: Path, *,
                       problems: list[str] | None = None, timeout: float = PRINT_TIMEOUT_S) -> Path | None:
    """One district's summary as an A4 PDF at ``path`` (owner-only, put in place atomically). Returns the path,
    or None with a message in ``problems`` (and the log) when it could not be printed; never raises for that."""
    return PdfBatch(con, run_date, {district: Path(path)}, problems=problems, timeout=timeout).wait().get(district)


def pdf_name(district: str, run_date: date) -> str:
    return f"{district}_核对线索汇总_{run_date.isoformat()}.pdf"


class PdfBatch:
    """District summaries printing in the background, at most ``workers`` Chromium processes at a time.

    The pages are rendered from the warehouse when the batch starts, in the caller's thread (a DuckDB
    connection is not shared between threads); only the printing runs in worker threads, each with its own
    time limit. ``wait()`` returns district → path for the PDFs written and adds a message to ``problems``
    for each one that was not, in district order, whatever order they finished in."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_date: date, targets: dict[str, Path], *,
                 problems: list[str] | None = None, timeout: float = PRINT_TIMEOUT_S,
                 workers: int = PRINT_WORKERS, timings: dict[str, float] | None = None):
        self.problems, self.timings = problems, timings
        self._jobs: dict[str, object] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pdf")
        self._printers = _Printers()
        for district, path in targets.items():
            try:
                html = render_district_html(con, run_date, district)
            except Exception as exc:  # noqa: BLE001 — one district's page must not stop the others
                self._jobs[district] = exc
                continue
            self._jobs[district] = self._pool.submit(self._timed, district, html, Path(path), timeout)

    def _timed(self, district: str, html: str, path: Path, timeout: float) -> Path:
        started = time.perf_counter()
        try:
            return _print_to(html, path, timeout, self._printers)
        finally:
            if self.timings is not None:
                self.timings[district] = time.perf_counter() - started

    def wait(self) -> dict[str, Path]:
        written: dict[str, Path] = {}
        try:
            for district, job in self._jobs.items():
                try:
                    if isinstance(job, Exception):
                        raise job
                    written[district] = job.result()
                except Exception as exc:  # noqa: BLE001 — a report that cannot be printed must not stop the night
                    _fail(district, exc, self.problems)
        finally:
            self._pool.shutdown(wait=True)
            self._printers.close()
        return written


def start_district_pdfs(con: duckdb.DuckDBPyConnection, run_date: date, targets: dict[str, Path], *,
                        problems: list[str] | None = None, timeout: float = PRINT_TIMEOUT_S,
                        workers: int = PRINT_WORKERS, timings: dict[str, float] | None = None) -> PdfBatch | None:
    """Start printing ``targets`` (district → PDF path) in the background; None, with NO_CHROMIUM in
    ``problems`` (and the log), when there is no Chromium to print with."""
    if find_chromium() is None:
        log.warning(NO_CHROMIUM)
        if problems is not None:
            problems.append(NO_CHROMIUM)
        return None
    return PdfBatch(con, run_date, targets, problems=problems, timeout=timeout, workers=workers, timings=timings)


def write_district_pdfs(con: duckdb.DuckDBPyConnection, run_date: date, targets: dict[str, Path], *,
                        problems: list[str] | None = None, timeout: float = PRINT_TIMEOUT_S,
                        workers: int = PRINT_WORKERS, timings: dict[str, float] | None = None) -> dict[str, Path]:
    """Print every district of ``targets`` (district → PDF path) and wait; returns district → path for those
    written. Districts whose PDF could not be printed are left out, with the reason in ``problems``."""
    batch = start_district_pdfs(con, run_date, targets, problems=problems, timeout=timeout, workers=workers,
                                timings=timings)
    return batch.wait() if batch is not None else {}
