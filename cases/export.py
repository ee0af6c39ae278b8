"""The case export of CONTRACT.md §5: cases.csv (UTF-8 with BOM) and cases.parquet."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from crosscheck.safety import neutralise_frame, publish

EXPORT_COLUMNS = ["case_id", "run_date", "household_id", "district", "township", "category", "rule",
                  "member_id_masked", "member_name", "evidence", "link", "link_score", "priority", "status",
                  "rule_name", "deadline", "responsible_unit", "opened_on"]


def open_cases(con: duckdb.DuckDBPyConnection, run_date: date, rule_names: dict[str, str]) -> pd.DataFrame:
    df = con.execute(
        "SELECT case_id, ?::DATE AS run_date, household_id, district, township, category, rule,"
        " id_mask(member_id) AS member_id_masked, member_name, evidence, link, link_score, priority, status,"
        " deadline, responsible_unit, opened_on"
        " FROM ledger.cases WHERE status IN ('new', 'open') ORDER BY priority, rule, district, township, case_id",
        [run_date]).df()
    df["rule_name"] = df["rule"].map(rule_names).fillna("")
    return df[EXPORT_COLUMNS]


def write_cases(df: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write both files atomically (temp name, then rename) and owner-readable only."""
    csv_path, parquet_path = out / "cases.csv", out / "cases.parquet"
    safe = neutralise_frame(df)
    tmp_csv, tmp_parquet = csv_path.with_suffix(".csv.tmp"), parquet_path.with_suffix(".parquet.tmp")
    # CRLF, as RFC 4180 has it: the csv writer then quotes every cell holding a CR or LF of its own (with LF
    # line ends it left a lone CR bare, and readers that end a row at CR split the row there)
    safe.to_csv(tmp_csv, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    df.to_parquet(tmp_parquet, index=False)
    for tmp, final in ((tmp_csv, csv_path), (tmp_parquet, parquet_path)):
        publish(tmp, final)
    return {"csv": csv_path, "parquet": parquet_path}
