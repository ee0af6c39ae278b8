"""Validate stage: may the rules use this source tonight?

``validate_source`` runs the check suite (suite.py) on what the load stage left in staging and in
``audit.load_files`` / ``audit.source_loads``, writes every result to ``audit.check_results`` and one
verdict to ``audit.source_status``:

* ``missing``  — no delivery dated on or before the as-of date (or the source was not loaded tonight);
* ``rejected`` — a critical check failed (file refused at load, required column missing, too few usable
  IDs, too many quarantined rows, row count far from the previous delivery, nothing staged);
* ``stale``    — the delivery is older than the source's ``max_age_days``;
* ``ok``       — the rules may use it.

POLICY.md: a rule whose source is not ``ok`` is not evaluated that night (raises and clears nothing);
the other sources go on. Re-running a night replaces that night's rows for the source.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import date

import duckdb

from checks.suite import FRESHNESS, CheckContext, CheckEngine, CheckResult, SqlCheckEngine
from connectors.audit import ensure_audit_tables
from connectors.base import mask_ids
from crosscheck.settings import SourcesConfig, Thresholds, load_sources, load_thresholds

USABLE = ("ok",)


def _dicts(con, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def validate_source(con: duckdb.DuckDBPyConnection, source: str, as_of: date, run_date: date, *,
                    sources: SourcesConfig | None = None, thresholds: Thresholds | None = None,
                    engine: CheckEngine | None = None) -> dict:
    """Check one source for the night; returns {source, status, delivery_date, age_days, reason, checks}."""
    cfg = sources or load_sources()
    spec = cfg.sources[source]
    limits = thresholds or load_thresholds()
    engine = engine or SqlCheckEngine()
    ensure_audit_tables(con)
    con.execute("DELETE FROM audit.check_results WHERE run_date = ? AND source = ?", [run_date, source])
    con.execute("DELETE FROM audit.source_status WHERE run_date = ? AND source = ?", [run_date, source])
    loads = _dicts(con, "SELECT * FROM audit.source_loads WHERE run_date = ? AND source = ? "
                        "ORDER BY loaded_at DESC LIMIT 1", [run_date, source])
    load = loads[0] if loads else None
    if load is None or load["status"] == "missing" or load["delivery_date"] is None:
        reason = (load["message"] if load and load["message"] else
                  f"{source}: not loaded on the night of {run_date}")
        results = [CheckResult("delivery_present", None, False, 0.0, 1.0, True, reason, engine.name)]
        return _finish(con, source, as_of, run_date, spec.max_age_days, None, None, "missing", reason, results)
    files = _dicts(con, "SELECT * FROM audit.load_files WHERE run_date = ? AND source = ? "
                        "ORDER BY table_name, file_name", [run_date, source])
    ctx = CheckContext(con, source, spec, limits, as_of, run_date, load, files)
    results = [CheckResult("delivery_present", None, True, 1.0, 1.0, True,
                           f"{source}: delivery of {load['delivery_date']}", engine.name)]
    results += engine.run(ctx)
    for r in results:
        r.engine = r.engine or engine.name
    age = (as_of - load["delivery_date"]).days
    failed = [r for r in results if r.critical and not r.passed and r.check != FRESHNESS]
    stale = [r for r in results if r.check == FRESHNESS and not r.passed]
    if failed:
        status, reason = "rejected", "; ".join(r.message for r in failed)
    elif stale:
        status, reason = "stale", stale[0].message
    else:
        status, reason = "ok", None
    return _finish(con, source, as_of, run_date, spec.max_age_days, load["delivery_date"], age, status, reason,
                   results)


def _finish(con, source, as_of, run_date, max_age, delivery_date, age, status, reason, results) -> dict:
    reason = mask_ids(reason) if reason else reason
    if results:
        con.executemany(
            "INSERT INTO audit.check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [(run_date, source, r.table, r.check, r.passed, r.observed, r.threshold, r.critical,
              mask_ids(r.message), r.engine) for r in results])
    con.execute("INSERT INTO audit.source_status VALUES (?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
                [run_date, source, as_of, delivery_date, age, max_age, status, reason])
    return {"source": source, "status": status, "as_of": as_of, "run_date": run_date,
            "delivery_date": delivery_date, "age_days": age, "max_age_days": max_age, "reason": reason,
            "checks": [asdict(r) for r in results]}


def source_statuses(con: duckdb.DuckDBPyConnection, run_date: date) -> dict[str, dict]:
    """Tonight's verdict per source (what the rules stage consults before evaluating a rule)."""
    ensure_audit_tables(con)
    return {r["source"]: r for r in _dicts(con, "SELECT * FROM audit.source_status WHERE run_date = ?", [run_date])}


def usable_sources(con: duckdb.DuckDBPyConnection, run_date: date) -> set[str]:
    return {s for s, r in source_statuses(con, run_date).items() if r["status"] in USABLE}
