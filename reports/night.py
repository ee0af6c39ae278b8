"""Report stage: the run summary (printed and saved) and the night's HTML overview.

Everything personal shown here is masked (IDs) and escaped (HTML autoescape).
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from crosscheck.safety import write_private_text
from crosscheck.warehouse import table_exists

TEMPLATES = Path(__file__).with_name("templates")


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


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))


def write_night_report(con: duckdb.DuckDBPyConnection, run_date: date, out: Path, summary: dict,
                       cases: pd.DataFrame) -> dict[str, Path]:
    by_rule_district = (cases.pivot_table(index="rule", columns="district", values="case_id", aggfunc="count",
                                          fill_value=0) if len(cases) else pd.DataFrame())
    html = _env().get_template("night.html.j2").render(
        run_date=run_date.isoformat(), summary=summary,
        rules=summary["rules"], sources=summary["sources"],
        districts=list(by_rule_district.columns), by_rule_district=by_rule_district,
        cases=cases.head(500).to_dict("records"), total_cases=len(cases))
    path = out / "report.html"
    write_private_text(path, html)
    return {"report": path}


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
              f"cases exported (new or open): {summary.get('cases_exported', 0)}",
              "", "## Time per stage (s)", "", "| stage | seconds |", "| --- | ---: |"]
    lines += [f"| {stage} | {secs:.2f} |" for stage, secs in summary["stages"].items()]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, summary: dict) -> dict[str, Path]:
    json_path, md_path = out / "run_summary.json", out / "run_summary.md"
    write_private_text(json_path, json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    write_private_text(md_path, format_summary(summary))
    return {"summary_json": json_path, "summary_md": md_path}
