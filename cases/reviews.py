"""Periodic reviews due (POLICY.md "The case ledger").

Households are reviewed by 分类管理: A yearly, B every six months (``review_months`` in
config/policy.yaml, overridable per district), counted from 救助开始日期 or the last review recorded in the
append-only ``ledger.reviews``. Each night lists in ``ledger.reviews_due`` the households whose review is
overdue or falls due within ``review_due_soon_days``, and in ``ledger.reviews_unscheduled`` those whose
class or start date is unknown, with the reason (cases/sql/reviews_due.sql). ``<out>/reviews_due.csv`` and
``<out>/reviews_unscheduled.csv`` carry both lists (household ids, no personal IDs or names).
"""
from __future__ import annotations

import codecs
import os
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from cases.ledger import ensure_ledger
from crosscheck.safety import make_private_dir, neutralise_sql, publish
from crosscheck.settings import PolicyConfig
from crosscheck.warehouse import table_exists

SQL = Path(__file__).with_name("sql")
DUE_COLUMNS = ["run_date", "household_id", "district", "township", "category", "management_class", "basis",
               "basis_date", "due_date", "status", "days_overdue_or_left"]
UNSCHEDULED_COLUMNS = ["run_date", "household_id", "district", "township", "category", "management_class",
                       "start_date", "last_review", "reason"]


def record_review(con: duckdb.DuckDBPyConnection, household_id: str, reviewed_on: date, source: str,
                  note: str | None = None) -> None:
    """Record a completed review; rows are only ever appended."""
    ensure_ledger(con)
    con.execute("INSERT INTO ledger.reviews VALUES (?, ?, ?, ?, ?)",
                [household_id, reviewed_on, source, note, datetime.now(timezone.utc).replace(tzinfo=None)])


def _review_params(con: duckdb.DuckDBPyConnection, policy: PolicyConfig) -> None:
    """review_interval / review_window: one row per roster district (NULL district: the defaults)."""
    districts = [r[0] for r in con.execute("SELECT DISTINCT district FROM staging.roster").fetchall()]
    intervals, windows = [], []
    for district in sorted(set(districts) | set(policy.districts), key=lambda d: (d is None, d or "")):
        params = policy.for_district(district)
        windows.append((district, params.review_due_soon_days))
        intervals += [(district, cls.strip().upper(), months) for cls, months in params.review_months.items()]
    con.execute("CREATE OR REPLACE TEMP TABLE review_interval (district VARCHAR, management_class VARCHAR,"
                " months INTEGER)")
    con.execute("CREATE OR REPLACE TEMP TABLE review_window (district VARCHAR, due_soon_days INTEGER)")
    con.executemany("INSERT INTO review_interval VALUES (?, ?, ?)", intervals)
    con.executemany("INSERT INTO review_window VALUES (?, ?)", windows)


def reviews_due(con: duckdb.DuckDBPyConnection, policy: PolicyConfig, as_of: date) -> dict:
    """Build ledger.reviews_due and ledger.reviews_unscheduled for the night; return the counts."""
    ensure_ledger(con)
    _review_params(con, policy)
    con.execute("SET VARIABLE as_of = ?::DATE", [as_of])
    con.execute((SQL / "reviews_due.sql").read_text(encoding="utf-8"))
    by_district: dict[str, dict[str, int]] = {}
    for district, status, n in con.execute(
            "SELECT coalesce(district, '（无区县）'), status, count(*) FROM ledger.reviews_due GROUP BY ALL"
            " ORDER BY ALL").fetchall():
        by_district.setdefault(district, {"overdue": 0, "due_soon": 0})[status] = int(n)
    unscheduled = con.execute("SELECT count(*) FROM ledger.reviews_unscheduled").fetchone()[0]
    return {"status": "evaluated", "reason": "",
            "overdue": sum(d["overdue"] for d in by_district.values()),
            "due_soon": sum(d["due_soon"] for d in by_district.values()),
            "unscheduled": int(unscheduled), "by_district": by_district}


def write_query_csv(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], order: str, path: Path) -> Path:
    """``table``'s ``columns`` in ``order`` as CSV the way cases.csv is written (UTF-8 with BOM, CRLF, quotes
    only where needed, empty for NULL and for an empty text, dates as YYYY-MM-DD, every text cell a
    spreadsheet would run as a formula neutralised), owner-only, replacing ``path`` in one step.

    Written by DuckDB's CSV writer rather than pandas: reviews_due.csv holds 259 k rows at scale 1, 2.6 s
    through a DataFrame and ``to_csv``, 0.4 s this way, byte for byte the same file
    (tests/test_reviews_due.py compares the two on awkward values)."""
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'ledger' AND table_name = ?", [table]).fetchall())

    def cell(column: str) -> str:
        kind = types[column]
        if kind == "DATE":
            return f"strftime({column}, '%Y-%m-%d') AS {column}"
        if kind == "VARCHAR":          # DuckDB quotes an empty text ("") to tell it from NULL; pandas writes nothing
            return f"nullif({neutralise_sql(column)}, '') AS {column}"
        return column

    select = ", ".join(cell(c) for c in columns)
    body = path.with_name(path.name + ".body")
    tmp = path.with_name(path.name + ".tmp")
    try:
        target = str(body).replace("'", "''")          # an out folder may have a quote in its name
        con.execute(f"COPY (SELECT {select} FROM ledger.{table} ORDER BY {order}) TO '{target}' "
                    "(FORMAT csv, HEADER true, NEW_LINE '\\r\\n')")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle, open(body, "rb") as rows:
            handle.write(codecs.BOM_UTF8)
            shutil.copyfileobj(rows, handle, 1 << 20)
    finally:
        body.unlink(missing_ok=True)
    return publish(tmp, path)


def write_reviews(con: duckdb.DuckDBPyConnection, out: Path) -> dict[str, Path]:
    """reviews_due.csv (overdue first) and reviews_unscheduled.csv, UTF-8 with BOM, owner-only."""
    make_private_dir(out)
    return {
        "reviews_due": write_query_csv(con, "reviews_due", DUE_COLUMNS,
                                       "status = 'due_soon', district, township, due_date, household_id",
                                       out / "reviews_due.csv"),
        "reviews_unscheduled": write_query_csv(con, "reviews_unscheduled", UNSCHEDULED_COLUMNS,
                                               "district, township, household_id", out / "reviews_unscheduled.csv"),
    }


def review_night(con: duckdb.DuckDBPyConnection, policy: PolicyConfig, as_of: date, out: Path,
                 roster_status: dict | None) -> dict:
    """What the night runs: the reviews due and both files, or nothing when tonight's roster is not
    usable (missing, stale or rejected), as for the rules; the summary then says why."""
    state = roster_status or {"status": "missing", "reason": "no delivery"}
    if state.get("status") != "ok" or not table_exists(con, "staging", "roster"):
        reason = f"roster: {state.get('status')} ({state.get('reason') or ''})".replace(" ()", "")
        return {"status": "skipped", "reason": reason, "overdue": 0, "due_soon": 0, "unscheduled": 0,
                "by_district": {}, "outputs": {}}
    result = reviews_due(con, policy, as_of)
    result["outputs"] = {k: str(v) for k, v in write_reviews(con, out).items()}
    return result
