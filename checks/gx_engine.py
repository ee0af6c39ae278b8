"""Great Expectations 1.x as a check engine on the DuckDB warehouse.

``evaluate_with_gx`` runs a list of ``Expectation`` (expectations.py) as GX expectations against
``staging.<table>`` in the pipeline's own DuckDB connection and returns one ``Observation`` per
expectation, in input order. ``GxCheckEngine`` is the ``CheckEngine`` (suite.py) around it.

How the night's expectations become GX objects:

* one Expectation Suite per staging table, ``<source>.<table>``, validated against a table asset; an
  expectation with ``derive`` adds its column to that asset, which then becomes a query asset
  ``SELECT *, <derive> AS "<column>" FROM staging."<table>"``. Expectations with a ``where`` get their own
  query asset and suite per (table, where) — ``<source>.<table>.<check>.<column>`` — with the condition in
  the query's WHERE, so each suite is one batch and one pass over the table;
* one Checkpoint per source, run once per call with ``run_name`` = the night (run_date) and ``run_time`` =
  midnight UTC of that night: re-running a night replaces its stored results, as validate.py replaces its
  audit rows; Data Docs (datadocs.py) list one run per night;
* every expectation carries ``meta`` (our check name, the steward's label, critical/quarantine), a
  ``description`` — the rule in one Chinese-then-English sentence, which Data Docs shows instead of GX's
  own wording — and ``notes`` (column, derivation, rows checked, what a failure does) under it on the
  suite page; ``severity`` is critical or warning as the check is.

Everything is pushed down as SQL; no table is copied into pandas. Results are asked for in the ``BASIC``
format with ``partial_unexpected_count`` 0, so GX fetches no row values (its "unexpected values" queries run
with LIMIT 0) and stored results and Data Docs hold counts only: never an ID number or a name.

What GX could not do on DuckDB as shipped, and what is done instead:

* **Results silently empty.** duckdb-engine opens an explicit transaction on every checkout and SQLAlchemy
  rolls it back when GX returns the connection to the pool, which GX does *before* fetching the rows of
  its metric query; DuckDB's ROLLBACK replaces the connection's pending result, so every metric comes
  back empty (``IndexError`` inside GX, reported as ``success: False`` with no observed value). Fix: the
  datasource uses our own dialect, ``duckdb+crosscheck`` (a subclass of duckdb-engine's), whose
  begin/commit/rollback do nothing — GX only reads, and each DuckDB statement then runs in its own
  auto-committed transaction, so it always sees the latest staging tables and never holds a snapshot open.
  DuckDB is also added to GX's ``_PERSISTED_CONNECTION_DIALECTS`` (as the spike in README.md did) so GX
  keeps one connection (one DuckDB cursor) per pipeline connection rather than a pool.
* **A second connection to the warehouse file is refused** while the pipeline holds it. The dialect hands
  GX ``con.cursor()`` of the pipeline's connection (looked up by a slot name in the connection string,
  ``duckdb+crosscheck:///con<n>``), so the datasource config is plain text and can live in a file context
  (a ``creator`` callable cannot be written to great_expectations.yml).
* **Regex expectations** are not supported on DuckDB. None of our kinds needs one (ID shape is computed
  in SQL by the id_* macros and reaches GX as the ``*_status`` columns).
* **Compound uniqueness**: ``ExpectCompoundColumnsToBeUnique`` works on DuckDB (GROUP BY + window in SQL).
  It is asked with ``ignore_row_if="any_value_is_missing"`` so that, as in the SQL engine, only rows with
  the whole key present are checked, and every copy of a repeated key counts as unexpected. It refuses a
  one-column key; that one is ``ExpectColumnValuesToBeUnique`` (same counting, NULLs not checked).
* ``add_table_asset(schema_name=...)`` is deprecated in GX 1.24 ("pass the schema in the connection
  configuration"): the dialect sets ``schema = 'staging'`` on the cursor it hands to GX (a per-connection
  setting in DuckDB; the pipeline's own connection is untouched).
* A missing **staging table** cannot be made into a GX asset; its expectations are answered without GX
  (column_exists: failed with the column as observed value; everything else: failed, 0 of 0), exactly as
  the SQL engine answers them.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from checks.expectations import Expectation, Observation, fmt_value, q
from crosscheck.safety import make_private_dir, mask_ids

log = logging.getLogger(__name__)

ENGINE_NAME = "great_expectations"
DATASOURCE = "warehouse"
DIALECT = "duckdb+crosscheck"
# counts only: no partial list of unexpected values, no unexpected rows, no index queries
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False,
                 "return_unexpected_index_query": False}
POSITION = "crosscheck_position"        # meta key: the expectation's index in the caller's list

TIMINGS: dict[str, float] = {}           # seconds: gx_import, context_<root>, ... (see GxCheckEngine.timings)

_GX: Any = None
_IMPORT_LOCK = threading.Lock()
_SLOTS: dict[str, weakref.ref] = {}      # slot name in the connection string -> pipeline DuckDB connection
_SLOT_COUNTER = iter(range(1, 1 << 62))
_CURSORS: weakref.WeakSet = weakref.WeakSet()   # DuckDB cursors handed to GX, closed at exit
_STATES: dict[str, _GxState] = {}
_STATES_LOCK = threading.Lock()


# --- importing GX once, with the DuckDB fixes --------------------------------------------------------------

def gx_module():
    """``great_expectations``, imported once per process (≈10 s on this machine: pandas, scipy, altair),
    with the DuckDB dialect registered and the persisted-connection patch applied."""
    global _GX
    if _GX is not None:
        return _GX
    with _IMPORT_LOCK:
        if _GX is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            start = time.perf_counter()
            import great_expectations as gx
            TIMINGS["gx_import"] = time.perf_counter() - start
            _register_dialect()
            _persist_duckdb_connections()
            atexit.register(_close_all)
            for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
                logging.getLogger(name).setLevel(logging.WARNING)
            _GX = gx
    return _GX


class _DuckDialect(str):
    """Compares equal to "duckdb" like GX's own ``GXSqlDialect`` members, and has their ``.value``."""

    value = "duckdb"


def _close_all() -> None:
    """At exit: close the cursors GX still holds and drop the contexts, so that DuckDB's bindings do not
    report them as leaked while the interpreter shuts down."""
    for cursor in list(_CURSORS):
        try:
            cursor.close()
        except Exception:  # noqa: BLE001 - already closed with its connection
            pass
    _STATES.clear()
    _SLOTS.clear()
    import gc

    gc.collect()


def _persist_duckdb_connections() -> None:
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    dialects = getattr(see, "_PERSISTED_CONNECTION_DIALECTS", None)
    if dialects is None:          # a GX without the list: the dialect below is enough on its own
        log.warning("great_expectations has no _PERSISTED_CONNECTION_DIALECTS; using a connection pool")
        return
    if "duckdb" not in dialects:
        see._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DuckDialect("duckdb"))


def duckdb_persisted() -> bool:
    """Whether GX keeps one connection open for DuckDB (the spike's fix; see the module docstring)."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    return "duckdb" in getattr(see, "_PERSISTED_CONNECTION_DIALECTS", ())


def _register_dialect() -> None:
    """``duckdb+crosscheck:///<slot>``: a cursor of the pipeline's connection, with no transactions."""
    import duckdb_engine
    from sqlalchemy.dialects import registry

    class PipelineDuckDBDialect(duckdb_engine.Dialect):
        supports_statement_cache = False

        def create_connect_args(self, url):
            return (), {"slot": url.database}

        def connect(self, *cargs, slot=None, **cparams):
            ref = _SLOTS.get(slot)
            con = ref() if ref is not None else None
            if con is None:
                raise RuntimeError(f"no open pipeline connection for GX datasource slot {slot!r}")
            cursor = con.cursor()
            _CURSORS.add(cursor)
            cursor.execute("SET schema = 'staging'")     # this cursor's default schema: table assets need none
            return duckdb_engine.ConnectionWrapper(cursor)

        # GX only reads. duckdb-engine's BEGIN/ROLLBACK around each checkout wipes the result GX has not
        # fetched yet; without them every statement is its own auto-committed read of the latest data.
        def do_begin(self, dbapi_connection):
            pass

        def do_commit(self, dbapi_connection):
            pass

        def do_rollback(self, dbapi_connection):
            pass

    globals()["PipelineDuckDBDialect"] = PipelineDuckDBDialect
    registry.register(DIALECT.replace("+", "."), __name__, "PipelineDuckDBDialect")


# --- the GX context: one per root folder per process -------------------------------------------------------

@dataclass
class _GxState:
    context: Any
    root: Path | None
    lock: threading.RLock = field(default_factory=threading.RLock)
    con_ref: weakref.ref | None = None
    slot: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def owner_only():
    """Files and folders created inside are readable by their owner only (umask 077)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@contextmanager
def using_context(root: Path | str | None = None):
    """The context for ``root``, held for the caller alone (other threads of this process wait), made the
    current GX project, with owner-only files."""
    state = _state(root)
    gx = gx_module()
    with state.lock, owner_only():
        gx.data_context.set_context(state.context)
        yield state.context


def open_context(root: Path | str | None = None):
    """The GX data context for ``root`` (a file context kept in that folder; None: an ephemeral one),
    created once per process and reused. Returns the GX context."""
    return _state(root).context


def _state(root: Path | str | None) -> _GxState:
    gx = gx_module()
    key = str(Path(root).resolve()) if root is not None else ""
    with _STATES_LOCK:
        state = _STATES.get(key)
        if state is not None:
            return state
        start = time.perf_counter()
        with owner_only():
            if root is None:
                context = gx.get_context(mode="ephemeral")
            else:
                path = make_private_dir(Path(root).resolve())
                context = gx.get_context(mode="file", context_root_dir=str(path))
            _configure(context)
        state = _GxState(context, Path(key) if key else None)
        state.timings["context"] = TIMINGS[f"context:{key or 'ephemeral'}"] = time.perf_counter() - start
        _STATES[key] = state
        return state


def _configure(context) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    changed = False
    bars = context.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        changed = True
    if context.config.analytics_enabled is not False:
        context.config.analytics_enabled = False
        changed = True
    if changed and context.mode == "file":
        context.variables.save()


def _datasource(state: _GxState, con):
    """The warehouse datasource, pointing at ``con`` (a new slot, and so a new SQLAlchemy engine, whenever
    the pipeline hands over another connection)."""
    context = state.context
    current = state.con_ref() if state.con_ref is not None else None
    if current is not con or state.slot is None:
        slot = f"con{next(_SLOT_COUNTER)}"
        _SLOTS[slot] = weakref.ref(con)
        if state.slot is not None:
            _SLOTS.pop(state.slot, None)
        state.slot, state.con_ref = slot, weakref.ref(con)
    url = f"{DIALECT}:///{state.slot}"
    try:
        ds = context.data_sources.get(DATASOURCE)
    except KeyError:
        return context.data_sources.add_sql(DATASOURCE, connection_string=url)
    if str(ds.connection_string) != url:
        # a new engine for the new connection; the assets are added again as the groups need them
        ds = context.data_sources.update_sql(DATASOURCE, connection_string=url)
    return ds


# --- expectations → suites -----------------------------------------------------------------------------------

@dataclass
class _Group:
    table: str
    where: str | None
    members: list[int] = field(default_factory=list)
    derives: dict[str, str] = field(default_factory=dict)
    suite: str = ""
    asset: str = ""

    def query(self) -> str | None:
        if not self.derives and not self.where:
            return None
        cols = "".join(f", ({expr}) AS {q(col)}" for col, expr in self.derives.items())
        sql = f"SELECT *{cols} FROM staging.{q(self.table)}"
        return sql + (f" WHERE {self.where}" if self.where else "")


def _groups(source: str, expectations: list[Expectation], present: set[str]) -> list[_Group]:
    groups: dict[tuple[str, str | None], _Group] = {}
    for i, exp in enumerate(expectations):
        if exp.table not in present:
            continue
        g = groups.setdefault((exp.table, exp.where or None), _Group(exp.table, exp.where or None))
        g.members.append(i)
        if exp.derive:
            previous = g.derives.setdefault(exp.column, exp.derive)
            if previous != exp.derive:
                raise ValueError(f"{exp.table}.{exp.column} is derived two ways: {previous!r} and {exp.derive!r}")
    used: set[str] = set()
    out = []
    for (table, where), g in groups.items():
        name = table
        if where is not None:
            first = expectations[g.members[0]]
            name = f"{table}.{first.check}.{first.column or 'rows'}"
        base, n = name, 2
        while name in used:
            name, n = f"{base}.{n}", n + 1
        used.add(name)
        g.asset, g.suite = name, f"{source}.{name}"
        out.append(g)
    return out


def _gx_expectation(gx, exp: Expectation, position: int):
    E = gx.expectations
    common = {"meta": _meta(exp, position), "description": describe_rule(exp), "notes": notes(exp),
              "severity": "critical" if exp.critical else "warning"}
    mostly = {"mostly": exp.mostly} if exp.mostly is not None and exp.mostly < 1 else {}
    if exp.kind == "column_exists":
        return E.ExpectColumnToExist(column=exp.column, **common)
    if exp.kind == "values_in_set":
        return E.ExpectColumnValuesToBeInSet(column=exp.column, value_set=list(exp.value_set), **mostly, **common)
    if exp.kind == "values_between":
        return E.ExpectColumnValuesToBeBetween(column=exp.column, min_value=exp.min_value, max_value=exp.max_value,
                                               **mostly, **common)
    if exp.kind == "compound_unique":
        if len(exp.columns) == 1:       # GX wants two or more columns for a compound key
            return E.ExpectColumnValuesToBeUnique(column=exp.columns[0], **mostly, **common)
        return E.ExpectCompoundColumnsToBeUnique(column_list=list(exp.columns), ignore_row_if="any_value_is_missing",
                                                 **mostly, **common)
    if exp.kind == "row_count_between":
        return E.ExpectTableRowCountToBeBetween(min_value=exp.min_value, max_value=exp.max_value, **common)
    if exp.kind == "max_between":
        return E.ExpectColumnMaxToBeBetween(column=exp.column, min_value=exp.min_value, max_value=exp.max_value,
                                            **common)
    raise ValueError(f"unknown expectation kind {exp.kind!r} ({exp.check})")


def _meta(exp: Expectation, position: int) -> dict:
    meta = {"check": exp.check, "table": exp.table, "critical": exp.critical, POSITION: position}
    if exp.label:
        meta["label"] = exp.label
    if exp.quarantine:
        meta["quarantine"] = True
    if exp.note_rows:
        meta["note_rows"] = True
    return meta


_CODE_TABLE = re.compile(r"代码表「([^」]+)」")


def describe_rule(exp: Expectation) -> str:
    """What the expectation asks, in one sentence for the steward reading Data Docs (Chinese, then English).
    It replaces GX's own wording on the pages; it states the rule, never a value from the data."""
    label = exp.label or exp.column or ""
    quoted = label if label.startswith("「") else f"「{label}」"
    allowed = f"{1 - exp.mostly:.0%}" if exp.mostly is not None else "0%"
    if exp.check == "required_columns_present" or exp.kind == "column_exists":
        return f"必填列{quoted}必须存在 (required column {label} must be present)"
    if exp.check == "rows_staged" or (exp.kind == "row_count_between" and exp.max_value is None):
        return f"至少入库 {fmt_value(exp.min_value)} 行 (at least {fmt_value(exp.min_value)} row(s) staged)"
    if exp.check == "row_count_vs_previous":
        return (f"行数须在 {fmt_value(exp.min_value)}～{fmt_value(exp.max_value)} 之间（上次交付 {label} 行） "
                f"(row count within {fmt_value(exp.min_value)}–{fmt_value(exp.max_value)}; previous accepted delivery: {label})")
    if exp.check == "freshness":
        days = (exp.max_value - exp.min_value).days if isinstance(exp.min_value, date) else None
        return (f"交付日期须在 {exp.min_value} 至 {exp.max_value} 之间（最长 {days} 天） "
                f"(delivery date within {exp.min_value}..{exp.max_value}: at most {days} days old)")
    if exp.check == "valid_id_share":
        return (f"{quoted}中的个人身份证号至少 {exp.mostly:.0%} 可用（有效，或由15位升级） "
                f"(at least {exp.mostly:.0%} of the personal IDs in {label} usable)")
    if exp.check == "codes_in_table":
        m = _CODE_TABLE.search(exp.reason or "")
        table = f"代码表「{m.group(1)}」" if m else "代码表"
        return (f"{quoted}的值必须在{table}中，允许 {allowed} 例外 "
                f"({label} must be a code of {m.group(1) if m else 'its code table'}; {allowed} may not be)")
    if exp.check == "values_in_range":
        return (f"{quoted}的值须在 {fmt_value(exp.min_value)}～{fmt_value(exp.max_value)} 之间，允许 {allowed} 例外 "
                f"({label} within {fmt_value(exp.min_value)}..{fmt_value(exp.max_value)}; {allowed} may not be)")
    if exp.check == "duplicate_keys":
        return (f"{quoted}组合应唯一，允许 {allowed} 的行重复 "
                f"(the key {label} should be unique; up to {allowed} of rows may repeat a key)")
    return f"{exp.check}: {quoted}" if label else exp.check


def notes(exp: Expectation) -> list[str]:
    """The details under the sentence (markdown lines): our check, the column as GX sees it and how it is
    computed, which rows are looked at, and what a failure does."""
    out = [f"检查 (check): `{exp.check}` · 表 (table): `staging.{exp.table}`"]
    if exp.column:
        out.append(f"列 (column): `{exp.column}`" + (f"，由 `{exp.derive}` 计算 (derived)" if exp.derive else ""))
    if exp.columns:
        out.append("键 (key): " + ", ".join(f"`{c}`" for c in exp.columns) + "（键不完整的行不计 / rows with a "
                   "missing key part are not counted）")
    if exp.where:
        out.append(f"只看满足条件的行 (rows checked): `{exp.where}`")
    if exp.kind == "values_in_set" and exp.value_set:
        out.append(f"允许的值 (allowed values): {len(exp.value_set)} 个")
    out.append("不通过则拒收本次交付 (failing rejects the delivery)" if exp.critical else
               "不通过仅提示 (failing is reported only)")
    if exp.quarantine and exp.reason:
        out.append(f"不符合的行移入隔离区 (failing rows are quarantined): {exp.reason}")
    if exp.note_rows and exp.reason:
        out.append(f"不符合的行保留并逐行列出 (failing rows are kept and listed): {exp.reason}")
    return out


# --- running ---------------------------------------------------------------------------------------------------

def _staging_tables(con) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'").fetchall()}


def _without_gx(exp: Expectation) -> Observation:
    """An expectation on a staging table that does not exist (as the SQL engine answers it)."""
    if exp.kind == "column_exists":
        return Observation(False, observed=exp.column)
    return Observation(False, 0, 0, None)


def _run_id(gx, run_date):
    from great_expectations.core.run_identifier import RunIdentifier

    if isinstance(run_date, datetime):
        run_date = run_date.date()
    if isinstance(run_date, str):
        run_date = date.fromisoformat(run_date)
    return RunIdentifier(run_name=run_date.isoformat(),
                         run_time=datetime(run_date.year, run_date.month, run_date.day, tzinfo=timezone.utc))


def _ensure_asset(ds, group: _Group):
    query = group.query()
    try:
        asset = ds.get_asset(group.asset)
    except LookupError:
        asset = None
    if asset is not None:
        same = (getattr(asset, "query", None) == query if query is not None else
                getattr(asset, "type", None) == "table" and getattr(asset, "table_name", None) == group.table)
        if not same:
            ds.delete_asset(group.asset)
            asset = None
    if asset is None:
        if query is None:
            asset = ds.add_table_asset(group.asset, table_name=group.table)
        else:
            asset = ds.add_query_asset(group.asset, query=query)
    try:
        return asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_table("whole")


def evaluate_with_gx(con, expectations: list[Expectation], *, source: str, run_date, context=None) -> list[Observation]:
    """Run ``expectations`` with Great Expectations against ``staging`` in ``con``; one Observation each, in
    input order. ``context``: the GX file-context folder (results kept there for Data Docs), an open GX
    context, or None for an ephemeral one. The night is ``run_date`` (the run's name in GX)."""
    if isinstance(context, (str, Path)) or context is None:
        state = _state(context)
    else:
        state = next((s for s in _STATES.values() if s.context is context), None) or _adopt(context)
    gx = gx_module()
    out: list[Observation | None] = [None] * len(expectations)
    present = _staging_tables(con)
    for i, exp in enumerate(expectations):
        if exp.table not in present:
            out[i] = _without_gx(exp)
    groups = _groups(source, expectations, present)
    if not groups:
        return [o for o in out]  # type: ignore[misc]
    with state.lock, owner_only():
        gx.data_context.set_context(state.context)
        start = time.perf_counter()
        ds = _datasource(state, con)
        definitions = []
        for g in groups:
            batch = _ensure_asset(ds, g)
            suite = gx.ExpectationSuite(
                name=g.suite, expectations=[_gx_expectation(gx, expectations[i], i) for i in g.members],
                meta={"source": source, "table": g.table, **({"where": g.where} if g.where else {})})
            definitions.append(gx.ValidationDefinition(name=g.suite, data=batch, suite=suite))
        checkpoint = state.context.checkpoints.add_or_update(
            gx.Checkpoint(name=source, validation_definitions=definitions, actions=[], result_format=RESULT_FORMAT))
        prepared = time.perf_counter()
        result = checkpoint.run(run_id=_run_id(gx, run_date))
        done = time.perf_counter()
        state.timings["prepare"] = prepared - start
        state.timings["validate"] = done - prepared
        TIMINGS["prepare"], TIMINGS["validate"] = prepared - start, done - prepared
    for suite_result in result.run_results.values():
        for r in suite_result.results:
            position = (r.expectation_config.meta or {}).get(POSITION)
            if position is None:
                continue
            out[position] = observation(expectations[position], r)
    missing = [expectations[i].check for i, o in enumerate(out) if o is None]
    if missing:
        raise RuntimeError(f"GX returned no result for {len(missing)} expectation(s): {missing}")
    return out  # type: ignore[return-value]


def _adopt(context) -> _GxState:
    with _STATES_LOCK:
        key = f"context:{id(context)}"
        state = _STATES.setdefault(key, _GxState(context, None))
    _configure(context)
    return state


def observation(exp: Expectation, r) -> Observation:
    """One GX ExpectationValidationResult as an Observation, with the SQL engine's conventions:
    element_count counts the checked (non-missing) values; the observed value is the row count, the maximum,
    or the missing column's name."""
    result = dict(r.result or {})
    info = r.exception_info if isinstance(r.exception_info, dict) else {}
    raised = bool(info.get("raised_exception"))
    if raised or (not result and exp.kind != "column_exists"):
        message = str(info.get("exception_message") or "")[:300]
        # a DuckDB error can quote the cell it choked on: mask anything ID-like before logging
        log.warning("GX could not evaluate %s on %s: %s", exp.check, exp.table, mask_ids(message))
        return Observation(False, None, None, None)
    if exp.kind == "column_exists":
        return Observation(bool(r.success), observed=None if r.success else exp.column)
    if exp.kind in ("values_in_set", "values_between", "compound_unique"):
        n = int(result.get("element_count") or 0) - int(result.get("missing_count") or 0)
        bad = int(result.get("unexpected_count") or 0)
        return Observation(bool(r.success), n, bad, None)
    observed = result.get("observed_value")
    if exp.kind == "row_count_between":
        return Observation(bool(r.success), int(observed or 0), None, observed)
    # max_between: GX passes an all-NULL column; there is nothing to be fresh, as in the SQL engine
    return Observation(bool(r.success) and observed is not None, None, None, observed)


class GxCheckEngine:
    """CheckEngine (suite.py) on Great Expectations. ``root``: the GX file-context folder, e.g.
    ``<state>/gx`` (None: an ephemeral context; nothing is kept for Data Docs). The context is created on
    first use and shared by every engine with the same root in the process."""

    name = ENGINE_NAME

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else None

    @property
    def context(self):
        return open_context(self.root)

    def evaluate(self, con, expectations: list[Expectation], source: str, run_date) -> list[Observation]:
        return evaluate_with_gx(con, expectations, source=source, run_date=run_date, context=self.root)

    @property
    def timings(self) -> dict[str, float]:
        """Seconds: gx_import (once per process), context (once per root), prepare and validate (last call)."""
        out = {"gx_import": TIMINGS.get("gx_import", 0.0)}
        key = str(self.root.resolve()) if self.root is not None else ""
        if key in _STATES:
            out.update(_STATES[key].timings)
        return out
