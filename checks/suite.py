"""Check engines and the checks that read the load audit rather than the data.

``validate_source`` (validate.py) builds the night's ``Expectation`` list (expectations.py) and asks a
``CheckEngine`` to evaluate it; the engine returns one ``Observation`` per expectation and never decides
anything itself. Two engines keep the same contract:

* ``GxCheckEngine`` (gx_engine.py): Great Expectations 1.x on the DuckDB warehouse, results kept for the
  Data Docs. This is what the night runs.
* ``SqlCheckEngine`` (here): the same expectations as plain aggregate SQL, one query per table. It needs
  nothing but DuckDB; the tests hold the two engines to the same counts.

The few checks that are about the delivery rather than its rows (a file refused at load, a repeat of an
earlier delivery, the share of rows set aside) read ``audit.load_files`` and live here too.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Protocol

import duckdb

from checks.expectations import Expectation, Observation, column_sql, failing_predicate, q
from crosscheck.settings import SourceSpec, Thresholds
from crosscheck.warehouse import schema_columns


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

    def evaluate(self, con: duckdb.DuckDBPyConnection, expectations: list[Expectation], *, source: str,
                 run_date: date) -> list[Observation]:
        ...


# --- the SQL engine ---------------------------------------------------------------------------------------

class SqlCheckEngine:
    """Every expectation as aggregate SQL: one query per (table, where) group."""

    name = "sql"

    def evaluate(self, con, expectations, *, source, run_date):
        out: list[Observation | None] = [None] * len(expectations)
        present = schema_columns(con, "staging")
        groups: dict[tuple[str, str | None], list[int]] = {}
        for i, exp in enumerate(expectations):
            if exp.kind == "column_exists":
                found = exp.column in present.get(exp.table, set())
                out[i] = Observation(found, observed=None if found else exp.column)
            elif exp.table not in present:
                out[i] = Observation(False, 0, 0, None)
            elif exp.kind == "compound_unique":
                out[i] = _compound_unique(con, exp)
            else:
                groups.setdefault((exp.table, exp.where), []).append(i)
        for (table, where), idx in groups.items():
            aggs = []
            for i in idx:
                exp = expectations[i]
                col = column_sql(exp)
                if exp.kind in ("values_in_set", "values_between"):
                    aggs += [f"count({col})", f"count(*) FILTER ({_failing(exp)})"]
                elif exp.kind == "row_count_between":
                    aggs += ["count(*)", "NULL"]
                elif exp.kind == "max_between":
                    aggs += [f"max({col})", "NULL"]
            sql = f"SELECT {', '.join(aggs)} FROM staging.{q(table)}" + (f" WHERE {where}" if where else "")
            row = con.execute(sql).fetchone()
            for k, i in enumerate(idx):
                out[i] = _observation(expectations[i], row[2 * k], row[2 * k + 1])
        return out


def _failing(exp: Expectation) -> str:
    # the group's WHERE already restricts the rows; the predicate without it
    return failing_predicate(replace(exp, where=None))


def _observation(exp: Expectation, first, second) -> Observation:
    if exp.kind in ("values_in_set", "values_between"):
        n, bad = int(first or 0), int(second or 0)
        passed = n == 0 or (n - bad) / n >= exp.mostly
        return Observation(passed, n, bad, None)
    if exp.kind == "row_count_between":
        n = int(first or 0)
        passed = (exp.min_value is None or n >= exp.min_value) and (exp.max_value is None or n <= exp.max_value)
        return Observation(passed, n, None, n)
    # max_between
    value = first
    passed = value is not None and (exp.min_value is None or value >= exp.min_value) and (
        exp.max_value is None or value <= exp.max_value)
    return Observation(passed, None, None, value)


def _compound_unique(con, exp: Expectation) -> Observation:
    """Rows whose key (all key columns present) is shared with another row; every copy counts, as in GX."""
    keys = ", ".join(q(c) for c in exp.columns)
    present = " AND ".join(f"{q(c)} IS NOT NULL" for c in exp.columns)
    n, bad = con.execute(
        f"SELECT count(*), count(*) FILTER (n > 1) FROM (SELECT count(*) OVER (PARTITION BY {keys}) AS n "
        f"FROM staging.{q(exp.table)} WHERE {present})").fetchone()
    return Observation(n == 0 or (n - bad) / n >= exp.mostly, n, bad, None)


# --- checks on the load audit -------------------------------------------------------------------------------

def check_load_accepted(ctx: CheckContext, table: str) -> CheckResult:
    files = ctx.table_files(table)
    rejected = [f for f in files if f["status"] != "loaded"]
    if not files:
        msg = f"{ctx.source} {table}: 本表没有任何文件入库 (nothing was loaded for this table)"
    elif rejected:
        msg = (f"{ctx.source} {table}: {len(rejected)} / {len(files)} 个文件未入库 "
               f"({len(rejected)} of {len(files)} file(s) refused at load): "
               + "; ".join((f["message"] or f["file_name"]) for f in rejected[:3]))
    else:
        msg = f"{ctx.source} {table}: {len(files)} 个文件已入库 ({len(files)} file(s) loaded)"
    return CheckResult("load_accepted", table, bool(files) and not rejected, float(len(rejected)), 0.0, True, msg)


def check_required_columns(ctx: CheckContext, table: str) -> CheckResult:
    """Required columns the delivered header lacked (staging always has every configured column, filled
    with NULL, so this is read from the load audit rather than from the data)."""
    required = {d for d, cs in ctx.spec.tables[table].columns.items() if cs.required}
    missing = sorted({c for f in ctx.table_files(table) for c in (f["missing_columns"] or []) if c in required})
    msg = (f"{ctx.source} {table}: 缺少必填列 {'、'.join(f'「{c}」' for c in missing)} "
           f"(required column(s) missing: {', '.join(missing)})" if missing else
           f"{ctx.source} {table}: {len(required)} 个必填列齐全 (all {len(required)} required columns present)")
    return CheckResult("required_columns_present", table, not missing, float(len(missing)), 0.0, True, msg)


def check_quarantine_share(ctx: CheckContext, table: str) -> CheckResult:
    """After validation has set its rows aside too: more than the threshold rejects the source."""
    files = ctx.table_files(table)
    read = sum(f["rows_read"] or 0 for f in files)
    quarantined = sum(f["rows_quarantined"] or 0 for f in files)
    maximum = ctx.thresholds.max_quarantine_share
    share = quarantined / read if read else None
    passed = share is not None and share <= maximum
    msg = (f"{ctx.source} {table}: 隔离 {quarantined:,} / {read:,} 行 ({share:.1%}；上限 {maximum:.0%}) "
           f"({quarantined:,} of {read:,} rows quarantined; maximum {maximum:.0%})"
           if read else f"{ctx.source} {table}: 没有读到任何行 (no rows read)")
    return CheckResult("quarantine_share", table, passed, share, maximum, True, msg)


def check_repeated_delivery(ctx: CheckContext) -> CheckResult:
    repeats = sorted({str(f["same_as_delivery"]) for f in ctx.files if f["same_as_delivery"] is not None})
    n = sum(1 for f in ctx.files if f["same_as_delivery"] is not None)
    msg = (f"{ctx.source}: {n} 个文件与之前的交付（{', '.join(repeats)}）完全相同 "
           f"({n} file(s) identical to an earlier delivery)" if n
           else f"{ctx.source}: 没有文件重复之前的交付 (no file repeats an earlier delivery)")
    return CheckResult("repeated_delivery", None, n == 0, float(n), 0.0, False, msg)
