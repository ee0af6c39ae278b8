"""Report stage: the run summary (printed and saved) and the night's HTML report (reports/site.py).

Everything personal shown here is masked (IDs) and escaped (HTML autoescape).
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from crosscheck.safety import write_private_text
from crosscheck.warehouse import table_exists
from reports.site import Site, write_site


def source_rows(con: duckdb.DuckDBPyConnection, run_date: date, sources: dict) -> dict:
    """Add tonight's row accounting per source from audit.load_files."""
    if not table_exists(con, "audit", "load_files"):
        return sources
    rows = con.execute(
        "SELECT source, count(*) AS files, sum(rows_read), sum(rows_staged), sum(rows_quarantined)"
        " FROM audit.load_files WHERE run_date = ? GROUP BY source", [run_date]).fetchall()
    merged = {name: dict(info) for name, info in sources.items()}
    for source, files, read, staged, quarantined in rows:
        merged.setdefault(source, {}).update(
            files=int(files), rows_read=int(read or 0), rows_staged=int(staged or 0),
            rows_quarantined=int(quarantined or 0))
    return merged


def write_night_report(con: duckdb.DuckDBPyConnection, run_date: date, out: Path, summary: dict,
                       cases: pd.DataFrame, *, site: Site | None = None) -> dict[str, Path]:
    """The auditors' report (reports/site.py): <out>/report.html, the overview, and the district, township
    and case pages under <out>/report/. Everything it shows is read from the warehouse (or from the night's
    ``site``, which read it once for every report)."""
    return write_site(con, run_date, out, site=site)


def format_summary(summary: dict) -> str:
    """The run summary as markdown: rows per source, cases per rule, time per stage."""
    lines = [f"# crosscheck night {summary['run_date']}", "", "## Sources", "",
             "| source | delivery | status | rows read | staged | quarantined | note |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for name, info in summary["sources"].items():
        lines.append(f"| {name} | {info.get('delivery_date') or '—'} | {info.get('status')} | "
                     f"{info.get('rows_read', 0):,} | {info.get('rows_staged', 0):,} | "
                     f"{info.get('rows_quarantined', 0):,} | {info.get('reason') or ''} |")
    problems = summary.get("problems") or []
    lines += ["", "## Problems with tonight's deliveries 问题交付", ""]
    lines += [f"- {p['line']}" for p in problems] or ["none: every delivery arrived whole"]
    lines += ["", "## Rules", "", "| rule | name | status | households flagged | hits | reason skipped |",
              "| --- | --- | --- | ---: | ---: | --- |"]
    for r in summary["rules"]:
        lines.append(f"| {r['rule']} | {r['name']} | {r['status']} | {r['households']:,} | {r['hits']:,} | "
                     f"{r['reason']} |")
    lines += ["", "## Ledger", "", ", ".join(f"{k}: {v}" for k, v in summary["ledger"].items()),
              f"cases exported (new or open): {summary.get('cases_exported', 0)}"]
    lines += ["", "## Periodic reviews 定期复核", "", review_line(summary.get("reviews"))]
    lines += ["", "## Reports 报告", "",
              f"per-district bundles in districts/ (report, workbook, PDF): {summary.get('bundles', 0)}"]
    lines += [f"- {problem}" for problem in summary.get("report_problems") or []]
    cpu = summary.get("stage_cpu_s") or {}
    lines += ["", "## Time per stage (s)", "",
              "CPU: user + system seconds of the night process and the helpers it waited for (the workbook "
              "helper, Chromium's browser; its renderers are mostly not counted, so the report's figure is a lower "
              "bound); near twice the wall time on 2 cores, the stage was bound by the processor.", "",
              "| stage | seconds | CPU seconds |", "| --- | ---: | ---: |"]
    lines += [f"| {stage} | {secs:.2f} | {f'{cpu[stage]:.2f}' if stage in cpu else '—'} |"
              for stage, secs in summary["stages"].items()]
    if summary.get("link_seconds"):
        lines += ["", "Link stage by step (s): " + ", ".join(f"{step} {secs:.2f}"
                                                             for step, secs in summary["link_seconds"].items())]
    return "\n".join(lines) + "\n"


def review_line(reviews: dict | None, max_districts: int = 12) -> str:
    """One line: reviews overdue and due soon (cases/reviews.py), per district when there are few."""
    if not reviews:
        return "not run"
    if reviews["status"] != "evaluated":
        return f"not listed tonight 未列出: {reviews['reason']}"
    line = (f"overdue 逾期: {reviews['overdue']:,}, due soon 即将到期: {reviews['due_soon']:,}, "
            f"class or start date unknown 无法确定: {reviews['unscheduled']:,} "
            "(reviews_due.csv, reviews_unscheduled.csv)")
    districts = reviews.get("by_district") or {}
    if 0 < len(districts) <= max_districts:
        line += " — " + "; ".join(f"{d} {c['overdue']:,}/{c['due_soon']:,}" for d, c in districts.items())
        line += " (overdue/due soon)"
    return line


def write_summary(out: Path, summary: dict) -> dict[str, Path]:
    json_path, md_path = out / "run_summary.json", out / "run_summary.md"
    write_private_text(json_path, json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    write_private_text(md_path, format_summary(summary))
    return {"summary_json": json_path, "summary_md": md_path}
