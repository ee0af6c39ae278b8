"""Ledger stage: turn tonight's flags into case transitions, recorded append-only.

Transitions (POLICY.md "The case ledger"):
  no case            + flagged  → new   (deadline, responsible unit set)
  new                + flagged  → open  (raised again on a later night)
  closed             + flagged  → new   (raised again)
  refuted            + flagged  → new   only if the evidence fingerprint changed; otherwise stays refuted
  confirmed          + flagged  → stays confirmed
  new / open         + not flagged, rule evaluated → closed with the reason
  any                + rule skipped tonight         → unchanged
Auditors' conclusions (confirmed / refuted) come from the feedback workbooks, never from the pipeline.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from crosscheck.settings import PolicyConfig

SQL = Path(__file__).with_name("sql")


class LedgerOrderError(RuntimeError):
    """A night older than one already applied cannot be applied again on top of it."""


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute((SQL / "ledger_ddl.sql").read_text(encoding="utf-8"))


def _history(con, rows: list[tuple]) -> None:
    if rows:
        con.executemany("INSERT INTO ledger.case_history VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def update_ledger(con: duckdb.DuckDBPyConnection, policy: PolicyConfig, run_date: date,
                  rule_results: list[dict]) -> dict[str, int]:
    """Apply tonight's flags to the ledger; return counts of transitions."""
    ensure_ledger(con)
    latest = con.execute("SELECT max(run_date) FROM ledger.runs").fetchone()[0]
    if latest is not None and latest > run_date:
        raise LedgerOrderError(f"the ledger already holds night {latest}; night {run_date} is older")
    evaluated = [r["rule"] for r in rule_results if r["status"] == "evaluated"]
    con.execute("SET VARIABLE run_date = ?::DATE", [run_date])
    con.execute((SQL / "tonight.sql").read_text(encoding="utf-8"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    counts = {"new": 0, "open": 0, "closed": 0, "reraised": 0, "quiet_refuted": 0}
    history: list[tuple] = []

    tonight = con.execute(
        "SELECT t.case_id, t.household_id, t.rule, t.district, t.township, t.category, t.member_id, t.member_name,"
        " t.evidence, t.fingerprint, t.link, t.link_score, t.all_fuzzy,"
        " c.status, c.evidence_fingerprint, c.last_seen"
        " FROM tonight t LEFT JOIN ledger.cases c USING (case_id)").fetchall()
    deadline = run_date.toordinal() + policy.ledger.deadline_days
    for (case_id, household_id, rule, district, township, category, member_id, member_name, evidence,
         fingerprint, link, link_score, all_fuzzy, status, old_fp, last_seen) in tonight:
        priority = policy.rules[rule].priority
        if all_fuzzy:
            priority = min(3, priority + policy.fuzzy_link_priority_drop)
        unit = township if policy.ledger.responsible_unit == "township" else district
        fields = [member_id, member_name, evidence, fingerprint, link, link_score, priority, run_date]
        if status is None:
            con.execute(
                "INSERT INTO ledger.cases VALUES (?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                [case_id, household_id, rule, run_date, run_date, date.fromordinal(deadline), unit, district,
                 township, category, member_id, member_name, evidence, fingerprint, link, link_score, priority,
                 run_date])
            history.append((case_id, run_date, now, None, "new", "首次发现", evidence))
            counts["new"] += 1
            continue
        if last_seen is not None and last_seen >= run_date:
            continue  # this night was already applied to this case
        if status == "refuted" and fingerprint == old_fp:
            counts["quiet_refuted"] += 1
            continue
        if status in ("refuted", "closed"):
            reason = "查否后出现新证据，重新提出" if status == "refuted" else "再次发现"
            con.execute(
                "UPDATE ledger.cases SET status = 'new', opened_on = ?, deadline = ?, closed_reason = NULL,"
                " last_seen = ?, member_id = ?, member_name = ?, evidence = ?, evidence_fingerprint = ?, link = ?,"
                " link_score = ?, priority = ?, updated_on = ? WHERE case_id = ?",
                [run_date, date.fromordinal(deadline), run_date, *fields, case_id])
            history.append((case_id, run_date, now, status, "new", reason, evidence))
            counts["reraised"] += 1
            continue
        new_status = "open" if status == "new" else status
        con.execute(
            "UPDATE ledger.cases SET status = ?, last_seen = ?, member_id = ?, member_name = ?, evidence = ?,"
            " evidence_fingerprint = ?, link = ?, link_score = ?, priority = ?, updated_on = ? WHERE case_id = ?",
            [new_status, run_date, *fields, case_id])
        if new_status != status:
            history.append((case_id, run_date, now, status, new_status, "再次发现", evidence))
            counts["open"] += 1

    if evaluated:
        to_close = con.execute(
            "SELECT c.case_id, c.status, (SELECT count(*) FROM flags.household h WHERE h.household_id = c.household_id),"
            " c.evidence FROM ledger.cases c WHERE c.status IN ('new', 'open') AND c.rule IN (SELECT unnest(?::VARCHAR[]))"
            " AND c.case_id NOT IN (SELECT case_id FROM tonight) AND c.last_seen < ?",
            [evaluated, run_date]).fetchall()
        for case_id, status, on_roster, last_evidence in to_close:
            # the reason names what no longer holds: the household left the roster, or the evidence last seen
            reason = "家庭已不在名册" if on_roster == 0 else f"核对条件不再成立（此前证据：{last_evidence}）"
            con.execute("UPDATE ledger.cases SET status = 'closed', closed_reason = ?, updated_on = ? WHERE case_id = ?",
                        [reason, run_date, case_id])
            history.append((case_id, run_date, now, status, "closed", reason, None))
            counts["closed"] += 1
    _history(con, history)
    con.execute("INSERT OR REPLACE INTO ledger.runs VALUES (?, ?)", [run_date, now])
    return counts
