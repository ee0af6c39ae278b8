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


def _lock_is_free(state) -> bool:
    """Whether another process could take the night's lock now."""
    import subprocess

    code = ("import fcntl, sys; h = open(sys.argv[1], 'a+')\n"
            "try:\n    fcntl.flock(h, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(1)")
    return subprocess.run([sys.executable, "-c", code, str(state / ".night.lock")]).returncode == 0


def test_the_lock_taken_ahead_is_handed_to_the_night(tmp_path):
    state = tmp_path / "state"
    assert runtime.hold_night_lock(state)
    assert not _lock_is_free(state)
    with runtime.exclusive_night(state):               # taken over, not refused by this process's own lock
        assert not runtime.holds_night_lock(state)
        assert not _lock_is_free(state)
    assert _lock_is_free(state)


def test_no_lock_ahead_while_another_run_holds_it(tmp_path):
    state = tmp_path / "state"
    with runtime.exclusive_night(state):
        assert not runtime.hold_night_lock(state)
    assert not runtime.holds_night_lock(state)


def test_run_night_copies_the_warehouse_under_the_lock_and_cleans_up_when_the_night_never_starts(
        monkeypatch, tmp_path):
    import duckdb

    from crosscheck import workspace

    state = tmp_path / "state"
    state.mkdir()
    with duckdb.connect(str(workspace.warehouse_path(state))) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS v")
    seen: list[str] = []
    monkeypatch.setattr(runtime, "configure_prefect", lambda state: None)
    monkeypatch.setattr(runtime, "start_temporary_server", lambda: None)
    monkeypatch.setattr(nightly, "warm_check_engine", lambda: None)

    def night(**kwargs):
        seen.append(f"locked ahead: {runtime.holds_night_lock(state)}, copying: "
                    f"{str(state.resolve()) in workspace._PRECOPIES}")
        raise RuntimeError("Prefect could not start the flow run")

    monkeypatch.setattr(nightly, "night", night)
    try:
        cli.run_night(tmp_path, date(2026, 11, 19), tmp_path / "out", state)
    except RuntimeError:
        pass
    assert seen == ["locked ahead: True, copying: True"]
    assert not runtime.holds_night_lock(state) and _lock_is_free(state)
    assert not (state / workspace.WORK_DIR).exists() and not workspace._PRECOPIES
