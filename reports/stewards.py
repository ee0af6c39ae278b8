"""What the data stewards read every morning: every broken delivery in plain words, and the dashboard.

``delivery_problems`` lists, for one night, everything that went wrong with what arrived: sources that
were missing, stale or rejected; files refused at load or read with a note; rows set aside, grouped by
file and reason with their row numbers. The run summary and the dashboard both show this list.

``write_dashboard`` renders ``dashboard.html``: per source its delivery (as-of) date, age, rows, rows
quarantined by reason, checks passed, its trend over recent nights, and the rules skipped and why. The
page is one self-contained file (inline CSS and SVG, no script, nothing fetched), so it opens offline.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from crosscheck.safety import mask_ids, write_private_text
from crosscheck.settings import SourcesConfig, load_sources
from crosscheck.warehouse import fetch_dicts, table_exists

TEMPLATES = Path(__file__).with_name("templates")
ROWS_SHOWN = 8          # row numbers listed per (file, reason) before "and n more"
TREND_NIGHTS = 14
REUSED_NOTE = re.compile(r"(; )?字节未变，沿用.*?not read again\)")


def reason_kind(reason: str) -> str:
    """A quarantine reason without its particulars (the value, the row it repeats), for grouping rows."""
    text = reason or ""
    text = re.sub(r"与\S+ 第 \d+ 行完全重复", "与同一交付中的另一行完全重复", text)
    text = re.sub(r"(的值|日期|数值)「[^」]*」", r"\1", text)
    text = re.sub(r"^第 \d+ 行", "该行", text)
    return text.split(" (")[0].strip() or text


def delivery_problems(con: duckdb.DuckDBPyConnection, run_date: date) -> list[dict]:
    """Every problem with tonight's deliveries: {source, level, file, rows, count, reason, example}.

    level is ``source`` (missing / stale / rejected), ``file`` (refused or read with a note) or ``rows``
    (rows quarantined, or kept but listed: ``rows`` lists their row numbers, ``count`` how many)."""
    if not table_exists(con, "audit", "source_status"):
        return []
    out: list[dict] = []
    for r in fetch_dicts(con, "SELECT source, status, reason FROM audit.source_status WHERE run_date = ? AND status <> 'ok' "
                         "ORDER BY source", [run_date]):
        out.append({"source": r["source"], "level": "source", "file": None, "rows": [], "count": None,
                    "status": r["status"], "reason": mask_ids(r["reason"] or r["status"])})
    for r in fetch_dicts(con, "SELECT source, table_name, file_name, status, message FROM audit.load_files "
                         "WHERE run_date = ? AND (status <> 'loaded' OR message IS NOT NULL) "
                         "ORDER BY source, table_name, file_name", [run_date]):
        reason = r["message"] or ""
        prefix = f"{r['source']} {r['file_name']}: "
        reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        reason = REUSED_NOTE.sub("", reason).strip("; ")        # a reused load is news, not a problem
        if not reason and r["status"] == "loaded":
            continue
        reason = reason or r["status"]
        out.append({"source": r["source"], "level": "file", "file": r["file_name"], "rows": [], "count": None,
                    "status": r["status"], "reason": mask_ids(reason)})
    groups: dict[tuple, dict] = {}
    _group_rows(groups, "quarantined", fetch_dicts(
        con, "SELECT source, file_name, row_no, reason FROM audit.quarantine WHERE run_date = ? AND row_no IS NOT NULL "
        "ORDER BY source, file_name, row_no", [run_date]))
    if table_exists(con, "audit", "row_notes"):
        _group_rows(groups, "kept", fetch_dicts(
            con, "SELECT source, file_name, row_no, reason FROM audit.row_notes WHERE run_date = ? "
            "ORDER BY source, file_name, row_no", [run_date]))
    out += sorted(groups.values(), key=lambda g: (g["source"], g["file"], -g["count"]))
    return out


def _group_rows(groups: dict[tuple, dict], status: str, rows: list[dict]) -> None:
    """Rows with the same source, file and kind of reason become one problem listing the first row numbers."""
    for r in rows:
        kind = reason_kind(r["reason"])
        g = groups.setdefault((r["source"], r["file_name"], kind, status), {
            "source": r["source"], "level": "rows", "file": r["file_name"], "rows": [], "count": 0,
            "status": status, "reason": mask_ids(kind), "example": mask_ids(r["reason"])})
        g["count"] += 1
        if len(g["rows"]) < ROWS_SHOWN:
            g["rows"].append(int(r["row_no"]))


def problem_line(p: dict) -> str:
    """One problem as a sentence: source, file, rows, reason."""
    where = p["source"] + (f" · {p['file']}" if p["file"] else "")
    if p["level"] == "rows":
        shown = "、".join(str(n) for n in p["rows"])
        more = f" 等 {p['count']:,} 行 ({p['count']:,} rows)" if p["count"] > len(p["rows"]) else \
            f" ({p['count']:,} row{'s' if p['count'] > 1 else ''})"
        return f"{where} · 第 {shown} 行{more}: {p['reason']} — 例 (e.g.): {p['example']}"
    return f"{where}: {p['reason']}"


def source_board(con: duckdb.DuckDBPyConnection, run_date: date, cfg: SourcesConfig | None = None) -> list[dict]:
    """One entry per configured source for the dashboard."""
    cfg = cfg or load_sources()
    status = {r["source"]: r for r in fetch_dicts(con, "SELECT * FROM audit.source_status WHERE run_date = ?", [run_date])}
    files = fetch_dicts(con, "SELECT source, count(*) AS files, sum(rows_read) AS rows_read, sum(rows_staged) AS rows_staged, "
                        "sum(rows_quarantined) AS rows_quarantined FROM audit.load_files WHERE run_date = ? "
                        "GROUP BY source", [run_date])
    files = {r["source"]: r for r in files}
    checks = fetch_dicts(con, "SELECT source, table_name, check_name, passed, critical, message FROM audit.check_results "
                         "WHERE run_date = ? ORDER BY source, critical DESC, passed, table_name, check_name", [run_date])
    reasons: dict[str, dict[str, int]] = {}
    for r in fetch_dicts(con, "SELECT source, reason, count(*) AS n FROM audit.quarantine WHERE run_date = ? "
                         "GROUP BY ALL", [run_date]):
        kinds = reasons.setdefault(r["source"], {})
        kind = mask_ids(reason_kind(r["reason"]))
        kinds[kind] = kinds.get(kind, 0) + int(r["n"])
    trend = _trend(con, run_date)
    board = []
    for name, spec in cfg.sources.items():
        st, fl = status.get(name, {}), files.get(name, {})
        mine = [c for c in checks if c["source"] == name]
        board.append({
            "source": name, "title": spec.title, "department": spec.department,
            "status": st.get("status", "not run"), "reason": mask_ids(st.get("reason") or ""),
            "delivery_date": st.get("delivery_date"), "age_days": st.get("age_days"),
            "max_age_days": spec.max_age_days,
            "files": int(fl.get("files") or 0), "rows_read": int(fl.get("rows_read") or 0),
            "rows_staged": int(fl.get("rows_staged") or 0), "rows_quarantined": int(fl.get("rows_quarantined") or 0),
            "reasons": sorted(reasons.get(name, {}).items(), key=lambda kv: -kv[1]),
            "checks_passed": sum(1 for c in mine if c["passed"]), "checks_total": len(mine),
            "failed_checks": [{**c, "message": mask_ids(c["message"] or "")} for c in mine if not c["passed"]],
            "trend": trend.get(name, []), "sparkline": sparkline(trend.get(name, [])),
        })
    return board


def _trend(con, run_date: date) -> dict[str, list[dict]]:
    since = run_date - timedelta(days=TREND_NIGHTS * 3)
    rows = fetch_dicts(con, """
        SELECT s.source, s.run_date, s.status, s.delivery_date,
               coalesce(sum(f.rows_staged), 0) AS rows_staged, coalesce(sum(f.rows_quarantined), 0) AS rows_quarantined
        FROM audit.source_status s
        LEFT JOIN audit.load_files f ON f.run_date = s.run_date AND f.source = s.source
        WHERE s.run_date <= ? AND s.run_date > ?
        GROUP BY ALL ORDER BY s.source, s.run_date""", [run_date, since])
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["source"], []).append(r)
    return {k: v[-TREND_NIGHTS:] for k, v in out.items()}


STATUS_COLOURS = {"ok": "#2e7d32", "stale": "#ef6c00", "rejected": "#c62828", "missing": "#6d4c41"}


def sparkline(points: list[dict], width: int = 160, height: int = 36) -> str:
    """Rows staged per night as an inline SVG line, one dot per night coloured by that night's status."""
    if not points:
        return ""
    top = max(p["rows_staged"] for p in points) or 1
    step = width / max(len(points) - 1, 1)
    xy = [(round(i * step if len(points) > 1 else width / 2, 1),
           round(height - 4 - (height - 8) * p["rows_staged"] / top, 1)) for i, p in enumerate(points)]
    line = " ".join(f"{x},{y}" for x, y in xy)
    dots = "".join(
        f'<circle cx="{x}" cy="{y}" r="3" fill="{STATUS_COLOURS.get(p["status"], "#999")}">'
        f'<title>{p["run_date"]}: {p["status"]}, {p["rows_staged"]:,} 行入库, {p["rows_quarantined"]:,} 行隔离</title></circle>'
        for (x, y), p in zip(xy, points))
    return (f'<svg class="spark" width="{width + 8}" height="{height}" viewBox="-4 0 {width + 8} {height}" '
            f'role="img" aria-label="近 {len(points)} 晚入库行数"><polyline points="{line}" fill="none" '
            f'stroke="#1565c0" stroke-width="1.5"/>{dots}</svg>')


def skipped_rules(con: duckdb.DuckDBPyConnection, run_date: date) -> list[dict]:
    if not table_exists(con, "flags", "rule_runs"):
        return []
    return [{**r, "reason": mask_ids(r["reason"] or "")} for r in fetch_dicts(
        con, "SELECT rule, name, status, reason FROM flags.rule_runs WHERE run_date = ? AND status <> 'evaluated' "
             "ORDER BY rule", [run_date])]


def write_dashboard(con: duckdb.DuckDBPyConnection, run_date: date, out: Path, *,
                    data_docs: str | None = "data_docs/index.html") -> Path:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    problems = delivery_problems(con, run_date)
    html = env.get_template("dashboard.html.j2").render(
        run_date=run_date.isoformat(), board=source_board(con, run_date), skipped=skipped_rules(con, run_date),
        problems=problems, problem_line=problem_line, data_docs=data_docs, colours=STATUS_COLOURS)
    path = out / "dashboard.html"
    write_private_text(path, html)
    return path
