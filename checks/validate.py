"""Validate stage: may the rules use this source tonight?

``validate_source`` runs the check suite (suite.py) on what the load stage left in staging and in
``audit.load_files`` / ``audit.source_loads``, writes every result to ``audit.check_results`` and one
verdict to ``audit.source_status``:

* ``missing``  — no delivery dated on or before the as-of date (or the source was not loaded tonight);
* ``rejected`` — a critical check failed (file refused at load, required column missing, too few usable
  IDs, too many values outside their code table or range, too many quarantined rows, row count far from
  the previous delivery, nothing staged);
* ``stale``    — the delivery is older than the source's ``max_age_days``;
* ``ok``       — the rules may use it.

Rows that fail a row-level expectation (a code outside its code table, a date or amount out of range) are
moved from staging to ``audit.quarantine`` with the reason, and ``audit.load_files`` keeps
rows_read = rows_staged + rows_quarantined for every file. A range marked ``keep_rows`` (a registration
dated after the delivery, which POLICY.md expects and the rules ignore by date) leaves its rows in staging
and lists them in ``audit.row_notes`` instead.

POLICY.md: a rule whose source is not ``ok`` is not evaluated that night (raises and clears nothing);
the other sources go on. Re-running a night replaces that night's rows for the source.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from datetime import date
from pathlib import Path

import duckdb

from checks.expectations import (Expectation, Observation, build_expectations, describe, failing_predicate,
                                 freshness_expectation, q)
from checks.suite import (CheckContext, CheckEngine, CheckResult, SqlCheckEngine, check_load_accepted,
                          check_quarantine_share, check_required_columns, check_repeated_delivery)
from connectors.audit import ensure_audit_tables
from crosscheck.safety import mask_ids
from crosscheck.settings import SourcesConfig, Thresholds, load_sources, load_thresholds
from crosscheck.warehouse import fetch_dicts, forget_fingerprint, schema_columns, table_columns

USABLE = ("ok",)
FRESHNESS = "freshness"


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
    con.execute("DELETE FROM audit.row_notes WHERE run_date = ? AND source = ?", [run_date, source])
    loads = fetch_dicts(con, "SELECT * FROM audit.source_loads WHERE run_date = ? AND source = ? "
                        "ORDER BY loaded_at DESC LIMIT 1", [run_date, source])
    load = loads[0] if loads else None
    if load is None or load["status"] == "missing" or load["delivery_date"] is None:
        reason = (load["message"] if load and load["message"] else
                  f"{source}: 当晚未入库 (not loaded on the night of {run_date})")
        results = [CheckResult("delivery_present", None, False, 0.0, 1.0, True, reason, engine.name)]
        return _finish(con, source, as_of, run_date, spec.max_age_days, None, None, "missing", reason, results)
    delivery = load["delivery_date"]
    sha = check_sha(cfg, source, limits, engine)
    carried = _carry_over(con, source, spec, as_of, run_date, load, sha, engine)
    if carried is not None:
        return carried
    ctx = CheckContext(con, source, spec, limits, as_of, run_date, load, _files(con, source, run_date))
    expectations = build_expectations(
        source, spec, cfg.code_tables, as_of=as_of, delivery_date=delivery,
        min_valid_id_share=limits.min_valid_id_share, max_row_failure_share=limits.max_row_failure_share,
        previous_rows=_previous_rows(con, source, spec, delivery, run_date),
        row_ratio=(limits.min_row_ratio_vs_previous, limits.max_row_ratio_vs_previous),
        staged_columns=_staged_columns(con, list(spec.tables)))
    observations = engine.evaluate(con, expectations, source=source, run_date=run_date)
    results = [CheckResult("delivery_present", None, True, 1.0, 1.0, True,
                           f"{source}: 交付日期 {delivery} (delivery of {delivery})")]
    results += [check_load_accepted(ctx, table) for table in spec.tables]
    results += [check_required_columns(ctx, table) for table in spec.tables]
    results.append(check_repeated_delivery(ctx))
    results += [_result(source, e, o) for e, o in zip(expectations, observations)]
    if not _failed(results):
        moved = quarantine_failing_rows(con, source, spec, expectations, run_date)
        if moved:
            ctx.files = _files(con, source, run_date)
        note_failing_rows(con, source, expectations, run_date)
    results += [check_quarantine_share(ctx, table) for table in spec.tables]
    for r in results:
        r.engine = r.engine or engine.name
    failed = _failed(results)
    stale = [r for r in results if r.check == FRESHNESS and not r.passed]
    if failed:
        status, reason = "rejected", "; ".join(r.message for r in failed)
    elif stale:
        status, reason = "stale", stale[0].message
    else:
        status, reason = "ok", None
    return _finish(con, source, as_of, run_date, spec.max_age_days, delivery, (as_of - delivery).days, status,
                   reason, results, sha)


# --- an unchanged delivery: the checks of the night that loaded it are carried over ---------------------------

CHECKS_VERSION = 1   # raise when the checks themselves change: verdicts reached before are not carried over
CARRIED_NOTE = "（沿用 {night} 晚的检查结果：交付字节未变）(checks carried over from the night of {night}: unchanged bytes)"
_CARRIED_RE = r"（沿用 [0-9-]+ 晚的检查结果：交付字节未变）\(checks carried over from the night of [0-9-]+: unchanged bytes\)$"


def check_sha(cfg: SourcesConfig, source: str, limits: Thresholds, engine: CheckEngine | None = None) -> str:
    """What decides a source's check results besides its bytes: thresholds, the source's spec, the code
    tables it uses, the engine and the version of the checks."""
    spec = cfg.sources[source]
    used = sorted({cs.codes for t in spec.tables.values() for cs in t.columns.values() if cs.codes})
    payload = {"version": CHECKS_VERSION, "thresholds": limits.model_dump(mode="json"),
               "spec": spec.model_dump(mode="json"), "engine": getattr(engine, "name", None),
               "code_tables": {c: cfg.code_tables[c].model_dump(mode="json") for c in used if c in cfg.code_tables}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16]


def _carry_over(con, source: str, spec, as_of: date, run_date: date, load: dict, sha: str,
                engine: CheckEngine) -> dict | None:
    """Tonight's load reused night R's (the same bytes) and the check configuration is R's: R's check results
    and row notes are copied to tonight, only freshness (which depends on tonight's date) is evaluated again,
    and nothing goes through the check engine. None when validation has to run in full."""
    night = load.get("reused_from")
    if night is None or load["status"] != "loaded":
        return None
    prior = fetch_dicts(con, "SELECT * FROM audit.source_status WHERE run_date = ? AND source = ? "
                        "ORDER BY decided_at DESC LIMIT 1", [night, source])
    if not prior or prior[0]["status"] not in ("ok", "stale") or prior[0]["check_sha"] != sha \
            or prior[0]["delivery_date"] != load["delivery_date"]:
        return None
    rows = fetch_dicts(con, "SELECT * FROM audit.check_results WHERE run_date = ? AND source = ?", [night, source])
    if not rows:
        return None
    origin = prior[0]["carried_from"] or night          # the night that really ran the checks
    note = CARRIED_NOTE.format(night=origin)
    delivery = load["delivery_date"]
    freshness = freshness_expectation(spec, as_of)
    fresh = _result(source, freshness, SqlCheckEngine().evaluate(con, [freshness], source=source,
                                                                 run_date=run_date)[0])
    results = []
    for r in rows:
        message = re.sub(_CARRIED_RE, "", r["message"] or "").rstrip()
        if r["check_name"] == FRESHNESS and r["table_name"] == freshness.table:
            results.append(CheckResult(FRESHNESS, r["table_name"], fresh.passed, fresh.observed, fresh.threshold,
                                       r["critical"], fresh.message, SqlCheckEngine.name))
            continue
        results.append(CheckResult(r["check_name"], r["table_name"], r["passed"], r["observed"], r["threshold"],
                                   r["critical"], f"{message} {note}".strip(), r["engine"]))
    if _failed(results):        # cannot happen for an ok or stale night; validate in full rather than guess
        return None
    con.execute("INSERT INTO audit.row_notes SELECT ? AS run_date, * EXCLUDE (run_date) FROM audit.row_notes "
                "WHERE run_date = ? AND source = ?", [run_date, night, source])
    stale = [r for r in results if r.check == FRESHNESS and not r.passed]
    status, reason = ("stale", stale[0].message) if stale else ("ok", None)
    return _finish(con, source, as_of, run_date, spec.max_age_days, delivery, (as_of - delivery).days, status,
                   reason, results, sha, carried_from=origin)


def engine_for(thresholds: Thresholds, state: Path) -> CheckEngine:
    """The configured check engine; Great Expectations keeps its results for the Data Docs in <state>/gx."""
    if thresholds.check_engine == "sql":
        return SqlCheckEngine()
    from checks.gx_engine import GxCheckEngine

    return GxCheckEngine(state / "gx")


def _failed(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.critical and not r.passed and r.check != FRESHNESS]


def _result(source: str, exp: Expectation, obs: Observation) -> CheckResult:
    """One expectation's outcome as an audit row: shares for row checks, counts or days otherwise."""
    if exp.kind in ("values_in_set", "values_between", "compound_unique"):
        n, bad = obs.element_count or 0, obs.unexpected_count or 0
        observed, threshold = ((n - bad) / n if n else None), exp.mostly
    elif exp.check == "row_count_vs_previous":
        lo = exp.min_value / exp.reference if exp.reference else None
        observed = (obs.observed or 0) / exp.reference if exp.reference else None
        threshold = lo if observed is None or observed < lo else exp.max_value / exp.reference
    elif exp.kind == "row_count_between":
        observed, threshold = obs.observed, exp.min_value
    elif exp.kind == "max_between":
        observed = (exp.max_value - obs.observed).days if isinstance(obs.observed, date) else None
        threshold = (exp.max_value - exp.min_value).days
    else:
        observed, threshold = (1.0 if obs.passed else 0.0), 1.0
    return CheckResult(exp.check, exp.table, obs.passed, observed, threshold, exp.critical, describe(source, exp, obs))


def _files(con, source: str, run_date: date) -> list[dict]:
    return fetch_dicts(con, "SELECT * FROM audit.load_files WHERE run_date = ? AND source = ? "
                       "ORDER BY table_name, file_name", [run_date, source])


def _staged_columns(con, tables: list[str]) -> dict[str, set[str]]:
    present = schema_columns(con, "staging")
    return {t: present.get(t, set()) for t in tables}


def _previous_rows(con, source: str, spec, delivery: date, run_date: date) -> dict[str, tuple[int, date]]:
    """Rows staged per table from the latest earlier delivery that validation accepted (ok or stale)."""
    out = {}
    for table, rows in con.execute("""
            WITH per_night AS (
                SELECT f.table_name, f.delivery_date, f.run_date, sum(f.rows_staged) AS rows_staged,
                       bool_and(f.status = 'loaded') AS loaded
                FROM audit.load_files f
                JOIN audit.source_status s ON s.run_date = f.run_date AND s.source = f.source
                WHERE f.source = ? AND f.delivery_date < ? AND f.run_date < ? AND s.status IN ('ok', 'stale')
                GROUP BY ALL)
            SELECT table_name, arg_max((rows_staged, delivery_date), (delivery_date, run_date)) FROM per_night
            WHERE loaded GROUP BY table_name""", [source, delivery, run_date]).fetchall():
        if table in spec.tables and rows and rows[0]:
            out[table] = (int(rows[0]), rows[1])
    return out


def quarantine_failing_rows(con, source: str, spec, expectations: list[Expectation], run_date: date) -> int:
    """Move rows failing a row-level expectation from staging to audit.quarantine, one row per delivered
    row with every reason it failed, and keep the file accounting whole. Returns the rows moved."""
    moved = 0
    for table, tspec in spec.tables.items():
        exps = [e for e in expectations if e.quarantine and e.table == table]
        if not exps:
            continue
        parts = [f"SELECT _file, _row, _delivery_date, {_reason_sql(e)} AS reason FROM staging.{q(table)} "
                 f"WHERE {failing_predicate(e)}" for e in exps]
        con.execute("CREATE OR REPLACE TEMP TABLE _failing AS SELECT _file, _row, any_value(_delivery_date) AS "
                    "_delivery_date, string_agg(reason, '；' ORDER BY reason) AS reason FROM ("
                    + " UNION ALL ".join(parts) + ") GROUP BY _file, _row")
        n = con.execute("SELECT count(*) FROM _failing").fetchone()[0]
        if n:
            meta = {"_file", "_row", "_delivery_date", "_excel_damaged"}
            raw_cols = [c for c in table_columns(con, "raw", table) if c not in meta]
            struct = ", ".join(f"{q(c)} := r.{q(c)}" for c in raw_cols) or "x := NULL"
            con.execute(f"INSERT INTO audit.quarantine SELECT ?, ?, ?, f._file, f._delivery_date, f._row, f.reason, "
                        f"to_json(struct_pack({struct})) FROM _failing f "
                        f"LEFT JOIN raw.{q(table)} r ON r._file = f._file AND r._row = f._row", [run_date, source, table])
            targets = [table] + ([tspec.explode.table] if tspec.explode is not None else [])
            for target in targets:
                con.execute(f"DELETE FROM staging.{q(target)} s USING _failing f "
                            f"WHERE s._file = f._file AND s._row = f._row")
                forget_fingerprint(con, "staging", target)
            con.execute("""
                UPDATE audit.load_files l SET rows_staged = l.rows_staged - c.n,
                       rows_quarantined = l.rows_quarantined + c.n
                FROM (SELECT _file, count(*) AS n FROM _failing GROUP BY _file) c
                WHERE l.run_date = ? AND l.source = ? AND l.table_name = ? AND l.file_name = c._file""",
                        [run_date, source, table])
            moved += n
        con.execute("DROP TABLE IF EXISTS _failing")
    return moved


def note_failing_rows(con, source: str, expectations: list[Expectation], run_date: date) -> int:
    """List rows failing a keep-rows expectation in audit.row_notes (they stay in staging). Returns how many."""
    noted = 0
    for e in expectations:
        if not e.note_rows:
            continue
        noted += con.execute(
            f"INSERT INTO audit.row_notes SELECT ?, ?, ?, _file, _delivery_date, _row, {_reason_sql(e)} "
            f"FROM staging.{q(e.table)} WHERE {failing_predicate(e)}", [run_date, source, e.table]).fetchone()[0]
    return noted


def _reason_sql(exp: Expectation) -> str:
    """The quarantine reason, with the offending value (a code, a date, an amount: never an ID or a name)."""
    value = f"coalesce(CAST({q(exp.value_column or exp.column)} AS VARCHAR), '')"
    return f" || {value} || ".join(_lit(part) for part in exp.reason.split("{value}"))


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _finish(con, source, as_of, run_date, max_age, delivery_date, age, status, reason, results,
            sha: str | None = None, carried_from: date | None = None) -> dict:
    reason = mask_ids(reason) if reason else reason
    if results:
        con.executemany(
            "INSERT INTO audit.check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [(run_date, source, r.table, r.check, r.passed, r.observed, r.threshold, r.critical,
              mask_ids(r.message), r.engine) for r in results])
    con.execute("INSERT INTO audit.source_status (run_date, source, as_of, delivery_date, age_days, max_age_days, "
                "status, reason, decided_at, check_sha, carried_from) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, current_timestamp, ?, ?)",
                [run_date, source, as_of, delivery_date, age, max_age, status, reason, sha, carried_from])
    out = {"source": source, "status": status, "as_of": as_of, "run_date": run_date,
           "delivery_date": delivery_date, "age_days": age, "max_age_days": max_age, "reason": reason,
           "checks": [asdict(r) for r in results]}
    if carried_from is not None:
        out["carried_from"] = carried_from
    return out


def source_statuses(con: duckdb.DuckDBPyConnection, run_date: date) -> dict[str, dict]:
    """Tonight's verdict per source (what the rules stage consults before evaluating a rule)."""
    ensure_audit_tables(con)
    return {r["source"]: r for r in fetch_dicts(con, "SELECT * FROM audit.source_status WHERE run_date = ?", [run_date])}


def usable_sources(con: duckdb.DuckDBPyConnection, run_date: date) -> set[str]:
    return {s for s, r in source_statuses(con, run_date).items() if r["status"] in USABLE}
