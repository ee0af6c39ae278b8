"""generate → run → score through the real Prefect flow, at a small scale."""
from __future__ import annotations

import json
import re
import stat
from datetime import date

import pandas as pd
import pytest

from crosscheck.cli import default_truth, main, run_night
from crosscheck.score import score

AS_OF = date(2026, 11, 20)
EXPORT_COLUMNS = ["case_id", "run_date", "household_id", "district", "township", "category", "rule",
                  "member_id_masked", "member_name", "evidence", "link", "link_score", "priority", "status"]
FULL_ID = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")


@pytest.fixture
def night(small_night):
    """A generated scale-0.01 night run through the flow (conftest.py: one per test session)."""
    return small_night


def test_every_source_loaded_and_every_stage_timed(night):
    _, _, summary = night
    assert set(summary["stages"]) == {"prepare", "workspace", "load", "validate", "link", "flag", "ledger", "report"}
    # and its CPU seconds: positive for the stages that do work (the load reads every delivery)
    assert set(summary["stage_cpu_s"]) == set(summary["stages"])
    assert summary["stage_cpu_s"]["load"] > 0 and all(v >= 0 for v in summary["stage_cpu_s"].values())
    for source, info in summary["sources"].items():
        assert info["status"] == "ok", (source, info)
        assert info["rows_read"] > 0 and info["rows_read"] == info["rows_staged"] + info["rows_quarantined"]


def test_case_export_has_contract_columns(night):
    base, _, summary = night
    csv_bytes = (base / "out" / "cases.csv").read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    cases = pd.read_csv(base / "out" / "cases.csv", dtype=str, encoding="utf-8-sig")
    parquet = pd.read_parquet(base / "out" / "cases.parquet")
    assert list(cases.columns[:len(EXPORT_COLUMNS)]) == EXPORT_COLUMNS
    assert len(cases) == len(parquet) == summary["cases_exported"] > 0
    assert set(cases["status"]) == {"new"} and set(cases["run_date"]) == {AS_OF.isoformat()}
    assert cases["member_id_masked"].str.fullmatch(r"\d{6}\*{8}[\dX]{4}").all()
    assert set(cases["link"]) <= {"id_exact", "id_repaired", "fuzzy"}
    assert cases["case_id"].is_unique


def test_outputs_hold_no_full_id_and_are_private(night):
    base, _, _ = night
    for path in (base / "out").iterdir():
        if path.suffix in (".csv", ".html", ".md", ".json"):
            assert not FULL_ID.search(path.read_text(encoding="utf-8-sig")), path.name
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path.name


def test_r01_and_r02_scored_against_truth(night):
    base, landing, _ = night
    table = score(base / "out" / "cases.csv", default_truth(landing)).set_index("rule")
    for rule in ("R01", "R02"):
        assert table.loc[rule, "true_cases"] > 0
        assert table.loc[rule, "recall"] >= 0.9, table.loc[rule].to_dict()
        assert table.loc[rule, "precision"] >= 0.8, table.loc[rule].to_dict()


def test_second_night_opens_cases_and_score_cli(night, capsys):
    base, landing, summary = night
    again = run_night(landing, AS_OF.replace(day=21), base / "out2", base / "state")
    cases = pd.read_csv(base / "out2" / "cases.csv", dtype=str, encoding="utf-8-sig")
    assert (cases["status"] == "open").sum() > 0
    assert again["ledger"]["open"] > 0
    # nothing was redelivered: every source's load of the first night is reused, with the same rows,
    # the same verdicts; the dashboard's trend now has two nights per source
    for source, info in again["sources"].items():
        first = summary["sources"][source]
        assert (info["status"], info["rows_staged"], info["rows_quarantined"]) == \
               (first["status"], first["rows_staged"], first["rows_quarantined"]), source
        assert any("not read again" in m for m in info["messages"]), source
    dashboard = (base / "out2" / "dashboard.html").read_text(encoding="utf-8")
    for source in again["sources"]:
        row = dashboard.split(f'id="source-{source}"')[1].split("</tr>")[0]
        assert row.count("<circle") == 2, source
    assert main(["score", "--out", str(base / "out"), "--landing", str(landing)]) == 0
    out = capsys.readouterr().out
    assert "| R01 |" in out and "| R02 |" in out and "precision" in out


def test_summary_saved(night):
    base, _, summary = night
    saved = json.loads((base / "out" / "run_summary.json").read_text(encoding="utf-8"))
    assert saved["rules"] == summary["rules"]
    assert "| R02 |" in (base / "out" / "run_summary.md").read_text(encoding="utf-8")


def test_generate_command_writes_owner_only_files(tmp_path, capsys):
    landing = tmp_path / "landing"
    assert main(["generate", "--out", str(landing), "--as-of", "2026-11-20", "--scale", "0.005", "--seed", "3"]) == 0
    assert "R09" in capsys.readouterr().out
    written = [p for p in tmp_path.rglob("*")]
    assert written and all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in written)
