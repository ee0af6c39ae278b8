"""The audit tables the load and validate stages write (schema ``audit``), created on first use.

Every table carries ``run_date`` (the night) and ``source``; re-running a night deletes that night's rows
for the source first, so runs are idempotent. Column names avoid SQL keywords (table_name, file_name,
row_no, check_name).
"""
from __future__ import annotations

import duckdb

AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;

-- one row per source and night: what the loader did
CREATE TABLE IF NOT EXISTS audit.source_loads (
    run_date DATE, source VARCHAR, as_of DATE, delivery_date DATE,
    status VARCHAR,            -- loaded | rejected | missing
    message VARCHAR, seconds DOUBLE, loaded_at TIMESTAMP);

-- one row per delivered file (or per expected table that had no file); rows_read = rows_staged + rows_quarantined
CREATE TABLE IF NOT EXISTS audit.load_files (
    run_date DATE, source VARCHAR, table_name VARCHAR, file_name VARCHAR, delivery_date DATE,
    sha256 VARCHAR, bytes BIGINT, encoding VARCHAR,
    rows_read BIGINT, rows_staged BIGINT, rows_quarantined BIGINT,
    status VARCHAR,            -- loaded | rejected (the file or its table was refused; nothing staged)
    message VARCHAR,
    missing_columns VARCHAR[], extra_columns VARCHAR[],
    first_loaded_run DATE,     -- an earlier night that loaded exactly these bytes
    same_as_delivery DATE,     -- an earlier delivery date whose file had exactly these bytes (a repeat)
    loaded_at TIMESTAMP);

-- rows set aside: by the reader (wrong field count, bad JSON) or by staging (empty required value,
-- unparseable typed value). A rejected file/table has one row here with row_no NULL and the reason.
CREATE TABLE IF NOT EXISTS audit.quarantine (
    run_date DATE, source VARCHAR, table_name VARCHAR, file_name VARCHAR, delivery_date DATE,
    row_no BIGINT, reason VARCHAR,
    raw_record VARCHAR);       -- the delivered record as JSON (or as text); holds personal data

-- rows kept in staging but worth a steward's look (a registration dated after the delivery): validation
-- lists them here with the reason, so they are reported by file and row without being set aside
CREATE TABLE IF NOT EXISTS audit.row_notes (
    run_date DATE, source VARCHAR, table_name VARCHAR, file_name VARCHAR, delivery_date DATE,
    row_no BIGINT, reason VARCHAR);

-- the configuration a load was read under (connectors/reuse.py: a load is reused only under the same one)
ALTER TABLE audit.source_loads ADD COLUMN IF NOT EXISTS config_sha VARCHAR;

CREATE TABLE IF NOT EXISTS audit.check_results (
    run_date DATE, source VARCHAR, table_name VARCHAR, check_name VARCHAR,
    passed BOOLEAN, observed DOUBLE, threshold DOUBLE, critical BOOLEAN,
    message VARCHAR, engine VARCHAR, checked_at TIMESTAMP);

CREATE TABLE IF NOT EXISTS audit.source_status (
    run_date DATE, source VARCHAR, as_of DATE, delivery_date DATE, age_days INTEGER, max_age_days INTEGER,
    status VARCHAR,            -- ok | stale | missing | rejected
    reason VARCHAR, decided_at TIMESTAMP);

-- a load that reused an earlier night's load of the same bytes (connectors/reuse.py): that night
ALTER TABLE audit.source_loads ADD COLUMN IF NOT EXISTS reused_from DATE;
-- the check configuration a verdict was reached under (checks/validate.py: carried over only under the same)
ALTER TABLE audit.source_status ADD COLUMN IF NOT EXISTS check_sha VARCHAR;
-- the night whose checks were carried over to this one (bytes and check configuration unchanged)
ALTER TABLE audit.source_status ADD COLUMN IF NOT EXISTS carried_from DATE;
"""


def ensure_audit_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(AUDIT_DDL)
