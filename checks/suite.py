"""The checks a delivery must pass before rules may use it, and the engine that runs them.

``validate_source`` (validate.py) builds a ``CheckContext`` and asks a ``CheckEngine`` for a list of
``CheckResult``; it never looks inside the checks. The engine here pushes every check down as SQL on the
staging tables and the load audit. A later engine (Great Expectations 1.x: one expectation suite per
table, results feeding Data Docs) only has to return the same ``CheckResult`` records; callers, the audit
tables and the status decision stay as they are.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import duckdb

from crosscheck.settings import SourceSpec, TableSpec, Thresholds
from crosscheck.warehouse import table_exists

FRESHNESS = "freshness"


@dataclass
class CheckResult:
    check: str                    # check name, e.g. valid_id_share
    table: str | None             # staging table the check is about; None for source-level checks
    passed: bool
    observed: float | None
    threshold: float | None
    critical: bool                # a failed critical check rejects the source for the night
    message: str                  # plain words, counts only: never an ID or a name
    engine: str = ""              # filled in with the engine's name when left empty


@dataclass
class CheckContext:
    con: duckdb.DuckDBPyConnection
    source: str
    spec: SourceSpec
    thresholds: Thresholds
    as_of: date
    run_date: date
    load: dict | None             # this night's audit.source_loads row for the source (None: not loaded)
    files: list[dict] = field(default_factory=list)   # this night's audit.load_files rows for the source

    def table_files(self, table: str) -> list[dict]:
        return [f for f in self.files if f["table_name"] == table]


class CheckEngine(Protocol):
    name: str

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        ...


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(con, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


# --- the SQL checks: each returns results for one table ----------------------------------------------------

def check_load_accepted(ctx: CheckContext, table: str, tspec: TableSpec) -> list[CheckResult]:
    files = ctx.table_files(table)
    rejected = [f for f in files if f["status"] != "loaded"]
    if not files:
        msg = f"{ctx.source} {table}: nothing was loaded for this table"
    elif rejected:
        msg = f"{ctx.source} {table}: {len(rejected)} of {len(files)} file(s) refused at load: " + "; ".join(
            (f["message"] or f["file_name"]) for f in rejected[:3])
    else:
        msg = f"{ctx.source} {table}: {len(files)} file(s) loaded"
    return [CheckResult("load_accepted", table, bool(files) and not rejected, float(len(rejected)), 0.0, True, msg)]


def check_required_columns(ctx: CheckContext, table: str, tspec: TableSpec) -> list[CheckResult]:
    required = {c for c, s in tspec.columns.items() if s.required}
    missing = sorted({c for f in ctx.table_files(table) for c in (f["missing_columns"] or []) if c in required})
    staged_cols = {r[0] for r in _rows(ctx.con, "SELECT column_name FROM information_schema.columns "
                                                 "WHERE table_schema = 'staging' AND table_name = ?", [table])}
    absent = sorted(s.name for s in tspec.columns.values() if s.name not in staged_cols)
    problems = missing + [f"(staging) {c}" for c in absent]
    msg = (f"{ctx.source} {table}: required column(s) missing: {', '.join(problems)}" if problems
           else f"{ctx.source} {table}: all {len(required)} required columns present")
    return [CheckResult("required_columns_present", table, not problems, float(len(problems)), 0.0, True, msg)]


def check_not_empty(ctx: CheckContext, table: str, tspec: TableSpec) -> list[CheckResult]:
    n = _rows(ctx.con, f"SELECT count(*) FROM staging.{_q(table)}")[0][0] if table_exists(ctx.con, "staging", table) else 0
    msg = f"{ctx.source} {table}: {n:,} rows staged"
    return [CheckResult("rows_staged", table, n > 0, float(n), 1.0, True, msg)]


def _id_columns(tspec: TableSpec) -> list[tuple[str, str]]:
    """(staging table suffix, canonical id column): the table's own ID columns and its exploded ones."""
    out = [("", s.name) for s in tspec.columns.values() if s.role == "id_number"]
    if tspec.explode is not None:
        out += [(tspec.explode.table, c) for c, role in tspec.explode.roles.items() if role == "id_number"]
    return out


def check_valid_id_share(ctx: CheckContext, table: str, tspec: TableSpec) -> list[CheckResult]:
    """Among non-empty ID cells that are meant to be personal IDs (organisation codes — letters inside,
    or 10 characters or fewer — are left out), the share that yields a usable 18-character ID."""
    results = []
    minimum = ctx.thresholds.min_valid_id_share
    for other, col in _id_columns(tspec):
        target = other or table
        if not table_exists(ctx.con, "staging", target):
            continue
        norm = "id_norm" if col == "id_number" else f"{col}_norm"
        status = "id_status" if col == "id_number" else f"{col}_status"
        clean = f"id_clean({_q(col)})"
        personal, usable, damaged = _rows(ctx.con, f"""
            SELECT count(*), count({_q(norm)}), count(*) FILTER ({_q(status)} = 'excel_damaged')
            FROM staging.{_q(target)}
            WHERE {_q(status)} <> 'empty' AND CASE WHEN {_q(status)} <> 'malformed' THEN true
                ELSE NOT regexp_matches(substr({clean}, 1, 17), '[A-Z]') AND length({clean}) > 10 END""")[0]
        share = usable / personal if personal else None
        passed = share is not None and share >= minimum
        msg = (f"{ctx.source} {target}.{col}: {usable:,} of {personal:,} personal IDs usable "
               f"({share:.1%}; minimum {minimum:.0%})" if personal else
               f"{ctx.source} {target}.{col}: no personal IDs at all")
        if damaged:
            msg += f"; {damaged:,} damaged by Excel (stored as numbers)"
        results.append(CheckResult("valid_id_share", target, passed, share, minimum, True, msg))
    return results


def check_quarantine_share(ctx: CheckContext, table: str, tspec: TableSpec) -> list[CheckResult]:
    files = ctx.table_files(table)
    read = sum(f["rows_read"] or 0 for f in files)
    quarantined = sum(f["rows_quarantined"] or 0 for f in files)
    maximum = ctx.thresholds.max_quarantine_share
    share = quarantined / read if read else None
    passed = share is not None and share <= maximum
    msg = (f"{ctx.source} {table}: {quarantined:,} of {read:,} rows quarantined ({share:.1%}; maximum {maximum:.0%})"
           if read else f"{ctx.source} {table}: no rows read")
    return [CheckResult("quarantine_share", table, passed, share, maximum, True, msg)]


def check_row_count_vs_previous(ctx: CheckContext, table: str, tspec: TableSpec) -> list[CheckResult]:
    delivery = ctx.load["delivery_date"] if ctx.load else None
    current = sum(f["rows_read"] or 0 for f in ctx.table_files(table))
    # the latest earlier delivery that validation accepted (ok or stale); failing that, any one loaded
    prev = _rows(ctx.con, """
        WITH per_night AS (
            SELECT f.delivery_date, f.run_date, sum(f.rows_read) AS rows_read,
                   bool_and(f.status = 'loaded') AS loaded, any_value(s.status) AS validated
            FROM audit.load_files f
            LEFT JOIN audit.source_status s ON s.run_date = f.run_date AND s.source = f.source
            WHERE f.source = ? AND f.table_name = ? AND f.delivery_date < ? AND f.run_date < ?
            GROUP BY f.delivery_date, f.run_date)
        SELECT delivery_date, rows_read FROM per_night WHERE loaded
        ORDER BY coalesce(validated IN ('ok', 'stale'), false) DESC, delivery_date DESC, run_date DESC
        LIMIT 1""", [ctx.source, table, delivery, ctx.run_date])
    lo, hi = ctx.thresholds.min_row_ratio_vs_previous, ctx.thresholds.max_row_ratio_vs_previous
    if not prev or not prev[0][1]:
        return [CheckResult("row_count_vs_previous", table, True, None, None, True,
                            f"{ctx.source} {table}: {current:,} rows; no earlier accepted delivery to compare with")]
    prev_date, prev_rows = prev[0]
    ratio = current / prev_rows
    passed = lo <= ratio <= hi
    bound = lo if ratio < lo else hi if ratio > hi else lo
    msg = (f"{ctx.source} {table}: {current:,} rows against {prev_rows:,} in the delivery of {prev_date} "
           f"(ratio {ratio:.2f}; allowed {lo:g}–{hi:g})")
    return [CheckResult("row_count_vs_previous", table, passed, ratio, bound, True, msg)]


TABLE_CHECKS: list[Callable[[CheckContext, str, TableSpec], list[CheckResult]]] = [
    check_load_accepted, check_required_columns, check_not_empty, check_valid_id_share,
    check_quarantine_share, check_row_count_vs_previous,
]


def check_freshness(ctx: CheckContext) -> CheckResult:
    delivery = ctx.load["delivery_date"]
    age = (ctx.as_of - delivery).days
    limit = ctx.spec.max_age_days
    msg = f"{ctx.source}: delivery of {delivery} is {age} day(s) old on {ctx.as_of} (maximum {limit})"
    return CheckResult(FRESHNESS, None, age <= limit, float(age), float(limit), True, msg)


def check_repeated_delivery(ctx: CheckContext) -> CheckResult:
    repeats = sorted({str(f["same_as_delivery"]) for f in ctx.files if f["same_as_delivery"] is not None})
    n = sum(1 for f in ctx.files if f["same_as_delivery"] is not None)
    msg = (f"{ctx.source}: {n} file(s) identical to an earlier delivery ({', '.join(repeats)})" if n
           else f"{ctx.source}: no file repeats an earlier delivery")
    return CheckResult("repeated_delivery", None, n == 0, float(n), 0.0, False, msg)


class SqlCheckEngine:
    """Every check as SQL against staging and the load audit."""

    name = "sql"

    def __init__(self, table_checks=None):
        self.table_checks = list(table_checks or TABLE_CHECKS)

    def run(self, ctx: CheckContext) -> list[CheckResult]:
        results = [check_freshness(ctx), check_repeated_delivery(ctx)]
        for table, tspec in ctx.spec.tables.items():
            for check in self.table_checks:
                results.extend(check(ctx, table, tspec))
        for r in results:
            r.engine = self.name
        return results
