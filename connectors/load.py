"""Load stage: one source's delivery into ``raw.<table>`` (as delivered, all text) and ``staging.<table>``
(canonical names and types, IDs and names normalised), with every row accounted for in ``audit``.

Per table and night:

* ``raw.<table>``: the delivered columns (VARCHAR) + ``_file``, ``_row``, ``_delivery_date``,
  ``_excel_damaged`` (``|col|`` for an XLSX cell that held a number too long to be an exact ID).
* ``staging.<table>``: the canonical columns of sources.yaml, typed; for a column with role id_number the
  delivered text plus ``<id>_norm`` / ``<id>_status`` (``id_norm``/``id_status`` for ``id_number``), for
  role person_name ``<name>_norm`` / ``<name>_key`` (``name_norm``/``name_key`` for ``name``); then
  ``_file``, ``_row``, ``_delivery_date``, ``_excel_damaged``.
* ``staging.<explode table>`` (property_owner): one row per co-owner, ``owner_seq`` 1-based.
* a row whose required value is empty or whose typed value does not parse goes to ``audit.quarantine``
  instead of staging; ``audit.load_files`` keeps rows_read = rows_staged + rows_quarantined per file.

A table that cannot be trusted as a whole (a file unreadable, cut off, or not matching MANIFEST.csv, a
part that MANIFEST.csv lists but that did not arrive, a required column missing, no file at all) is
rejected: its staging table is left empty, the rows stay in raw, and the source's load status is
``rejected``. A source with no delivery on or before the as-of date gets
empty raw and staging tables and status ``missing``. All of it is Arrow/DuckDB set operations; Python
touches single rows only for the few that are quarantined and for unusual names. Messages are for data
stewards: Chinese first, the English in parentheses; they name the file and, where there is one, the row.
"""
from __future__ import annotations

import fnmatch
import json
import time as _time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from connectors.audit import ensure_audit_tables
from connectors.base import (EXCEL_DAMAGED, RESERVED, ROW, Connector, DeliveredFile, QuarantinedRow, column_key,
                             mask_ids, mask_name, scrub_exception)
from connectors.files import FileConnector
from connectors.frontdb import FrontDbConnector, snapshot_date
from connectors.landing import ManifestEntry, delivery_dates, find_delivery, previous_delivery, sha256_file
from connectors.names import SIMPLE_NAME_RE, name_norm
from connectors.readahead import PlannedRead
from connectors.reuse import config_sha, copy_load, reusable_load
from crosscheck.settings import ColumnSpec, SourcesConfig, TableSpec, load_sources

META = ("_file", "_row", "_delivery_date", EXCEL_DAMAGED)
DECIMAL = "DECIMAL(18,4)"
_WS = " \t\r\n\u3000\u00a0"
_TYPE_WORDS = {
    "int": "不是整数 (not a whole number)",
    "decimal": "不是数字 (not a number)",
    "date": "不是可识别的日期 (not a recognisable date)",
    "timestamp": "不是可识别的日期时间 (not a recognisable date and time)",
    "month": "不是可识别的年月 (not a recognisable year and month)",
}


# --- small helpers ---------------------------------------------------------------------------------------

def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def trimmed(expr: str) -> str:
    """``expr`` without leading and trailing white space (_WS), NULL when nothing is left. Equal to
    ``nullif(trim(expr, _WS), '')``, but that trim costs about five times DuckDB's default trim on every
    value (0.7 s per address column of hukou's 2.9 M rows): a value whose first and last characters
    (code points, as trim sees them) are not white space is returned as it is, and only the others are
    trimmed. tests/test_connectors_load.py holds the two to the same results."""
    ws, value = lit(_WS), f"({expr})"     # parenthesised: NULL::VARCHAR[1] would be a cast to an array type
    return (f"CASE WHEN {expr} = '' THEN NULL "
            f"WHEN NOT contains({ws}, {value}[1]) AND NOT contains({ws}, {value}[-1]) THEN {expr} "
            f"ELSE nullif(trim({expr}, {ws}), '') END")


def derived_names(canonical: str, role: str | None) -> tuple[str, str] | None:
    """The two columns staging adds for a role column: (norm, status) for IDs, (norm, key) for names."""
    if role == "id_number":
        return ("id_norm", "id_status") if canonical == "id_number" else (f"{canonical}_norm", f"{canonical}_status")
    if role == "person_name":
        return ("name_norm", "name_key") if canonical == "name" else (f"{canonical}_norm", f"{canonical}_key")
    return None


def _header_key(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split()).upper()


@dataclass
class FileResult:
    table: str
    name: str
    sha256: str | None = None
    size: int | None = None
    encoding: str | None = None
    rows_read: int = 0
    rows_staged: int = 0
    rows_quarantined: int = 0
    status: str = "loaded"
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    first_loaded_run: date | None = None
    same_as_delivery: date | None = None
    reader_quarantine: list[QuarantinedRow] = field(default_factory=list)
    fatal: str | None = None  # why this file rejects its table


@dataclass
class TableResult:
    table: str
    files: list[FileResult] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # reasons the whole table is refused
    manifest_missing: list[str] = field(default_factory=list)  # listed in MANIFEST.csv for this table, not delivered
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return "rejected" if self.rejected else "loaded"


# --- public entry points ---------------------------------------------------------------------------------

def load_source(con: duckdb.DuckDBPyConnection, landing: Path, source: str, as_of: date, run_date: date,
                *, sources: SourcesConfig | None = None, reuse: bool = True) -> dict:
    """Load the newest delivery of ``source`` dated on or before ``as_of`` (see module docstring). With
    ``reuse`` false, a delivery the last load already staged byte for byte is read again all the same."""
    cfg = sources or load_sources()
    if source not in cfg.sources:
        raise KeyError(f"unknown source {source!r}; sources.yaml defines {sorted(cfg.sources)}")
    spec = cfg.sources[source]
    started = _time.perf_counter()
    ensure_audit_tables(con)
    _clear_night(con, source, run_date)
    if all(t.front_db is not None for t in spec.tables.values()):
        return _load_front_db(con, cfg, source, as_of, run_date, started)
    delivery = find_delivery(Path(landing), source, as_of, spec)
    if delivery is None:
        for table, tspec in spec.tables.items():
            _empty_tables(con, table, tspec, cfg.defaults)
        message = (f"{source}：未收到交付，落地区没有 {as_of} 当天或之前的交付 "
                   f"(no delivery dated on or before {as_of} in the landing zone)")
        later = [d for d in delivery_dates(Path(landing), source) if d > as_of]
        if later:
            message += (f"；最早的一次交付日期是 {later[0]}，晚于今晚，今晚不用 "
                        f"(the earliest delivery is dated {later[0]}, after the night)")
        _record_source(con, run_date, source, as_of, None, "missing", message, started)
        return {"source": source, "status": "missing", "as_of": as_of, "run_date": run_date,
                "delivery_date": None, "rows_read": 0, "rows_staged": 0, "rows_quarantined": 0,
                "tables": {}, "messages": [message],
                "seconds": round(_time.perf_counter() - started, 3)}
    reused = _reuse_earlier_load(con, cfg, source, as_of, run_date, delivery, started) if reuse else None
    if reused is not None:
        return reused
    connectors = {t: FileConnector(tspec, delivery.files.get(t, [])) for t, tspec in spec.tables.items()}
    return load_delivery(con, source, delivery.delivery_date, run_date, connectors, as_of=as_of,
                         manifest=delivery.manifest, notes=delivery.notes, sources=cfg, _started=started,
                         _cleared=True, previous=previous_delivery(Path(landing), source, delivery.delivery_date))


def plan_reads(con: duckdb.DuckDBPyConnection, landing: Path, as_of: date, run_date: date, *,
               sources: SourcesConfig | None = None, reuse: bool = True) -> list[PlannedRead]:
    """The files tonight's ``load_source`` calls will read, in the order they read them (sources in
    sources.yaml order, tables in spec order, files in delivery order): for the read-ahead
    (connectors/readahead.py). Left out: front-database sources, sources without a delivery, and, with
    ``reuse``, deliveries the last load staged byte for byte (those are not read again). A wrong guess costs
    only time: the loader reads any file the read-ahead does not hold itself."""
    cfg = sources or load_sources()
    ensure_audit_tables(con)
    plan: list[PlannedRead] = []
    for source, spec in cfg.sources.items():
        if all(t.front_db is not None for t in spec.tables.values()):
            continue
        delivery = find_delivery(Path(landing), source, as_of, spec)
        if delivery is None:
            continue
        if reuse and reusable_load(con, source, run_date, delivery.delivery_date, delivery.files,
                                   config_sha(cfg, source)) is not None:
            continue
        plan.extend(PlannedRead(path, tspec) for table, tspec in spec.tables.items()
                    for path in delivery.files.get(table, []))
    return plan


def _reuse_earlier_load(con, cfg: SourcesConfig, source: str, as_of: date, run_date: date, delivery,
                        started: float) -> dict | None:
    """Tonight's delivery is byte for byte the one the last load staged: keep staging, copy its accounting."""
    earlier = reusable_load(con, source, run_date, delivery.delivery_date, delivery.files, config_sha(cfg, source))
    if earlier is None:
        return None
    counts = copy_load(con, source, earlier["run_date"], run_date)
    message = (f"{source}：{delivery.delivery_date} 的交付已于 {earlier['run_date']} 晚装载，字节未变，未重新读取 "
               f"(the delivery of {delivery.delivery_date} was loaded on the night of {earlier['run_date']} and "
               "has not changed; not read again)")
    _record_source(con, run_date, source, as_of, delivery.delivery_date, "loaded", None, started, cfg,
                   reused_from=earlier["run_date"])
    return {"source": source, "status": "loaded", "as_of": as_of, "run_date": run_date,
            "delivery_date": delivery.delivery_date, **counts, "tables": {}, "messages": [message],
            "reused_from": earlier["run_date"], "seconds": round(_time.perf_counter() - started, 3)}


def _load_front_db(con, cfg: SourcesConfig, source: str, as_of: date, run_date: date, started: float) -> dict:
    """The source is read from the front database (前置库) instead of the landing zone."""
    spec = cfg.sources[source]
    try:
        snapshot = snapshot_date(next(iter(spec.tables.values())).front_db, as_of)
    except Exception as exc:
        snapshot, error = None, (f"{source}：前置库无法读取 "
                                 f"(the front database could not be read: {scrub_exception(exc)})")
    else:
        error = None if snapshot else (f"{source}：前置库没有 {as_of} 当天或之前的快照 "
                                       f"(no front-database snapshot dated on or before {as_of})")
    if snapshot is None:
        for table, tspec in spec.tables.items():
            _empty_tables(con, table, tspec, cfg.defaults)
        _record_source(con, run_date, source, as_of, None, "missing", error, started)
        return {"source": source, "status": "missing", "as_of": as_of, "run_date": run_date,
                "delivery_date": None, "rows_read": 0, "rows_staged": 0, "rows_quarantined": 0,
                "tables": {}, "messages": [error], "seconds": round(_time.perf_counter() - started, 3)}
    connectors = {t: FrontDbConnector(tspec, snapshot) for t, tspec in spec.tables.items()}
    return load_delivery(con, source, snapshot, run_date, connectors, as_of=as_of, sources=cfg,
                         _started=started, _cleared=True)


def load_delivery(con: duckdb.DuckDBPyConnection, source: str, delivery_date: date, run_date: date,
                  connectors: Mapping[str, Connector], *, as_of: date | None = None,
                  manifest: Mapping[str, ManifestEntry] | None = None, notes: list[str] | tuple = (),
                  sources: SourcesConfig | None = None, previous: tuple[date, list[Path]] | None = None,
                  _started: float | None = None, _cleared: bool = False) -> dict:
    """Load one delivery read through the given connectors (table → connector): files, a replay, later a
    front database. ``load_source`` is this plus finding the delivery folder. ``previous``: the delivery
    folder before this one (date, files), to recognise a delivery that repeats it byte for byte."""
    cfg = sources or load_sources()
    spec = cfg.sources[source]
    started = _started if _started is not None else _time.perf_counter()
    ensure_audit_tables(con)
    if not _cleared:
        _clear_night(con, source, run_date)
    messages = list(notes)
    results: dict[str, TableResult] = {}
    for table, tspec in spec.tables.items():
        connector = connectors.get(table)
        t_table = _time.perf_counter()
        try:
            con.execute("BEGIN TRANSACTION")
            result = _load_table(con, cfg, source, table, tspec, connector, delivery_date, run_date, manifest,
                                 previous)
            con.execute("COMMIT")
        except Exception as exc:  # a loader bug must not take the other tables/sources down silently
            con.execute("ROLLBACK")
            result = TableResult(table, rejected=[f"装载程序在这张表上出错，整表未用 "
                                                  f"(the loader failed on this table: {scrub_exception(exc)})"])
            try:
                _empty_tables(con, table, tspec, cfg.defaults)
            except Exception:
                pass
        result.seconds = round(_time.perf_counter() - t_table, 3)
        results[table] = result
        _write_file_audit(con, source, result, delivery_date, run_date)
        for fr in result.files:
            for note in fr.notes:
                messages.append(f"{source} {fr.name}: {note}")
        messages.extend(f"{source} {table}: {n}" for n in result.notes)
        messages.extend(f"{source} {table}：整表未用 (rejected) — {r}" for r in result.rejected)
    if manifest:
        seen = {fr.name for r in results.values() for fr in r.files}
        claimed = {name for r in results.values() for name in r.manifest_missing}
        for name in sorted(set(manifest) - seen - claimed):
            messages.append(f"{source}：MANIFEST.csv 列出的 {name} 没有交付 (MANIFEST.csv lists {name}, "
                            "which was not delivered)")
    status = "rejected" if any(r.rejected for r in results.values()) else "loaded"
    summary_msg = "; ".join(f"{t}: {'; '.join(r.rejected)}" for t, r in results.items() if r.rejected)
    _record_source(con, run_date, source, as_of, delivery_date, status, summary_msg or None, started, cfg)
    all_files = [f for r in results.values() for f in r.files]
    return {
        "source": source, "status": status, "as_of": as_of, "run_date": run_date, "delivery_date": delivery_date,
        "rows_read": sum(f.rows_read for f in all_files),
        "rows_staged": sum(f.rows_staged for f in all_files),
        "rows_quarantined": sum(f.rows_quarantined for f in all_files),
        "tables": {t: {"status": r.status,
                       "rows_read": sum(f.rows_read for f in r.files),
                       "rows_staged": sum(f.rows_staged for f in r.files),
                       "rows_quarantined": sum(f.rows_quarantined for f in r.files),
                       "seconds": r.seconds,
                       "files": [_file_summary(f) for f in r.files]}
                   for t, r in results.items()},
        "messages": [mask_ids(m) for m in messages],
        "seconds": round(_time.perf_counter() - started, 3),
    }


# --- one table ---------------------------------------------------------------------------------------------

def _load_table(con, cfg: SourcesConfig, source: str, table: str, tspec: TableSpec, connector: Connector | None,
                delivery_date: date, run_date: date, manifest: Mapping[str, ManifestEntry] | None,
                previous: tuple[date, list[Path]] | None = None) -> TableResult:
    result = TableResult(table)
    configured = list(tspec.columns)                        # delivered names, config order
    by_key = {_header_key(c): c for c in configured}
    raw_cols: list[str] = list(configured)
    con.execute(f"CREATE OR REPLACE TABLE raw.{q(table)} ("
                + ", ".join(f"{q(c)} VARCHAR" for c in configured)
                + ", _file VARCHAR, _row BIGINT, _delivery_date DATE, _excel_damaged VARCHAR)")
    for delivered in (connector.read() if connector is not None else iter(())):
        fr = _ingest_file(con, source, table, tspec, delivered, by_key, raw_cols, delivery_date, run_date, manifest,
                          previous)
        delivered.table = None   # its rows are in raw now: free them before the next file is read and staged
        result.files.append(fr)
        if fr.fatal:
            result.rejected.append(f"{fr.name}: {fr.fatal}")
    if manifest:   # a part that MANIFEST.csv promises for this table but that did not arrive
        delivered = {fr.name for fr in result.files}
        result.manifest_missing = sorted(n for n in manifest if n not in delivered
                                         and fnmatch.fnmatchcase(n.lower(), tspec.files.lower()))
        for name in result.manifest_missing:
            result.rejected.append(f"MANIFEST.csv 列出的 {name} 没有交付，交付不完整 "
                                   f"(MANIFEST.csv lists {name}, which was not delivered)")
    if not result.files:
        pattern = tspec.files
        result.rejected.append(f"没有符合 {pattern} 的文件 (no delivered file matches {pattern})")
        # the placeholder row of audit.load_files says all of it, a part MANIFEST.csv promised included
        result.files.append(FileResult(table, f"(no file matching {pattern})", status="rejected",
                                       fatal="；".join([f"没有交付文件 (no file matching {pattern})",
                                                       *result.rejected[:-1]])))
    if result.rejected:
        _stage(con, cfg.defaults, source, table, tspec, raw_cols, run_date, accept=False)
        for fr in result.files:
            fr.status = "rejected"
            fr.rows_staged, fr.rows_quarantined = 0, fr.rows_read
        return result
    staged, quarantined = _stage(con, cfg.defaults, source, table, tspec, raw_cols, run_date, accept=True)
    for fr in result.files:
        fr.rows_staged = staged.get(fr.name, 0)
        fr.rows_quarantined = len(fr.reader_quarantine) + quarantined.get(fr.name, 0)
        if fr.rows_staged + fr.rows_quarantined != fr.rows_read:  # a loader bug: refuse rather than mislead
            raise RuntimeError(f"row accounting mismatch in {fr.name}: read {fr.rows_read}, staged "
                               f"{fr.rows_staged}, quarantined {fr.rows_quarantined}")
    return result


def _ingest_file(con, source: str, table: str, tspec: TableSpec, delivered: DeliveredFile, by_key: dict,
                 raw_cols: list[str], delivery_date: date, run_date: date,
                 manifest: Mapping[str, ManifestEntry] | None,
                 previous: tuple[date, list[Path]] | None = None) -> FileResult:
    fr = FileResult(table, delivered.name, delivered.sha256, delivered.size, delivered.encoding,
                    rows_read=delivered.rows_read, notes=list(delivered.notes),
                    reader_quarantine=list(delivered.quarantined))
    if delivered.sha256:
        prior = con.execute(
            "SELECT min(run_date), min(delivery_date) FILTER (WHERE delivery_date < ?) FROM audit.load_files "
            "WHERE sha256 = ? AND run_date < ? AND source = ? AND status = 'loaded'",
            [delivery_date, delivered.sha256, run_date, source]).fetchall()[0]
        fr.first_loaded_run, fr.same_as_delivery = prior
        if fr.same_as_delivery is None and previous is not None:   # not loaded before, but still in the landing zone
            prev_date, prev_files = previous
            for path in prev_files:   # hash only files of exactly the same size
                if delivered.size is not None and path.stat().st_size == delivered.size \
                        and sha256_file(path) == delivered.sha256:
                    fr.same_as_delivery = prev_date
                    break
        if fr.same_as_delivery is not None:
            fr.notes.append(f"与 {fr.same_as_delivery} 的交付逐字节相同，部门可能重发了旧数据 "
                            f"(identical to the file of the delivery of {fr.same_as_delivery}: "
                            "the department may have sent old data again)")
    if delivered.error or delivered.table is None:
        fr.fatal = delivered.error or "文件无法读取 (the file could not be read)"
        fr.status = "rejected"
        fr.rows_read = 0
        fr.reader_quarantine = []
        return fr
    fatal: list[str] = [delivered.broken] if delivered.broken else []
    tbl = delivered.table
    # map delivered headers onto configured names (exact, else ignoring width/space/case)
    names = []
    for col in tbl.column_names:
        if col in (ROW, EXCEL_DAMAGED) or col in tspec.columns:
            names.append(col)
            continue
        match = by_key.get(_header_key(col))
        if match and match not in tbl.column_names and match not in names:
            fr.notes.append(f"列名「{col}」按「{match}」读取 (column {col} read as {match})")
            names.append(match)
        else:
            names.append(col)
    _unique_extras(names, tspec, raw_cols, fr)
    tbl = tbl.rename_columns(names)
    present = set(names)
    for col, cspec in tspec.columns.items():
        if col not in present:
            fr.missing.append(col)
    fr.extra = [c for c in names if c not in tspec.columns and c not in (ROW, EXCEL_DAMAGED)]
    missing_required = [c for c in fr.missing if tspec.columns[c].required]
    # a file without a header row has data values as column names: never repeat those. When at least half
    # of the configured columns are there, the first row is a header and an extra name is a renamed column.
    is_header = 2 * (len(tspec.columns) - len(fr.missing)) >= len(tspec.columns)
    extra_shown = [mask_name(c) for c in fr.extra] if (not missing_required or is_header) else []
    if missing_required:
        cols = "、".join(missing_required)
        text = f"缺少必填列：{cols}"
        if extra_shown:
            text += f"；多出的列：{'、'.join(extra_shown)}，可能是列名被改了"
        fatal.append(f"{text} (required column(s) missing: {', '.join(missing_required)}"
                     + (f"; unexpected column(s): {', '.join(extra_shown)}, perhaps renamed)" if extra_shown
                        else ")"))
    optional_missing = [c for c in fr.missing if not tspec.columns[c].required]
    if optional_missing:
        fr.notes.append(f"缺少非必填列，按空值处理：{'、'.join(optional_missing)} "
                        f"(optional column(s) missing, left empty: {', '.join(optional_missing)})")
    if fr.extra and not missing_required:
        fr.notes.append(f"多出的列已忽略：{'、'.join(extra_shown)} (extra column(s) ignored: {', '.join(extra_shown)})"
                        if extra_shown else
                        f"有 {len(fr.extra)} 个未约定的列，第一行可能不是表头 "
                        f"({len(fr.extra)} unexpected column(s); the first row may not be a header)")
    elif fr.extra and not extra_shown:
        fatal.append(f"有 {len(fr.extra)} 个未约定的列，第一行可能不是表头 "
                     f"({len(fr.extra)} unexpected column(s); the first row may not be a header)")
    if manifest is not None:
        entry = manifest.get(delivered.name)
        if entry is None:
            fr.notes.append("MANIFEST.csv 里没有这个文件 (not listed in MANIFEST.csv)")
        else:
            problems = []
            if entry.rows is not None and entry.rows != delivered.rows_read:
                problems.append(f"读到 {delivered.rows_read} 行，MANIFEST.csv 写的是 {entry.rows} 行 "
                                f"({delivered.rows_read} rows read, MANIFEST.csv says {entry.rows})")
            if entry.sha256 and delivered.sha256 and entry.sha256.lower() != delivered.sha256.lower():
                problems.append("文件的 sha256 与 MANIFEST.csv 不符，内容被改动或损坏 (sha256 differs from MANIFEST.csv)")
            if problems:
                fatal.append("交付与 MANIFEST.csv 不符 (broken delivery)：" + "；".join(problems))
    if fatal:
        fr.fatal = "；".join(fatal)
        fr.status = "rejected"
    for col in fr.extra:
        if col not in raw_cols:
            con.execute(f"ALTER TABLE raw.{q(table)} ADD COLUMN {q(col)} VARCHAR")
            raw_cols.append(col)
    con.register("_ingest", tbl)
    try:
        con.execute(f"INSERT INTO raw.{q(table)} BY NAME SELECT *, ? AS _file, ?::DATE AS _delivery_date "
                    "FROM _ingest", [delivered.name, delivery_date])
    finally:
        con.unregister("_ingest")
    return fr


def _unique_extras(names: list[str], tspec: TableSpec, raw_cols: list[str], fr: FileResult) -> None:
    """Rename (in place) a delivered extra column whose name DuckDB would take for one raw.<table> already
    has: a configured column in other letter case ("hphm" beside HPHM), an extra column of an earlier file
    ("X" after "x"), or a column the loader adds (_file). Exactly the same name is the same column."""
    taken = {column_key(c) for c in (*raw_cols, *RESERVED)}
    for k, col in enumerate(names):
        if col in (ROW, EXCEL_DAMAGED) or col in tspec.columns or col in raw_cols:
            continue
        if column_key(col) in taken:
            n = 2
            while column_key(f"{col}__{n}") in taken:
                n += 1
            names[k] = f"{col}__{n}"
            fr.notes.append(f"列名「{mask_name(col)}」与另一列只差大小写，记为 {mask_name(names[k])} "
                            f"(column {mask_name(col)} differs from another column only in upper/lower case; "
                            f"it is called {mask_name(names[k])})")
        taken.add(column_key(names[k]))


def _stage(con, defaults, source: str, table: str, tspec: TableSpec, raw_cols: list[str],
           run_date: date, accept: bool) -> tuple[dict[str, int], dict[str, int]]:
    """raw.<table> → staging.<table> (+ explode table); quarantine rows that fail. Returns per-file counts
    (staged, quarantined by staging). With accept=False only creates the empty staging tables."""
    raw_present = set(raw_cols)
    inner, reasons = [], []
    for i, (delivered, cs) in enumerate(tspec.columns.items()):
        src = q(delivered) if delivered in raw_present else "NULL::VARCHAR"
        t = f"_t{i}"
        value = trimmed(src)
        inner.append(f"{value} AS {t}")
        inner.append(f"{_typed_expr(src, value, cs, defaults)} AS {q(cs.name)}")
        label = f"「{delivered}」"
        if cs.required:
            reasons.append(f"CASE WHEN {t} IS NULL THEN {lit(f'必填列{label}为空 (required column {delivered} is empty)')} END")
        if cs.type != "text":
            reasons.append(f"CASE WHEN {t} IS NOT NULL AND {q(cs.name)} IS NULL THEN "
                           f"{lit(label + _TYPE_WORDS[cs.type])} END")
    # An exact duplicate of an earlier row of the same delivery (every delivered value equal) would be
    # counted twice (two bank balances, two tax rows): the later copies are quarantined, not dropped.
    _exact_duplicates(con, table, raw_cols, accept and not tspec.keep_exact_duplicates)
    inner.append("d._dup_of")
    reasons.append("CASE WHEN _dup_of IS NOT NULL THEN '与' || _dup_of || '完全重复 (exact duplicate row)' END")
    # The typed rows are a view, not a table: materialising every typed row (a temp table the shape of
    # staging.si_contribution holds 1.2 GB at scale 1) cost more than computing the typed values twice, once
    # for the few rows that fail and once into staging. Only the failing rows are kept (_bad_<table>), and
    # staging is the rest.
    typed, bad = f"_typed_{table}", f"_bad_{table}"
    drop = ", ".join([f"_t{i}" for i in range(len(tspec.columns))] + ["_dup_of"])
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {q(typed)} AS SELECT * EXCLUDE ({drop}), "
        f"concat_ws('；', {', '.join(reasons)}) AS _reason FROM ("
        f"SELECT {', '.join(inner)}, _file, _row, _delivery_date, _excel_damaged FROM raw.{q(table)} "
        f"LEFT JOIN _dups d USING (_file, _row)"
        + (") " if accept else " WHERE false) "))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(bad)} AS SELECT _file, _row, _reason FROM {q(typed)} "
                "WHERE _reason <> ''")
    quarantined: dict[str, int] = {}
    if accept:
        struct = ", ".join(f"{q(c)} := {q(c)}" for c in raw_cols)
        con.execute(
            f"INSERT INTO audit.quarantine SELECT ?, ?, ?, r._file, r._delivery_date, r._row, t._reason, "
            f"to_json(struct_pack({struct})) FROM raw.{q(table)} r JOIN {q(bad)} t USING (_file, _row)",
            [run_date, source, table])
        quarantined = dict(con.execute(f"SELECT _file, count(*) FROM {q(bad)} GROUP BY _file").fetchall())
    canon = [(delivered, cs) for delivered, cs in tspec.columns.items()]
    _name_map(con, typed, [cs.name for _, cs in canon if cs.role == "person_name"])
    cols = [(cs.name, cs.role, delivered) for delivered, cs in canon]
    select, rel = _derived_select(
        con, cols, f"(SELECT * EXCLUDE (_reason) FROM {q(typed)} ANTI JOIN {q(bad)} USING (_file, _row))", "s")
    con.execute(f"CREATE OR REPLACE TABLE staging.{q(table)} AS SELECT {select}, "
                f"s._file, s._row, s._delivery_date, s._excel_damaged FROM {rel}")
    staged = dict(con.execute(f"SELECT _file, count(*) FROM staging.{q(table)} GROUP BY _file").fetchall())
    if tspec.explode is not None:
        _explode(con, table, tspec)
    con.execute(f"DROP VIEW IF EXISTS {q(typed)}")
    for temp in [bad, "_names", "_dups", *(f"_ids{k}" for k in range(len(tspec.columns)))]:
        con.execute(f"DROP TABLE IF EXISTS {q(temp)}")
    return staged, quarantined


def _exact_duplicates(con, table: str, raw_cols: list[str], look: bool) -> None:
    """TEMP _dups(_file, _row, _dup_of): every later copy of a row whose delivered values all equal an earlier
    row's, with where the first copy is. Rows are first grouped by a 64-bit hash of their values (cheap, one
    pass) and only rows sharing a hash are compared value by value, so a hash collision never merges rows."""
    con.execute("CREATE OR REPLACE TEMP TABLE _dups (_file VARCHAR, _row BIGINT, _dup_of VARCHAR)")
    if not look or not raw_cols:
        return
    values = ", ".join(q(c) for c in raw_cols)
    con.execute(f"""
        INSERT INTO _dups
        WITH hashed AS (SELECT _file, _row, hash({values}) AS h, {values} FROM raw.{q(table)}),
        shared AS (SELECT h FROM hashed GROUP BY h HAVING count(*) > 1),
        candidates AS (SELECT * FROM hashed WHERE h IN (SELECT h FROM shared)),
        ranked AS (
            SELECT _file, _row,
                   row_number() OVER (PARTITION BY {values} ORDER BY _file, _row) AS copy_no,
                   first_value(_file || ' 第 ' || _row || ' 行') OVER (PARTITION BY {values}
                                                                     ORDER BY _file, _row) AS first_copy
            FROM candidates)
        SELECT _file, _row, first_copy FROM ranked WHERE copy_no > 1""")


def _typed_expr(src: str, t: str, cs: ColumnSpec, defaults) -> str:
    if cs.type == "text":
        return f"nullif({src}, '')" if cs.role else t
    if cs.type == "int":
        n = f"replace({t}, ',', '')"
        return f"CASE WHEN regexp_full_match({n}, '[+-]?[0-9]+(\\.0*)?') THEN TRY_CAST({n} AS DECIMAL(38,6))::BIGINT END"
    if cs.type == "decimal":
        n = f"replace(replace({t}, ',', ''), '，', '')"
        return f"TRY_CAST({n} AS {DECIMAL})"
    serial = (f"CASE WHEN regexp_full_match({t}, '[1-9][0-9]{{4}}(\\.[0-9]+)?') "
              f"THEN DATE '1899-12-30' + CAST(floor(TRY_CAST({t} AS DOUBLE)) AS INTEGER) END")
    if cs.type in ("date", "timestamp"):
        fmts = cs.formats or defaults.date_formats
        parsed = f"try_strptime({t}, [{', '.join(lit(f) for f in fmts)}])"
        if cs.type == "date":
            return f"coalesce(CAST({parsed} AS DATE), {serial})"
        return f"coalesce({parsed}, CAST({serial} AS TIMESTAMP))"
    if cs.type == "month":
        fmts = cs.formats or defaults.month_formats
        as_month = f"try_strptime({t}, [{', '.join(lit(f) for f in fmts)}])"
        as_date = f"try_strptime({t}, [{', '.join(lit(f) for f in defaults.date_formats)}])"
        return f"CAST(date_trunc('month', coalesce({as_month}, {as_date})) AS DATE)"
    raise ValueError(f"unknown column type {cs.type}")


# ID status, exactly as the id_clean()/id_status() macros of crosscheck/sql/id_macros.sql decide it, but
# computed once per row in layers: the macro cleans its argument four times and sums the check digit with
# a lambda, which costs ~25 s on the 2.9 M rows of hukou; this costs ~2.5 s.
# tests/test_connectors_load.py holds these expressions to the macros.
_FAST_CLEAN = ("CASE WHEN regexp_full_match({raw}, '[0-9]{{17}}[0-9X]|[0-9]{{15}}') THEN {raw} "
               "ELSE id_clean({raw}) END")   # already clean: id_clean() would return it unchanged
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHAR = ("substr('10X98765432', (("
               + " + ".join(f"(ascii({{c}}[{i + 1}]) - 48) * {w}" for i, w in enumerate(_WEIGHTS))
               + ") % 11)::INTEGER + 1, 1)")
_STATUS_ON_CLEAN = """CASE
    WHEN {c} = '' THEN 'empty'
    WHEN regexp_full_match({c}, '[0-9]{{15}}') THEN 'upgraded15'
    WHEN NOT regexp_full_match({c}, '[0-9]{{17}}[0-9X]') THEN 'malformed'
    WHEN CHECK <> {c}[18] THEN 'bad_check'
    ELSE 'valid' END""".replace("CHECK", _CHECK_CHAR.replace("{", "{{").replace("}", "}}").replace("{{c}}", "{c}"))


def id_sql(raw: str) -> tuple[str, str]:
    """(cleaned, status) SQL expressions for an ID column expression ``raw`` (for tests and ad-hoc use)."""
    clean = _FAST_CLEAN.format(raw=f"coalesce({raw}, '')")
    return clean, _STATUS_ON_CLEAN.format(c=f"({clean})")


def _id_lookup(con, relation: str, col: str, k: int) -> str:
    """TEMP table ``_ids{k}`` (raw, status, norm) over the distinct values of ``col``: deriving on distinct
    values and joining back is faster than deriving per row, even when every value is distinct."""
    clean = _FAST_CLEAN.format(raw="raw")
    status = _STATUS_ON_CLEAN.format(c="c")
    # text that shows a number in scientific notation (4.20802E+17) can only come from a spreadsheet;
    # "ends in 000" alone is no evidence in text: real IDs do end in 000
    damaged = "(f = 'malformed' AND regexp_full_match(c, '[0-9]+(\\.[0-9]+)?E[+]?[0-9]+'))"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ids{k} AS
        SELECT raw, f AS fmt,
               CASE WHEN {damaged} THEN 'excel_damaged' ELSE f END AS status,
               CASE WHEN {damaged} THEN NULL WHEN f = 'valid' THEN c WHEN f = 'upgraded15' THEN id_upgrade15(c)
               END AS norm
        FROM (SELECT raw, c, {status} AS f FROM (
              SELECT raw, {clean} AS c FROM (SELECT DISTINCT {q(col)} AS raw FROM {relation} WHERE {q(col)} IS NOT NULL)))""")
    return f"_ids{k}"


def _with_derived(con, base: str, alias: str, ids: list[tuple[str, str | None]],
                  names: list[str]) -> tuple[str, dict, dict]:
    """``base`` (a relation) joined to lookups for its ID and name columns. Returns (FROM clause,
    {id col: (norm, status) SQL}, {name col: (norm, key) SQL}); expressions refer to ``alias``."""
    joins = []
    id_sql: dict[str, tuple[str, str]] = {}
    for k, (col, marker) in enumerate(ids):
        lookup = _id_lookup(con, base, col, k)
        j = f"_i{k}"
        joins.append(f"LEFT JOIN {lookup} {j} ON {j}.raw = {alias}.{q(col)}")
        if marker:   # an XLSX cell that held a number: damaged whatever its digits look like
            hit = f"contains(coalesce({alias}._excel_damaged, ''), {lit('|' + marker + '|')})"
            status = f"CASE WHEN {j}.raw IS NULL THEN 'empty' WHEN {hit} AND {j}.fmt <> 'empty' THEN 'excel_damaged' ELSE {j}.status END"
            norm = f"CASE WHEN {hit} THEN NULL ELSE {j}.norm END"
        else:
            status = f"coalesce({j}.status, 'empty')"
            norm = f"{j}.norm"
        id_sql[col] = (norm, status)
    name_sql: dict[str, tuple[str, str]] = {}
    for k, col in enumerate(names):
        j = f"_n{k}"
        joins.append(f"LEFT JOIN _names {j} ON {j}.raw = {alias}.{q(col)}")
        c = f"{alias}.{q(col)}"
        norm = (f"CASE WHEN {c} IS NULL THEN NULL WHEN regexp_full_match({c}, {lit(SIMPLE_NAME_RE)}) THEN {c} "
                f"ELSE {j}.norm END")
        name_sql[col] = (norm, f"replace({norm}, '·', '')")
    return f"{base} {alias} {' '.join(joins)}", id_sql, name_sql


def _derived_select(con, columns: list[tuple[str, str | None, str | None]], base: str,
                    alias: str) -> tuple[str, str]:
    """SELECT list + FROM for ``columns`` = (name, role, excel marker): each column, and right after a
    role column its two derived columns."""
    ids = [(c, marker) for c, role, marker in columns if role == "id_number"]
    names = [c for c, role, _ in columns if role == "person_name"]
    rel, id_sql, name_sql = _with_derived(con, base, alias, ids, names)
    select = []
    for col, role, _ in columns:
        select.append(f"{alias}.{q(col)}")
        extra = derived_names(col, role)
        if role == "id_number":
            norm, status = id_sql[col]
            select += [f"{norm} AS {q(extra[0])}", f"{status} AS {q(extra[1])}"]
        elif role == "person_name":
            norm, key = name_sql[col]
            select += [f"{norm} AS {q(extra[0])}", f"{key} AS {q(extra[1])}"]
    return ", ".join(select), rel


def _name_map(con, relation: str, name_cols: list[str]) -> None:
    """TEMP table _names(raw, norm) for the distinct names that are not already in normal form."""
    if name_cols:
        union = " UNION ".join(
            f"SELECT DISTINCT {q(c)} AS raw FROM {q(relation)} WHERE {q(c)} IS NOT NULL "
            f"AND NOT regexp_full_match({q(c)}, {lit(SIMPLE_NAME_RE)})" for c in name_cols)
        odd = [r[0] for r in con.execute(union).fetchall()]
    else:
        odd = []
    norms = [name_norm(v) for v in odd]
    con.register("_names_in", pa.table({"raw": pa.array(odd, pa.string()), "norm": pa.array(norms, pa.string())}))
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _names AS SELECT * FROM _names_in")
    finally:
        con.unregister("_names_in")


def _explode(con, table: str, tspec: TableSpec) -> None:
    """staging.<explode.table>: one row per co-owner of a unit (cells split on the separator), with the
    unit's other staging columns; ``owners_mismatch`` when the lists have different lengths."""
    ex = tspec.explode
    split_cols = list(ex.columns)                      # canonical columns of the unit that hold lists
    delivered_of = {cs.name: d for d, cs in tspec.columns.items()}
    unit_cols = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging' AND table_name = ? "
        "ORDER BY ordinal_position", [table]).fetchall()]
    keep = [c for c in unit_cols if c not in split_cols and c not in META]
    sep = lit(ex.separator)
    arrays = ", ".join(f"string_split(coalesce({q(c)}, ''), {sep}) AS {q('_l_' + c)}" for c in split_cols)
    lens = [f"len({q('_l_' + c)})" for c in split_cols]
    span = f"greatest({', '.join(lens)})" if len(lens) > 1 else lens[0]
    mismatch = f"({' OR '.join(f'{a} <> {span}' for a in lens)})" if len(lens) > 1 else "false"
    picks = ", ".join(f"{trimmed(q('_l_' + c) + '[owner_seq]')} AS {q(ex.columns[c])}"
                      for c in split_cols)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _exploded AS SELECT {', '.join(q(c) for c in keep)}, owner_seq, {picks}, "
        f"{mismatch} AS owners_mismatch, _file, _row, _delivery_date, _excel_damaged FROM ("
        f"SELECT *, unnest(range(1, {span} + 1)) AS owner_seq FROM ("
        f"SELECT *, {arrays} FROM staging.{q(table)}))")
    # an Excel-damaged cell (a number) marks the values split from it too
    cols = [(new, ex.roles.get(new), delivered_of.get(src)) for src, new in ex.columns.items()]
    _name_map(con, "_exploded", [c for c, role, _ in cols if role == "person_name"])
    select, rel = _derived_select(con, cols, "_exploded", "e")
    con.execute(
        f"CREATE OR REPLACE TABLE staging.{q(ex.table)} AS SELECT {', '.join(f'e.{q(c)}' for c in keep)}, "
        f"e.owner_seq, {select}, e.owners_mismatch, e._file, e._row, e._delivery_date "
        f"FROM {rel}")
    con.execute("DROP TABLE IF EXISTS _exploded")


def _empty_tables(con, table: str, tspec: TableSpec, defaults) -> None:
    """Empty raw and staging tables with the configured shape (a missing source, a failed load)."""
    cols = list(tspec.columns)
    con.execute(f"CREATE OR REPLACE TABLE raw.{q(table)} ("
                + ", ".join(f"{q(c)} VARCHAR" for c in cols)
                + ", _file VARCHAR, _row BIGINT, _delivery_date DATE, _excel_damaged VARCHAR)")
    _stage(con, defaults, "", table, tspec, cols, date.today(), accept=False)


# --- audit -------------------------------------------------------------------------------------------------

def _clear_night(con, source: str, run_date: date) -> None:
    for tbl in ("load_files", "quarantine", "source_loads"):
        con.execute(f"DELETE FROM audit.{tbl} WHERE run_date = ? AND source = ?", [run_date, source])


def _write_file_audit(con, source: str, result: TableResult, delivery_date: date, run_date: date) -> None:
    rows, qrows = [], []
    for fr in result.files:
        message_parts = []
        if fr.fatal:
            message_parts.append(fr.fatal)
        elif result.rejected:
            message_parts.append("同表其他文件有问题，整表未用 (table rejected)：" + "；".join(result.rejected))
        message_parts.extend(fr.notes)
        if fr.first_loaded_run is not None and fr.same_as_delivery is None:
            message_parts.append(f"这些字节已在 {fr.first_loaded_run} 晚装载过 "
                                 f"(same bytes already loaded on the night of {fr.first_loaded_run})")
        rows.append((run_date, source, result.table, fr.name, delivery_date, fr.sha256, fr.size, fr.encoding,
                     fr.rows_read, fr.rows_staged, fr.rows_quarantined, fr.status,
                     mask_ids(f"{source} {fr.name}: " + "; ".join(message_parts)) if message_parts else None,
                     fr.missing, [mask_name(c) for c in fr.extra] if len(fr.missing) < 2 else [],
                     fr.first_loaded_run, fr.same_as_delivery))
        if result.rejected:
            reason = fr.fatal or ("同表其他文件有问题，整表未用 (table rejected)：" + "；".join(result.rejected))
            qrows.append((run_date, source, result.table, fr.name, delivery_date, None,
                          f"整个文件未入库 (whole file set aside): {reason}", None))
        else:
            for qr in fr.reader_quarantine:
                qrows.append((run_date, source, result.table, fr.name, delivery_date, qr.row, qr.reason,
                              json.dumps({"_text": qr.raw}, ensure_ascii=False)))
    if rows:
        con.executemany("INSERT INTO audit.load_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                        "current_timestamp)", rows)
    if qrows:
        _insert_quarantine(con, qrows)


def _insert_quarantine(con, qrows: list[tuple]) -> None:
    cols = ["run_date", "source", "table_name", "file_name", "delivery_date", "row_no", "reason", "raw_record"]
    data = pa.table({c: pa.array([r[i] for r in qrows]) if any(r[i] is not None for r in qrows)
                     else pa.nulls(len(qrows), pa.string()) for i, c in enumerate(cols)})
    con.register("_q_in", data)
    try:
        con.execute(f"INSERT INTO audit.quarantine BY NAME SELECT {', '.join(cols)} FROM _q_in")
    finally:
        con.unregister("_q_in")


def _record_source(con, run_date, source, as_of, delivery_date, status, message, started,
                   cfg: SourcesConfig | None = None, reused_from: date | None = None) -> None:
    con.execute("INSERT INTO audit.source_loads (run_date, source, as_of, delivery_date, status, message, seconds, "
                "loaded_at, config_sha, reused_from) VALUES (?, ?, ?, ?, ?, ?, ?, current_timestamp, ?, ?)",
                [run_date, source, as_of, delivery_date, status, mask_ids(message) if message else None,
                 round(_time.perf_counter() - started, 3), config_sha(cfg, source) if cfg is not None else None,
                 reused_from])


def _file_summary(fr: FileResult) -> dict:
    return {"file": fr.name, "sha256": fr.sha256, "bytes": fr.size, "encoding": fr.encoding,
            "rows_read": fr.rows_read, "rows_staged": fr.rows_staged, "rows_quarantined": fr.rows_quarantined,
            "status": fr.status, "notes": list(fr.notes), "first_loaded_run": fr.first_loaded_run,
            "same_as_delivery": fr.same_as_delivery}
