"""The night's workspace (crosscheck/workspace.py): a copy of the warehouse that replaces it only on commit,
and only once every byte of the copy is on disk."""
from __future__ import annotations

import os

import duckdb

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
