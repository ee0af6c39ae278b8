"""The night's report for auditors: an overview, a page per district and township, a page per case.

``write_site`` writes ``<out>/report.html`` (the overview) and under ``<out>/report/`` the pages
``district/<区县>.html``, ``township/<区县>-<乡镇>.html`` and ``case/<case_id>.html``. Every page is one
self-contained file: CSS, the sorting / filtering script and the charts (SVG drawn here) are inline and
nothing is fetched, so the pages open from file:// with the network off. Links between pages are relative.

Everything comes from the warehouse: ``ledger.cases`` (all statuses), ``ledger.case_history``,
``ledger.conclusions``, ``flags.hits`` (the evidence of the last night each case was raised, up to the run
date), ``linked.household_person`` with ``staging.roster`` (the household's members) and ``ledger.runs``.
IDs are masked (CONTRACT.md §5: digits 7–14), free text through ``mask_text``, names are escaped by
Jinja's autoescape. With ``district=...`` only that district's cases, pages, trend and fairness figures are
written, so a district's bundle holds nothing of another district.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from urllib.parse import quote

import duckdb
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from crosscheck.safety import make_private_dir, mask_ids, write_private_text
from crosscheck.warehouse import fetch_dicts, table_exists
from reports.fairness import SMALL_GROUP, conclusions_relation, fairness_rows_by_report, fairness_tables

TEMPLATES = Path(__file__).with_name("templates") / "site"
STATUSES = ("new", "open", "confirmed", "refuted", "closed")
STATUS_LABELS = {"new": "新增", "open": "待核", "confirmed": "查实", "refuted": "查否", "closed": "已关闭"}
STATUS_COLOURS = {"new": "#1e88e5", "open": "#fb8c00", "confirmed": "#c62828", "refuted": "#2e7d32",
                  "closed": "#78909c"}
TREND_NIGHTS = 30
OVERVIEW_ROWS = 1000        # overdue cases listed on the overview before "see the district pages"
UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
ID18 = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")


def mask_text(text: str | None) -> str:
    """Free text with every ID number masked (crosscheck.safety.mask_ids on each 18-character ID). The
    15-digit 家庭编号 an R08 evidence line names stays readable: mask_ids alone would take it for a
    first-generation ID; IDs in evidence are always the normalised 18-character form."""
    return ID18.sub(lambda m: mask_ids(m.group()), text or "")


# ---------------------------------------------------------------- reading the warehouse

CASES_SQL = """
WITH
cases AS (SELECT * FROM ledger.cases WHERE ?::VARCHAR IS NULL OR district = ?::VARCHAR),
rule_names AS (SELECT rule, any_value(name) AS rule_name FROM {rule_runs} GROUP BY rule),
conclusions AS (
    SELECT case_id, arg_max(conclusion, (feedback_date, imported_on, row)) AS conclusion,
           arg_max(note, (feedback_date, imported_on, row)) AS conclusion_note, max(feedback_date) AS concluded_on
    FROM {conclusions} WHERE feedback_date <= ?::DATE GROUP BY case_id
)
SELECT c.case_id, c.household_id, c.rule, coalesce(n.rule_name, '') AS rule_name, c.status,
       c.opened_on, c.last_seen, c.deadline, c.responsible_unit,
       coalesce(c.district, '未知') AS district, coalesce(c.township, '未知') AS township, c.category,
       id_mask(c.member_id) AS member_id_masked, c.member_name, c.evidence, c.link, c.link_score, c.priority,
       c.closed_reason, c.updated_on, k.conclusion, k.conclusion_note, k.concluded_on,
       (c.status IN ('new', 'open') AND c.deadline < ?::DATE) AS overdue
FROM cases c
LEFT JOIN rule_names n USING (rule)
LEFT JOIN conclusions k USING (case_id)
ORDER BY c.priority, c.rule, c.district, c.township, c.case_id
"""

EVIDENCE_SQL = """
WITH
cases AS (SELECT case_id, rule, household_id FROM ledger.cases WHERE ?::VARCHAR IS NULL OR district = ?::VARCHAR),
hits AS (SELECT * FROM flags.hits WHERE run_date <= ?::DATE),
case_hits AS (
    SELECT c.case_id, h.*
    FROM hits h JOIN cases c USING (rule, household_id)
    QUALIFY h.run_date = max(h.run_date) OVER (PARTITION BY c.case_id)
)
SELECT case_id, run_date, id_mask(member_id) AS member_id_masked, source, record_table, record_key, source_as_of,
       trigger, evidence, link_method, link_score, link_agreed
FROM case_hits ORDER BY case_id, link_score DESC, source, record_key, member_id, record_table
"""

MEMBERS_SQL = """
WITH
cases AS (SELECT DISTINCT household_id FROM ledger.cases WHERE ?::VARCHAR IS NULL OR district = ?::VARCHAR),
persons AS (SELECT * FROM linked.household_person WHERE household_id IN (SELECT household_id FROM cases)),
roster AS (
    SELECT household_id, id_norm, any_value(relation) AS relation
    FROM staging.roster WHERE household_id IN (SELECT household_id FROM cases) GROUP BY ALL
)
SELECT p.household_id, p.person_name, id_mask(p.person_id) AS person_id_masked, p.kin, r.relation, p.hukou_no
FROM persons p LEFT JOIN roster r ON r.household_id = p.household_id AND r.id_norm = p.person_id
ORDER BY p.household_id, p.kin, r.relation = '户主' DESC, p.person_id
"""

HISTORY_SQL = """
WITH cases AS (SELECT case_id FROM ledger.cases WHERE ?::VARCHAR IS NULL OR district = ?::VARCHAR)
SELECT h.case_id, h.run_date, h.recorded_at, h.from_status, h.to_status, h.reason, h.evidence
FROM ledger.case_history h JOIN cases USING (case_id)
WHERE h.run_date <= ?::DATE
-- the night first, then the moment it was recorded (an auditor's conclusion, imported before tonight's
-- flags, comes before them); the clock time itself is not shown: a resumed night must read the same
ORDER BY h.case_id, h.run_date, h.recorded_at, h.from_status NULLS FIRST, h.to_status, h.reason
"""

TREND_SQL = """
WITH
nights AS (SELECT run_date FROM ledger.runs WHERE run_date <= ?::DATE ORDER BY run_date DESC LIMIT {nights}),
history AS (SELECT h.run_date, h.to_status, h.case_id, c.district FROM ledger.case_history h JOIN ledger.cases c USING (case_id))
SELECT n.run_date, h.district, h.to_status, count(h.case_id) AS n
FROM nights n LEFT JOIN history h USING (run_date)
GROUP BY ALL ORDER BY n.run_date
"""


def _district_args(district: str | None) -> list:
    return [district, district]


def read_cases(con: duckdb.DuckDBPyConnection, run_date: date, district: str | None) -> list[dict]:
    rule_runs = "flags.rule_runs" if table_exists(con, "flags", "rule_runs") else \
        "(SELECT NULL::VARCHAR AS rule, NULL::VARCHAR AS name WHERE false)"
    sql = CASES_SQL.format(rule_runs=rule_runs, conclusions=conclusions_relation(con))
    rows = fetch_dicts(con, sql, [*_district_args(district), run_date, run_date])
    for r in rows:
        for key in ("evidence", "closed_reason", "conclusion_note"):
            r[key] = mask_text(r[key])
    return rows


def read_evidence(con, run_date: date, district: str | None) -> dict[str, list[dict]]:
    if not table_exists(con, "flags", "hits"):
        return {}
    out: dict[str, list[dict]] = defaultdict(list)
    for r in fetch_dicts(con, EVIDENCE_SQL, [*_district_args(district), run_date]):
        r["values"] = trigger_values(r.pop("trigger"))
        for key in ("record_key", "evidence", "link_agreed"):
            r[key] = mask_text(r[key])
        out[r["case_id"]].append(r)
    return out


def trigger_values(trigger: str | None) -> list[tuple[str, str]]:
    """The trigger JSON as (name, value) pairs for display, every value masked."""
    if not trigger:
        return []
    try:
        values = json.loads(trigger)
    except ValueError:
        return [("", mask_text(trigger))]
    if not isinstance(values, dict):
        return [("", mask_text(json.dumps(values, ensure_ascii=False)))]
    return [(mask_text(str(k)), mask_text(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)))
            for k, v in values.items()]


def read_members(con, district: str | None) -> dict[str, list[dict]]:
    if not (table_exists(con, "linked", "household_person") and table_exists(con, "staging", "roster")):
        return {}
    out: dict[str, list[dict]] = defaultdict(list)
    for r in fetch_dicts(con, MEMBERS_SQL, _district_args(district)):
        out[r["household_id"]].append(r)
    return out


def read_history(con, run_date: date, district: str | None) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in fetch_dicts(con, HISTORY_SQL, [*_district_args(district), run_date]):
        r["reason"], r["evidence"] = mask_text(r["reason"]), mask_text(r["evidence"])
        out[r["case_id"]].append(r)
    return out


def read_trends(con, run_date: date) -> tuple[list[dict], dict[str, list[dict]]]:
    """Per night (the last 30 in ledger.runs): how many cases moved to each status that night, for the whole
    ledger and per district of ``ledger.cases`` (every night listed for every district, empty or not)."""
    rows = fetch_dicts(con, TREND_SQL.format(nights=TREND_NIGHTS), [run_date])
    nights = list(dict.fromkeys(r["run_date"] for r in rows))
    centre: dict[date, Counter] = {night: Counter() for night in nights}
    per_district: dict[str, dict[date, Counter]] = {}
    for r in rows:
        if not r["to_status"]:
            continue
        centre[r["run_date"]][r["to_status"]] += int(r["n"])
        if r["district"] is not None:
            counts = per_district.setdefault(r["district"], {night: Counter() for night in nights})
            counts[r["run_date"]][r["to_status"]] += int(r["n"])
    as_list = lambda by_night: [{"run_date": night, "counts": counts} for night, counts in by_night.items()]  # noqa: E731
    return as_list(centre), {d: as_list(by_night) for d, by_night in per_district.items()}


def read_rule_runs(con, run_date: date) -> list[dict]:
    if not table_exists(con, "flags", "rule_runs"):
        return []
    return [{**r, "reason": mask_text(r["reason"])} for r in fetch_dicts(
        con, "SELECT rule, name, status, reason FROM flags.rule_runs WHERE run_date = ? ORDER BY rule", [run_date])]


# ---------------------------------------------------------------- charts (inline SVG)

def _esc(text) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def stacked_bars(rows: list[tuple[str, Counter]], *, label: str, width: int = 560) -> str:
    """One horizontal bar per row, split by status, with its total at the end."""
    if not rows:
        return ""
    bar_h, gap, left = 18, 6, 150
    top = max(sum(c.values()) for _, c in rows) or 1
    scale = (width - left - 50) / top
    parts = []
    for i, (name, counts) in enumerate(rows):
        y, x = i * (bar_h + gap), left
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{_esc(name)}</text>')
        for status in STATUSES:
            n = counts.get(status, 0)
            if n:
                w = max(n * scale, 1)
                parts.append(f'<rect class="bar" data-status="{status}" x="{x:.1f}" y="{y}" width="{w:.1f}" '
                             f'height="{bar_h}" fill="{STATUS_COLOURS[status]}"><title>{_esc(name)} · '
                             f'{STATUS_LABELS[status]} {status}: {n:,}</title></rect>')
                x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 13}">{sum(counts.values()):,}</text>')
    height = len(rows) * (bar_h + gap)
    return (f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{_esc(label)}">{"".join(parts)}</svg>')


def trend_chart(trend: list[dict], *, width: int = 640, height: int = 180) -> str:
    """Cases moved to each status per night, stacked columns, one per night."""
    if not trend:
        return ""
    bottom, left = height - 24, 36
    top = max((sum(t["counts"].values()) for t in trend), default=0) or 1
    step = (width - left) / len(trend)
    col = max(min(step * 0.7, 40), 2)
    parts = [f'<line x1="{left}" y1="{bottom}" x2="{width}" y2="{bottom}" stroke="#9aa5b1"/>',
             f'<text x="{left - 4}" y="12" text-anchor="end">{top:,}</text>',
             f'<text x="{left - 4}" y="{bottom}" text-anchor="end">0</text>']
    for i, t in enumerate(trend):
        x, y = left + i * step + (step - col) / 2, bottom
        for status in STATUSES:
            n = t["counts"].get(status, 0)
            if n:
                h = max(n * (bottom - 8) / top, 1)
                y -= h
                parts.append(f'<rect class="bar" data-status="{status}" x="{x:.1f}" y="{y:.1f}" width="{col:.1f}" '
                             f'height="{h:.1f}" fill="{STATUS_COLOURS[status]}"><title>{t["run_date"]} · '
                             f'{STATUS_LABELS[status]} {status}: {n:,}</title></rect>')
        if i in (0, len(trend) - 1) or len(trend) <= 8:
            parts.append(f'<text x="{x + col / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                         f'{t["run_date"].strftime("%m-%d")}</text>')
    return (f'<svg class="chart trend" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="近 {len(trend)} 晚线索状态变化">{"".join(parts)}</svg>')


# ---------------------------------------------------------------- pages and links

def safe_name(text: str) -> str:
    """A file name from a district / township / case id: path separators and control characters replaced."""
    return UNSAFE.sub("_", str(text)).strip(". ") or "_"


def page_path(kind: str, *keys: str) -> str:
    """The page's path relative to the output folder, as written on disk."""
    return f"report/{kind}/{safe_name('-'.join(keys))}.html"


def page_url(kind: str, *keys: str) -> str:
    """The same path as a relative URL (each segment percent-encoded)."""
    return "/".join(quote(part) for part in page_path(kind, *keys).split("/"))


def by_status(cases: list[dict], key) -> list[tuple[str, Counter]]:
    groups: dict[str, Counter] = defaultdict(Counter)
    for c in cases:
        groups[key(c)][c["status"]] += 1
    return sorted(groups.items(), key=lambda kv: str(kv[0]))


def summarise(cases: list[dict], run_date: date) -> dict:
    """Counts for tiles and charts."""
    status = Counter(c["status"] for c in cases)
    return {"total": len(cases), "status": status,
            "overdue": sum(1 for c in cases if c["overdue"]),
            "raised_tonight": sum(1 for c in cases if c["last_seen"] == run_date),
            "by_rule": by_status(cases, lambda c: f"{c['rule']} {c['rule_name']}".strip()),
            "by_district": by_status(cases, lambda c: c["district"]),
            "by_township": by_status(cases, lambda c: (c["district"], c["township"])),
            "by_priority": by_status(cases, lambda c: f"优先级 {c['priority']}")}


SCOPE_MARK = "\ue000scope\ue000"     # stands for the page's scope note while a page is rendered once for every report


def scope_note(scope: str | None) -> Markup | str:
    """The header's note on a report limited to one district (empty for the centre-wide report)."""
    if scope == SCOPE_MARK:
        return Markup(SCOPE_MARK)
    return Markup("本报告只含 {0} 的线索 (this report holds {0} only).").format(scope) if scope else ""


_ENV: Environment | None = None


def _env() -> Environment:
    """One compiled environment per process: templates are parsed and compiled once, then cached."""
    global _ENV
    if _ENV is None:
        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True,
                          auto_reload=False)
        env.globals.update(statuses=STATUSES, status_labels=STATUS_LABELS, colours=STATUS_COLOURS,
                           page_url=page_url, small_group=SMALL_GROUP, scope_note=scope_note)
        env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
        env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) else ("—" if v is None else str(v))
        _ENV = env
    return _ENV


class Site:
    """The night's report read from the warehouse once, written for the centre and for any district.

    Cases, evidence, members, history, rule runs and the trends are read in one round of queries for the
    whole ledger; a district's report takes its cases from them (the pages of a case, a township or a
    district do not depend on which report they are in, except for the header's scope note). Each such page
    is rendered once, with a mark where the scope note goes, and written into every report that holds it
    with that report's note. Only the overview (and its fairness tables) is rendered per report."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_date: date):
        self.con, self.run_date = con, run_date
        self.cases = read_cases(con, run_date, None)
        # the district filter is on ledger.cases.district itself (the rows show NULL as 未知)
        self._raw_district = dict(con.execute("SELECT case_id, district FROM ledger.cases").fetchall())
        self.evidence = read_evidence(con, run_date, None)
        self.members = read_members(con, None)
        self.history = read_history(con, run_date, None)
        self.rule_runs = read_rule_runs(con, run_date)
        self._trend_all, self._trend_district = read_trends(con, run_date)
        self._fairness: dict[str | None, list[dict]] | None = None
        self._pages: dict[tuple, tuple[str, str]] = {}

    def cases_of(self, district: str | None) -> list[dict]:
        if district is None:
            return self.cases
        return [c for c in self.cases if self._raw_district.get(c["case_id"]) == district]

    def fairness_rows(self, district: str | None) -> list[dict]:
        if self._fairness is None:          # every report's figures in one query, on first use
            self._fairness = fairness_rows_by_report(self.con, self.run_date)
        return self._fairness.get(district, [])

    def trend(self, district: str | None) -> list[dict]:
        if district is None:
            return self._trend_all
        return self._trend_district.get(district) or [{"run_date": t["run_date"], "counts": Counter()}
                                                      for t in self._trend_all]

    def write(self, out_dir: Path, district: str | None = None) -> dict[str, Path]:
        """The overview, the district, township and case pages of one report (the centre's, or ``district``'s
        alone) under ``out_dir``; returns {"report": overview, "report_district": folder, ...}."""
        out_dir = make_private_dir(Path(out_dir))
        folders = {kind: make_private_dir(out_dir / "report" / kind) for kind in ("district", "township", "case")}
        cases = self.cases_of(district)
        run_date = self.run_date
        base = {"run_date": run_date.isoformat(), "scope": district}
        written: dict[str, Path] = {"report": self._overview(base, cases, out_dir, district)}
        note = scope_note(district)
        for (dist, town), rows in _group(cases, ("district", "township")).items():
            self._write_page(out_dir / page_path("township", dist, town), note, ("township", dist, town, *_ids(rows)),
                             "township.html.j2", lambda: {
                                 "root": "../../", "district": dist, "township": town, "cases": rows,
                                 "summary": summarise(rows, run_date)})
        for (dist,), rows in _group(cases, ("district",)).items():
            self._write_page(out_dir / page_path("district", dist), note, ("district", dist, *_ids(rows)),
                             "district.html.j2", lambda: {
                                 "root": "../../", "district": dist, "cases": rows,
                                 "summary": summarise(rows, run_date),
                                 "chart_rule": stacked_bars(summarise(rows, run_date)["by_rule"], label="按规则"),
                                 "trend": trend_chart(self.trend(dist))})
        for c in cases:
            self._write_page(out_dir / page_path("case", c["case_id"]), note, ("case", c["case_id"]),
                             "case.html.j2", lambda: {
                                 "root": "../../", "case": c, "evidence": self.evidence.get(c["case_id"], []),
                                 "members": self.members.get(c["household_id"], []),
                                 "history": self.history.get(c["case_id"], [])})
        _remove_stale(folders, out_dir, cases)
        written.update({f"report_{kind}": folder for kind, folder in folders.items()})
        return written

    def _write_page(self, path: Path, note: str, key: tuple, template: str, context) -> None:
        """Render the page once (keyed by what it shows), then write it with this report's scope note."""
        parts = self._pages.get(key)
        if parts is None:
            html = _env().get_template(template).render(run_date=self.run_date.isoformat(), scope=SCOPE_MARK,
                                                        **context())
            head, tail = html.split(SCOPE_MARK)          # exactly one mark: the header's scope note
            parts = self._pages[key] = (head, tail)
        write_private_text(path, parts[0] + str(note) + parts[1])

    def _overview(self, base: dict, cases: list[dict], out_dir: Path, district: str | None) -> Path:
        summary = summarise(cases, self.run_date)
        overdue = [c for c in cases if c["overdue"]]
        path = out_dir / "report.html"
        _write(_env(), "overview.html.j2", path, {
            **base, "root": "", "summary": summary, "rule_runs": self.rule_runs,
            "charts": {"rule": stacked_bars(summary["by_rule"], label="按规则"),
                       "district": stacked_bars(summary["by_district"], label="按区县"),
                       "priority": stacked_bars(summary["by_priority"], label="按优先级")},
            "trend": trend_chart(self.trend(district)),
            "overdue": overdue[:OVERVIEW_ROWS], "overdue_total": len(overdue),
            "fairness": fairness_tables(self.con, self.run_date, district, rows=self.fairness_rows(district))})
        return path


def write_site(con: duckdb.DuckDBPyConnection, run_date: date, out_dir: Path, *,
               district: str | None = None, site: Site | None = None) -> dict[str, Path]:
    """Write the overview, the district, township and case pages; return {"report": overview, ...}. Pass the
    night's ``site`` to reuse what it already read and rendered."""
    return (site or Site(con, run_date)).write(out_dir, district)


def _ids(rows: list[dict]) -> tuple:
    return tuple(c["case_id"] for c in rows)


def _group(cases: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for c in cases:
        out[tuple(c[k] for k in keys)].append(c)
    return out


def _write(env: Environment, template: str, path: Path, context: dict) -> None:
    write_private_text(path, env.get_template(template).render(**context))


def _remove_stale(folders: dict[str, Path], out_dir: Path, cases: list[dict]) -> None:
    """Pages left by an earlier write into the same folder that this one did not write (a case of another
    district, say) are removed, so the folder holds exactly this report."""
    keep = {out_dir / page_path("case", c["case_id"]) for c in cases}
    keep |= {out_dir / page_path("district", c["district"]) for c in cases}
    keep |= {out_dir / page_path("township", c["district"], c["township"]) for c in cases}
    for folder in folders.values():
        for page in folder.glob("*.html"):
            if page not in keep:
                page.unlink()

