"""Build staging tables from a few literal rows, shaped exactly as the load stage shapes them.

Columns come from config/sources.yaml (canonical names and types); unspecified columns are NULL;
id_norm / id_status / name_norm are computed by the same SQL macros the loader uses.
"""
from __future__ import annotations

from datetime import date

import duckdb

from crosscheck.settings import load_sources

DUCK_TYPES = {"text": "VARCHAR", "int": "BIGINT", "decimal": "DOUBLE", "date": "DATE", "timestamp": "DATE",
              "month": "DATE"}


def table_columns(table: str) -> dict[str, str]:
    for source in load_sources().sources.values():
        for name, spec in source.tables.items():
            cols = {c.name: DUCK_TYPES[c.type] for c in spec.columns.values()}
            if name == table:
                return cols
            if spec.explode and spec.explode.table == table:
                for wide in spec.explode.columns:
                    cols.pop(wide, None)
                cols.update({"name": "VARCHAR", "id_number": "VARCHAR", "owner_seq": "BIGINT"})
                return cols
    raise KeyError(table)


def stage(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict], delivery: date) -> None:
    cols = table_columns(table)
    unknown = {k for row in rows for k in row} - set(cols)
    assert not unknown, f"{table}: unknown columns {unknown}"
    defs = ", ".join(f'"{c}" {t}' for c, t in cols.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rows ({defs})")
    for row in rows:
        names = list(row)
        con.execute(f"INSERT INTO _rows ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                    [row[n] for n in names])
    extra = ""
    if "id_number" in cols:
        extra += ", id_norm(id_number) AS id_norm, id_status(id_number) AS id_status"
    if "name" in cols:
        extra += ", replace(name, ' ', '') AS name_norm"
    con.execute(f"CREATE OR REPLACE TABLE staging.{table} AS SELECT *{extra}, 'fixture.csv' AS _file,"
                f" CAST(row_number() OVER () AS BIGINT) AS _row, ?::DATE AS _delivery_date FROM _rows", [delivery])
