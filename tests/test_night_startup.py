"""Great Expectations is imported on a background thread while Prefect's temporary server starts, once."""
from __future__ import annotations

import sys
from datetime import date
from types import SimpleNamespace

import flows.nightly as nightly
from crosscheck import cli, runtime


def test_the_check_engine_is_warmed_once_per_process():
    first = nightly.warm_check_engine()
    assert first is not None and first.name == "gx-import"
    assert nightly.warm_check_engine() is first
    first.join(timeout=120)
    assert "great_expectations" in sys.modules


def test_no_warming_when_the_checks_run_as_plain_sql(monkeypatch):
    monkeypatch.setattr(nightly, "load_thresholds", lambda: SimpleNamespace(check_engine="sql"))
    assert nightly.warm_check_engine() is None


def test_run_night_warms_the_check_engine_before_it_waits_for_the_server(monkeypatch, tmp_path):
    seen: list[str] = []
    monkeypatch.setattr(runtime, "configure_prefect", lambda state: seen.append("configure"))
    monkeypatch.setattr(runtime, "start_temporary_server", lambda: lambda: seen.append("wait for server"))
    monkeypatch.setattr(nightly, "warm_check_engine", lambda: seen.append("warm"))
    monkeypatch.setattr(nightly, "night", lambda **kwargs: seen.append("night") or {"run_date": kwargs["as_of"]})
    assert cli.run_night(tmp_path, date(2026, 11, 19), tmp_path / "out", tmp_path / "state") == {
        "run_date": "2026-11-19"}
    assert seen == ["configure", "warm", "wait for server", "night"]
