"""The night's workspace (crosscheck/workspace.py): a copy of the warehouse that replaces it only on commit,
and only once every byte of the copy is on disk."""
from __future__ import annotations

import os

import duckdb
import pytest

from crosscheck import workspace
from crosscheck.workspace import open_workspace, warehouse_path


def _warehouse(state, value: int) -> None:
    state.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse_path(state))) as con:
        con.execute("CREATE OR REPLACE TABLE t AS SELECT ? AS v", [value])


def _value(path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT v FROM t").fetchone()[0]


def test_commit_waits_for_the_copy_on_disk_before_it_replaces_the_warehouse(tmp_path, monkeypatch):
    state, out = tmp_path / "state", tmp_path / "out"
    _warehouse(state, 1)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(workspace.os, "fsync", fsync)
    monkeypatch.setattr(workspace.os, "replace", replace)
    ws = open_workspace(state, out)
    with duckdb.connect(str(ws.warehouse)) as con:
        con.execute("UPDATE t SET v = 2")
    assert _value(warehouse_path(state)) == 1          # the warehouse people read is untouched until commit
    copy = str(ws.warehouse)
    ws.commit()
    assert ("fsync", copy) in events[:events.index(("replace", copy))]
    assert _value(warehouse_path(state)) == 2
    assert not (state / workspace.WORK_DIR).exists()


def test_a_discarded_night_leaves_the_warehouse_as_it_was(tmp_path):
    state, out = tmp_path / "state", tmp_path / "out"
    _warehouse(state, 1)
    ws = open_workspace(state, out)
    assert oct(ws.warehouse.stat().st_mode & 0o777) == oct(0o600)
    with duckdb.connect(str(ws.warehouse)) as con:
        con.execute("UPDATE t SET v = 3")
    ws.discard()
    assert _value(warehouse_path(state)) == 1
    assert not ws.warehouse.exists()


def _count_copies(monkeypatch) -> list:
    copies: list = []
    real_copy = workspace._copy_file
    monkeypatch.setattr(workspace, "_copy_file", lambda src, dst: copies.append(dst) or real_copy(src, dst))
    return copies


def test_the_copy_made_ahead_is_the_workspace_when_the_warehouse_did_not_change(tmp_path, monkeypatch):
    state, out = tmp_path / "state", tmp_path / "out"
    _warehouse(state, 1)
    copies = _count_copies(monkeypatch)
    assert workspace.start_precopy(state)
    ws = open_workspace(state, out)
    assert len(copies) == 1                              # the copy made ahead, not a second one
    assert _value(ws.warehouse) == 1
    assert oct(ws.warehouse.stat().st_mode & 0o777) == oct(0o600)
    with duckdb.connect(str(ws.warehouse)) as con:
        con.execute("UPDATE t SET v = 2")
    assert _value(warehouse_path(state)) == 1
    ws.commit()
    assert _value(warehouse_path(state)) == 2


def _replace_with_another_file(state, tmp_path) -> int:
    """The warehouse replaced (another inode), as a night's commit does."""
    newer = tmp_path / "newer.duckdb"
    with duckdb.connect(str(newer)) as con:
        con.execute("CREATE TABLE t AS SELECT 7 AS v")
    os.replace(newer, warehouse_path(state))
    return 7


def _write_in_place(state, tmp_path) -> int:
    """The same file written again (its modification time moved on)."""
    stat = warehouse_path(state).stat()
    _warehouse(state, 5)
    os.utime(warehouse_path(state), ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    return 5


@pytest.mark.parametrize("change", [_replace_with_another_file, _write_in_place])
def test_a_copy_made_ahead_of_an_older_warehouse_is_not_used(tmp_path, monkeypatch, change):
    """The warehouse changed after the copy was made: the workspace copies it again."""
    state, out = tmp_path / "state", tmp_path / "out"
    _warehouse(state, 1)
    copies = _count_copies(monkeypatch)
    assert workspace.start_precopy(state)
    workspace._PRECOPIES[str(state.resolve())].done.wait()
    value = change(state, tmp_path)
    ws = open_workspace(state, out)
    assert len(copies) == 2
    assert _value(ws.warehouse) == value


def test_a_copy_made_ahead_that_no_night_took_is_removed(tmp_path):
    state = tmp_path / "state"
    _warehouse(state, 1)
    assert workspace.start_precopy(state)
    workspace.discard_precopy(state)
    assert not (state / workspace.WORK_DIR).exists()
    assert _value(warehouse_path(state)) == 1
    assert not workspace.start_precopy(tmp_path / "no-warehouse-yet")
