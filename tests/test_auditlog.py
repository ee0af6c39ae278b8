"""The append-only audit log (crosscheck/auditlog.py): a hash chain that names the first line broken."""
from __future__ import annotations

import stat

from crosscheck import auditlog
from crosscheck.cli import main


def test_entries_chain_and_verify(tmp_path):
    for i in range(3):
        auditlog.append(tmp_path, "night_started", run_date=f"2026-11-0{i + 1}", note="420802196001010011 here")
    entries = auditlog.read(tmp_path)
    assert [e["run_date"] for e in entries] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert entries[0]["prev"] == auditlog.GENESIS and entries[1]["prev"] != entries[2]["prev"]
    assert all("420802196001010011" not in e["note"] for e in entries)        # IDs masked on the way in
    assert auditlog.verify(tmp_path) == (3, None)
    path = auditlog.log_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_changed_line_is_named(tmp_path):
    for i in range(4):
        auditlog.append(tmp_path, "feedback_imported", file=f"f{i}.xlsx", rows_accepted=i)
    path = auditlog.log_path(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"rows_accepted": 1', b'"rows_accepted": 9')
    path.write_bytes(b"".join(lines))
    entries, problem = auditlog.verify(tmp_path)
    assert entries == 2 and "line 3" in problem


def test_a_removed_line_is_named(tmp_path, capsys):
    for i in range(3):
        auditlog.append(tmp_path, "bundle_written", district=f"d{i}")
    path = auditlog.log_path(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[2])
    assert auditlog.verify(tmp_path)[1] is not None
    assert main(["audit-log", "--state", str(tmp_path)]) == 1
    assert "BROKEN" in capsys.readouterr().err


def test_cli_shows_the_latest_entries(tmp_path, capsys):
    auditlog.append(tmp_path, "night_finished", run_date="2026-11-20", cases_exported=5)
    assert main(["audit-log", "--state", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "night_finished" in out and "cases_exported=5" in out and "chain intact" in out
