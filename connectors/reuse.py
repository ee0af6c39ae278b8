"""A delivery whose bytes were already loaded is recognised and not loaded again.

Most sources deliver monthly while the night runs daily, so on most nights a source's newest delivery is
the one the warehouse already holds. When tonight's delivery is the delivery of the source's last load,
with the same files byte for byte (sha256), read under the same configuration, and staging still holds
exactly the rows that load staged, the night reuses staging as it is and copies that load's accounting
(files, quarantined rows) to tonight, so every night's audit stands on its own.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb

from connectors.landing import sha256_file
from crosscheck.settings import SourcesConfig

AUDIT_TABLES_COPIED = ("load_files", "quarantine")


def config_sha(cfg: SourcesConfig, source: str) -> str:
    """What decides how a source's files are read and staged: its spec and the shared date formats."""
    payload = {"spec": cfg.sources[source].model_dump(mode="json"), "defaults": cfg.defaults.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def reusable_load(con: duckdb.DuckDBPyConnection, source: str, run_date: date, delivery_date: date,
                  files: dict[str, list[Path]], cfg_sha: str) -> dict | None:
    """The earlier load tonight can stand on ({run_date, ...} of audit.source_loads), or None."""
    last = con.execute(
        "SELECT run_date, delivery_date, status, config_sha FROM audit.source_loads WHERE source = ? AND run_date < ? "
        "ORDER BY run_date DESC, loaded_at DESC LIMIT 1", [source, run_date]).fetchone()
    if last is None or last[1] != delivery_date or last[2] != "loaded" or last[3] != cfg_sha:
        return None
    earlier = con.execute(
        "SELECT table_name, file_name, sha256, status, rows_staged FROM audit.load_files WHERE source = ? AND run_date = ?",
        [source, last[0]]).fetchall()
    if any(status != "loaded" for _, _, _, status, _ in earlier):
        return None
    tonight = {(table, p.name): p for table, paths in files.items() for p in paths}
    if {(t, f) for t, f, *_ in earlier} != set(tonight):
        return None
    if any(sha256_file(tonight[(t, f)]) != sha for t, f, sha, _, _ in earlier):
        return None
    staged: dict[str, int] = {}
    for table, _, _, _, rows in earlier:
        staged[table] = staged.get(table, 0) + int(rows or 0)
    for table, rows in staged.items():
        try:
            have = con.execute(f'SELECT count(*) FROM staging."{table}" WHERE _delivery_date = ?',
                               [delivery_date]).fetchone()[0]
            total = con.execute(f'SELECT count(*) FROM staging."{table}"').fetchone()[0]
        except duckdb.Error:
            return None
        if have != rows or total != rows:
            return None
    return {"run_date": last[0]}


def copy_load(con: duckdb.DuckDBPyConnection, source: str, from_run: date, run_date: date) -> dict:
    """Tonight's accounting copied from the load being reused; returns the summed row counts."""
    con.execute("""
        INSERT INTO audit.load_files BY NAME
        SELECT * EXCLUDE (run_date, first_loaded_run, message, loaded_at), ? AS run_date,
               coalesce(first_loaded_run, run_date) AS first_loaded_run,
               concat_ws('; ', nullif(regexp_replace(coalesce(message, ''), '(; )?字节未变.*$', ''), ''), '字节未变，沿用 ' || strftime(coalesce(first_loaded_run, run_date), '%Y-%m-%d')
                   || ' 晚的装载结果，未重新读取 (bytes unchanged: the load of that night is reused, not read again)')
                   AS message,
               current_timestamp AS loaded_at
        FROM audit.load_files WHERE source = ? AND run_date = ?""", [run_date, source, from_run])
    con.execute("INSERT INTO audit.quarantine BY NAME SELECT * EXCLUDE (run_date), ? AS run_date FROM audit.quarantine "
                "WHERE source = ? AND run_date = ?", [run_date, source, from_run])
    read, staged, quarantined = con.execute(
        "SELECT sum(rows_read), sum(rows_staged), sum(rows_quarantined) FROM audit.load_files WHERE source = ? "
        "AND run_date = ?", [source, run_date]).fetchone()
    return {"rows_read": int(read or 0), "rows_staged": int(staged or 0), "rows_quarantined": int(quarantined or 0)}
