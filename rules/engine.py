"""Flag stage: evaluate every rule of the policy whose sources are usable tonight.

Each rule is one SQL file (rules/sql/rNN_*.sql) that selects hits with their evidence; the engine adds
the run date and rule code and appends them to flags.hits. A rule whose source is missing, stale or
rejected is not evaluated: it raises nothing and clears nothing (POLICY.md), and flags.rule_runs says why.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from crosscheck.settings import PolicyConfig
from rules.params import build_params

SQL = Path(__file__).with_name("sql")
HIT_COLUMNS = ("household_id", "member_id", "source", "record_table", "record_key", "source_as_of",
               "trigger", "evidence", "link_method", "link_score", "link_agreed")

_DDL = """
CREATE TABLE IF NOT EXISTS flags.hits (
    run_date DATE, rule VARCHAR, household_id VARCHAR, member_id VARCHAR, source VARCHAR,
    record_table VARCHAR, record_key VARCHAR, source_as_of DATE, trigger VARCHAR, evidence VARCHAR,
    link_method VARCHAR, link_score DOUBLE, link_agreed VARCHAR);
CREATE TABLE IF NOT EXISTS flags.rule_runs (
    run_date DATE, rule VARCHAR, name VARCHAR, status VARCHAR, reason VARCHAR, hits BIGINT, households BIGINT);
"""


def rule_sql(code: str) -> str:
    matches = sorted(SQL.glob(f"{code.lower()}_*.sql"))
    if len(matches) != 1:
        raise FileNotFoundError(f"rule {code}: expected one file rules/sql/{code.lower()}_*.sql, found {len(matches)}")
    return matches[0].read_text(encoding="utf-8").strip().rstrip(";")


def skip_reason(code: str, needed: list[str], source_status: dict[str, dict]) -> str | None:
    """Why a rule cannot be evaluated tonight, or None when all its sources are usable."""
    problems = []
    for source in needed:
        state = source_status.get(source, {"status": "missing", "reason": "no delivery"})
        if state["status"] != "ok":
            problems.append(f"{source}: {state['status']} ({state.get('reason') or ''})".replace(" ()", ""))
    return "; ".join(problems) or None


def evaluate_rules(con: duckdb.DuckDBPyConnection, policy: PolicyConfig, as_of: date,
                   source_status: dict[str, dict]) -> list[dict]:
    """Evaluate every rule; return one summary per rule (status evaluated or skipped)."""
    con.execute(_DDL)
    con.execute("SET VARIABLE as_of = ?::DATE", [as_of])
    con.execute("DELETE FROM flags.hits WHERE run_date = ?", [as_of])
    con.execute("DELETE FROM flags.rule_runs WHERE run_date = ?", [as_of])
    roster_ok = source_status.get("roster", {}).get("status") == "ok"
    if roster_ok:
        build_params(con, policy)
        con.execute((SQL / "household.sql").read_text(encoding="utf-8"))
    results = []
    for code, spec in policy.rules.items():
        reason = skip_reason(code, ["roster", *spec.source], source_status)
        if reason is None:
            con.execute(f"INSERT INTO flags.hits SELECT ?::DATE, ?, {', '.join(HIT_COLUMNS)} FROM ({rule_sql(code)})",
                        [as_of, code])
            hits, households = con.execute(
                "SELECT count(*), count(DISTINCT household_id) FROM flags.hits WHERE run_date = ? AND rule = ?",
                [as_of, code]).fetchone()
            result = dict(rule=code, name=spec.name, status="evaluated", reason="", hits=hits, households=households)
        else:
            result = dict(rule=code, name=spec.name, status="skipped", reason=reason, hits=0, households=0)
        con.execute("INSERT INTO flags.rule_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [as_of, code, spec.name, result["status"], result["reason"], result["hits"], result["households"]])
        results.append(result)
    return results
