"""Policy parameters as warehouse tables, so every rule's SQL reads its district's figures by join.

flags.params: one row per district (every RuleParams field; lists as VARCHAR[]).
flags.standard: one row per district and 救助类别 with the monthly standard per person.
"""
from __future__ import annotations

import duckdb
import pandas as pd

from crosscheck.settings import PolicyConfig, RuleParams


# Parameters that are tables of their own rather than one column of flags.params (review_months is read
# by cases/reviews.py).
NOT_SCALAR = ("standards", "review_months")


def _districts(con: duckdb.DuckDBPyConnection, policy: PolicyConfig) -> list[str]:
    found = [r[0] for r in con.execute(
        "SELECT DISTINCT district FROM staging.roster WHERE district IS NOT NULL").fetchall()]
    return sorted(set(found) | set(policy.districts))


def build_params(con: duckdb.DuckDBPyConnection, policy: PolicyConfig) -> None:
    rows, standards = [], []
    for district in _districts(con, policy):
        params = policy.for_district(district)
        row = {"district": district}
        for field in RuleParams.model_fields:
            if field not in NOT_SCALAR:
                row[field] = getattr(params, field)
        rows.append(row)
        standards += [{"district": district, "category": c, "standard": float(v)}
                      for c, v in params.standards.items()]
    params_df = pd.DataFrame(rows)
    standards_df = pd.DataFrame(standards)
    con.register("params_df", params_df)
    con.register("standards_df", standards_df)
    con.execute("CREATE OR REPLACE TABLE flags.params AS SELECT * FROM params_df")
    con.execute("CREATE OR REPLACE TABLE flags.standard AS SELECT * FROM standards_df")
    con.unregister("params_df")
    con.unregister("standards_df")
