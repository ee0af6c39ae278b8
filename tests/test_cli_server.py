"""`crosscheck run` as a new user starts it: a fresh process with no Prefect server anywhere.

The command starts Prefect's temporary API itself (crosscheck/runtime.py start_temporary_server) while it
imports the pipeline; the night must complete through it, and nothing it started may outlive it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # a whole night in a fresh process (~70 s): CI runs it in the slow step

REPO = Path(__file__).resolve().parents[1]


def test_run_in_a_fresh_process_starts_and_stops_its_own_server(small_night, tmp_path):
    _, landing, _ = small_night
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "crosscheck.cli", "run", "--landing", str(landing), "--as-of", "2026-11-20",
         "--out", str(tmp_path / "out"), "--state", str(tmp_path / "state")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["stages"] and (tmp_path / "out" / "cases.csv").exists()
    assert (tmp_path / "prefect").is_dir(), "the temporary server keeps its database in PREFECT_HOME"
    try:   # the command ran in its own process group: nothing of it (the uvicorn server) is left
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("a process started by `crosscheck run` outlived it")
