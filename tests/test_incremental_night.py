"""An incremental night yields exactly what a full night yields (issue 7).

The generator delivers the roster on 2026-11-12 and again on 2026-11-19; every other source's newest
delivery on or before 2026-11-18 is also its newest on 2026-11-19. So after the night of 11-18, the night of
11-19 has only a new roster: run it once incrementally (unchanged sources reused: not read, validated or
linked again) and once with ``full=True`` on a copy of the same state, and compare everything the rules and
the auditors see.
"""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from crosscheck.cli import run_night
from crosscheck.warehouse import connect

pytestmark = pytest.mark.slow   # three whole nights (~90 s): CI runs it in the slow step

FIRST, SECOND = date(2026, 11, 18), date(2026, 11, 19)


@pytest.fixture(scope="module")
def two_ways(small_night, tmp_path_factory):
    _, landing, _ = small_night
    base = tmp_path_factory.mktemp("incremental")
    run_night(landing, FIRST, base / "out1", base / "inc")
    shutil.copytree(base / "inc", base / "full")
    incremental = run_night(landing, SECOND, base / "inc_out", base / "inc")
    full = run_night(landing, SECOND, base / "full_out", base / "full", full=True)
    return base, incremental, full


def _tables(con, schema: str) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                                      "AND table_type = 'BASE TABLE' ORDER BY 1", [schema]).fetchall()]


def _rows(con, schema: str, table: str) -> list[tuple]:
    """Every row, without the columns that record when (clock time differs between any two runs)."""
    cols = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                      "AND table_name = ? AND data_type NOT LIKE 'TIMESTAMP%' "
                                      "ORDER BY ordinal_position", [schema, table]).fetchall()]
    select = ", ".join(f'"{c}"' for c in cols)
    return sorted(con.execute(f'SELECT {select} FROM {schema}."{table}"').fetchall(), key=repr)


def test_only_the_roster_is_read_again(two_ways):
    _, incremental, full = two_ways
    reused = {s for s, info in incremental["sources"].items() if info.get("reused_from")}
    assert "roster" not in reused
    assert reused == set(incremental["sources"]) - {"roster"}, "every unchanged source is reused"
    assert not any(info.get("reused_from") for info in full["sources"].values()), "--full reuses nothing"


def test_only_the_roster_is_read_ahead(two_ways):
    """The read-ahead (connectors/readahead.py) plans exactly the files the load reads: the roster's alone
    on the incremental night, every delivered file on the full one."""
    _, incremental, full = two_ways
    roster = Path(incremental["landing"]) / "roster" / incremental["sources"]["roster"]["delivery_date"].isoformat() \
        if hasattr(incremental["sources"]["roster"]["delivery_date"], "isoformat") else \
        Path(incremental["landing"]) / "roster" / str(incremental["sources"]["roster"]["delivery_date"])
    roster_files = [p for p in roster.iterdir() if p.suffix == ".csv"]
    assert roster_files
    assert incremental["read_ahead"] == {"planned": len(roster_files), "served": len(roster_files)}
    assert full["read_ahead"]["planned"] == full["read_ahead"]["served"] > len(roster_files)


def test_same_cases_as_a_full_night(two_ways):
    base, _, _ = two_ways
    assert (base / "inc_out" / "cases.csv").read_bytes() == (base / "full_out" / "cases.csv").read_bytes()


def test_same_source_verdicts(two_ways):
    _, incremental, full = two_ways
    assert ({s: i["status"] for s, i in incremental["sources"].items()}
            == {s: i["status"] for s, i in full["sources"].items()})


@pytest.mark.parametrize("schema", ["staging", "linked", "flags", "ledger"])
def test_same_tables_as_a_full_night(two_ways, schema):
    base, _, _ = two_ways
    with connect(base / "inc" / "warehouse.duckdb", read_only=True) as a, \
            connect(base / "full" / "warehouse.duckdb", read_only=True) as b:
        assert _tables(a, schema) == _tables(b, schema)
        for table in _tables(a, schema):
            assert _rows(a, schema, table) == _rows(b, schema, table), f"{schema}.{table} differs"
