"""What a delivery must satisfy, as data: one ``Expectation`` per check, built from ``config/``.

An engine (suite.py: SQL; gx_engine.py: Great Expectations) turns each expectation into one aggregate
query on the staging table and reports what it saw; ``describe`` turns that into the steward's sentence,
so every engine words its results the same way. Row-level expectations (codes, ranges) also say which
rows fail (``failing_predicate``): those rows are moved to quarantine with the expectation's reason.

Columns are referred to by their canonical (staging) names. ``derive`` computes a column from the row
before it is checked (``lpad(trim(plate_type), 2, '0')`` so that 2 and 02 are the same code); ``where``
restricts the rows a check looks at (personal ID cells only, for the share of usable IDs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from crosscheck.settings import CodeTable, ColumnSpec, SourceSpec, TableSpec

Kind = Literal["column_exists", "values_in_set", "values_between", "compound_unique", "row_count_between",
               "max_between"]

USABLE_ID_STATUS = ("valid", "upgraded15")
# ID cells meant to be personal IDs: not empty, and not an organisation code (letters inside, or short)
PERSONAL_ID_WHERE = ("{status} <> 'empty' AND ({status} <> 'malformed' OR (NOT regexp_matches("
                     "substr(id_clean({col}), 1, 17), '[A-Z]') AND length(id_clean({col})) > 10))")


@dataclass(frozen=True)
class Expectation:
    check: str                       # our check name: codes_in_table, values_in_range, valid_id_share, ...
    table: str                       # staging table
    kind: Kind
    column: str | None = None        # canonical column, or the alias of ``derive``
    columns: tuple[str, ...] = ()    # compound_unique
    value_set: tuple = ()            # values_in_set
    min_value: Any = None            # values_between, row_count_between, max_between (inclusive)
    max_value: Any = None
    mostly: float = 1.0              # share of checked non-null values that must pass
    critical: bool = True            # failing it rejects the source (freshness: makes it stale)
    quarantine: bool = False         # rows failing it are moved to audit.quarantine
    note_rows: bool = False          # rows failing it stay in staging and are listed in audit.row_notes
    derive: str | None = None        # SQL expression over the staging row, checked under the name ``column``
    where: str | None = None         # SQL condition: only these rows are checked
    label: str = ""                  # the column as delivered, for messages (「HPZL」)
    reference: float | None = None   # row_count_vs_previous: the previous delivery's rows
    value_column: str | None = None  # the staging column a quarantine reason quotes ({value} in reason)
    reason: str = ""                 # quarantine reason (Chinese, then English in parentheses)


@dataclass
class Observation:
    """What an engine saw for one expectation."""

    passed: bool
    element_count: int | None = None     # rows checked (non-null values for column checks)
    unexpected_count: int | None = None
    observed: Any = None                 # row count, max value, missing column …


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def column_sql(exp: Expectation) -> str:
    """The SQL expression an expectation looks at."""
    if exp.derive:
        return f"({exp.derive})"
    return q(exp.column) if exp.column else "*"


def failing_predicate(exp: Expectation) -> str | None:
    """SQL that is true for a row failing a row-level expectation (None for table-level ones)."""
    col = column_sql(exp)
    if exp.kind == "values_in_set":
        values = ", ".join(sql_literal(v) for v in exp.value_set)
        cond = f"{col} IS NOT NULL AND {col} NOT IN ({values})"
    elif exp.kind == "values_between":
        parts = []
        if exp.min_value is not None:
            parts.append(f"{col} < {sql_literal(exp.min_value)}")
        if exp.max_value is not None:
            parts.append(f"{col} > {sql_literal(exp.max_value)}")
        cond = f"{col} IS NOT NULL AND ({' OR '.join(parts)})"
    else:
        return None
    return f"({exp.where}) AND {cond}" if exp.where else cond


# --- building the expectations of one source from its configuration -------------------------------------

def build_expectations(source: str, spec: SourceSpec, code_tables: dict[str, CodeTable], *, as_of: date,
                       delivery_date: date, min_valid_id_share: float, max_row_failure_share: float,
                       previous_rows: dict[str, tuple[int, date]] | None = None, row_ratio: tuple[float, float] = (0.5, 2.0),
                       staged_columns: dict[str, set[str]] | None = None) -> list[Expectation]:
    """Every expectation for one source's delivery. ``previous_rows`` (table → rows staged from the last
    accepted earlier delivery, and its date) bounds the row count; ``staged_columns`` (table → columns present in
    staging) keeps expectations off columns staging lacks (a header missing a required column is reported
    from the load audit by suite.check_required_columns)."""
    out: list[Expectation] = []
    previous_rows = previous_rows or {}
    first = True
    for table, tspec in spec.tables.items():
        present = (staged_columns or {}).get(table)
        if first:
            out.append(freshness_expectation(spec, as_of))
            first = False
        out += _table_level(table, tspec, previous_rows.get(table), row_ratio)
        for delivered, cs in tspec.columns.items():
            if present is not None and cs.name not in present:
                continue
            out += _column_level(table, delivered, cs, code_tables, delivery_date, min_valid_id_share,
                                 max_row_failure_share)
        if tspec.explode is not None:
            split_from = {new: src for src, new in tspec.explode.columns.items()}     # id_number → owner_ids
            for col, role in tspec.explode.roles.items():
                if role == "id_number":
                    label = _delivered_names(tspec, [split_from.get(col, col)])[0]    # 证件号码
                    out.append(_id_share(tspec.explode.table, col, label, min_valid_id_share))
        for key in tspec.unique:
            out.append(Expectation("duplicate_keys", table, "compound_unique", columns=tuple(key.columns),
                                   mostly=1 - key.max_share, critical=False,
                                   label="、".join(_delivered_names(tspec, key.columns))))
    return out


def freshness_expectation(spec: SourceSpec, as_of: date) -> Expectation:
    """The delivery no older than the source's max_age_days on ``as_of`` (on the source's first table)."""
    return Expectation("freshness", next(iter(spec.tables)), "max_between", column="_delivery_date",
                       min_value=as_of - timedelta(days=spec.max_age_days), max_value=as_of, label="交付日期")


def _delivered_names(tspec: TableSpec, canonical: list[str]) -> list[str]:
    by_name = {cs.name: d for d, cs in tspec.columns.items()}
    return [by_name.get(c, c) for c in canonical]


def _table_level(table: str, tspec: TableSpec, previous: tuple[int, date] | None,
                 ratio: tuple[float, float]) -> list[Expectation]:
    out = [Expectation("rows_staged", table, "row_count_between", min_value=1)]
    if previous and previous[0]:
        rows, when = previous
        lo, hi = ratio
        out.append(Expectation("row_count_vs_previous", table, "row_count_between",
                               min_value=math.ceil(rows * lo), max_value=math.floor(rows * hi),
                               reference=rows, label=str(when)))
    return out


def _id_share(table: str, column: str, label: str, minimum: float) -> Expectation:
    status = "id_status" if column == "id_number" else f"{column}_status"
    return Expectation("valid_id_share", table, "values_in_set", column=status, value_set=USABLE_ID_STATUS,
                       mostly=minimum, where=PERSONAL_ID_WHERE.format(status=q(status), col=q(column)),
                       label=label)


def _column_level(table: str, delivered: str, cs: ColumnSpec, code_tables: dict[str, CodeTable],
                  delivery_date: date, min_valid_id_share: float, max_failure: float) -> list[Expectation]:
    out: list[Expectation] = []
    label = f"「{delivered}」"
    if cs.role == "id_number":
        out.append(_id_share(table, cs.name, delivered, min_valid_id_share))
    if cs.codes:
        ct = code_tables[cs.codes]
        raw = f"trim({q(cs.name)})"
        if ct.pad:
            raw = f"lpad({raw}, {ct.pad}, '0')"
        if ct.letters:
            # several one-letter codes at once (车辆状态 ZT = "AG"): what is left after removing known letters
            letters = "".join(sorted(ct.codes))
            derive = f"regexp_replace(upper({raw}), '[{letters}]', '', 'g')"     # '' when every letter is known
            out.append(Expectation(
                "codes_in_table", table, "values_in_set", column=f"{cs.name}__unknown_letters", derive=derive,
                value_set=("",), mostly=1 - max_failure, quarantine=True, label=delivered, value_column=cs.name,
                reason=f"{label}的值「{{value}}」含代码表「{ct.title}」以外的字母 "
                       f"({delivered} {{value}} holds letters outside code table {cs.codes})"))
        else:
            out.append(Expectation(
                "codes_in_table", table, "values_in_set", column=f"{cs.name}__code", derive=raw,
                value_set=tuple(ct.codes), mostly=1 - max_failure, quarantine=True, label=delivered,
                value_column=cs.name,
                reason=f"{label}的值「{{value}}」不在代码表「{ct.title}」中 ({delivered} {{value}} is not a code of "
                       f"{cs.codes})"))
    if cs.range is not None and cs.type in ("int", "decimal", "date", "timestamp", "month"):
        lo, hi = cs.range.bounds(delivery_date)
        if cs.type == "timestamp":
            derive, column = f"CAST({q(cs.name)} AS DATE)", f"{cs.name}__date"
        else:
            derive, column = None, cs.name
        what = "日期" if cs.type in ("date", "timestamp", "month") else "数值"
        keep = cs.range.keep_rows
        out.append(Expectation(
            "values_in_range", table, "values_between", column=column, derive=derive, min_value=lo, max_value=hi,
            mostly=1 - max_failure, critical=not keep, quarantine=not keep, note_rows=keep, label=delivered,
            value_column=cs.name,
            reason=f"{label}{what}「{{value}}」超出合理范围 {fmt_value(lo)}～{fmt_value(hi)}"
                   + ("，行已保留，规则按核对日期取舍 " if keep else " ")
                   + f"({delivered} {{value}} outside {fmt_value(lo)}..{fmt_value(hi)}"
                   + ("; row kept, the rules apply their as-of date)" if keep else ")")))
    return out


def fmt_value(v: Any) -> str:
    """A bound or count as a steward reads it: 1,000 not 1000.0; … for no bound."""
    if v is None:
        return "…"
    if isinstance(v, float) and v.is_integer():
        return f"{int(v):,}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)



# --- the steward's sentence --------------------------------------------------------------------------------

def describe(source: str, exp: Expectation, obs: Observation) -> str:
    """One plain sentence about one expectation's result: counts and codes only, never an ID or a name."""
    where = f"{source} {exp.table}"
    n, bad = obs.element_count or 0, obs.unexpected_count or 0
    share = f"{bad / n:.1%}" if n else "0%"
    allowed = f"{1 - exp.mostly:.0%}"
    if exp.kind == "column_exists":
        return (f"{where}: 列「{exp.label}」存在 (column present)" if obs.passed else
                f"{where}: 缺少列「{exp.label}」 (column {exp.label} is missing)")
    if exp.check == "rows_staged":
        return f"{where}: 入库 {obs.observed or 0:,} 行 ({obs.observed or 0:,} rows staged)"
    if exp.check == "row_count_vs_previous":
        n, prev = obs.observed or 0, int(exp.reference or 0)
        return (f"{where}: 本次 {n:,} 行，{exp.label} 的上次交付 {prev:,} 行（比值 {n / prev:.2f}），允许 "
                f"{exp.min_value:,}～{exp.max_value:,} 行 ({n:,} rows against {prev:,} in the delivery of "
                f"{exp.label}, ratio {n / prev:.2f}; allowed {exp.min_value:,}–{exp.max_value:,})")
    if exp.check == "freshness":
        age = (exp.max_value - obs.observed).days if isinstance(obs.observed, date) else None
        limit = (exp.max_value - exp.min_value).days
        return (f"{source}: 数据交付于 {obs.observed}，截至 {exp.max_value} 已 {age} 天，上限 {limit} 天 "
                f"(delivery of {obs.observed} is {age} day(s) old on {exp.max_value}; maximum {limit})")
    if exp.check == "valid_id_share":
        usable = n - bad
        return (f"{where}: 「{exp.label}」可用身份证号 {usable:,} / {n:,} ({usable / n:.1%}；下限 {exp.mostly:.0%}) "
                f"({usable:,} of {n:,} personal IDs usable; minimum {exp.mostly:.0%})" if n else
                f"{where}: 「{exp.label}」没有任何身份证号 (no personal IDs at all)")
    if exp.check == "codes_in_table":
        return (f"{where}: 「{exp.label}」{bad:,} / {n:,} 个值不在代码表中 ({share}；允许 {allowed}) "
                f"({bad:,} of {n:,} values not in the code table; {share}, allowed {allowed})")
    if exp.check == "values_in_range":
        return (f"{where}: 「{exp.label}」{bad:,} / {n:,} 个值超出 {fmt_value(exp.min_value)}～{fmt_value(exp.max_value)} "
                f"({share}；允许 {allowed}) ({bad:,} of {n:,} values out of range; allowed {allowed})")
    if exp.check == "duplicate_keys":
        return (f"{where}: 「{exp.label}」重复 {bad:,} / {n:,} 行 ({share}) "
                f"({bad:,} of {n:,} rows share a key with another row; allowed {allowed})")
    return f"{where}: {exp.check} {'passed' if obs.passed else 'failed'}"
