"""Issue 8: a night killed at any point and run again ends exactly as an uninterrupted night; running a
complete night again changes nothing; two runs on one state folder at once are refused.

The nights are test_ledger_nights' literal deliveries: night 1, then the auditors' returned workbook, then
night 2, the night that is killed. Every run is a real ``crosscheck run`` process (Prefect's temporary
server, GX, Chromium and the workbook helper included) killed with SIGKILL at a random moment (seeded, so a
failure can be replayed): a tenth of them during start-up, the rest spread over the time the flow of an
uninterrupted night 2 takes (from "Beginning flow run" to its last line, publishing included); then the same
command runs to the end and everything it left (every output file, the ledger, flags and linked tables) is
compared with the uninterrupted night. CROSSCHECK_KILL_POINTS sets the number of kills (default 20).
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crosscheck import auditlog
from tests.nightcompare import differences, night_result
from tests.test_ledger_nights import NIGHT1, NIGHT2, deliver, return_workbook

pytestmark = pytest.mark.slow   # ~20 killed and resumed nights: CI runs it in the slow step

REPO = Path(__file__).resolve().parents[1]
KILL_POINTS = int(os.environ.get("CROSSCHECK_KILL_POINTS", "20"))
SEED = 20261204


def _env(base: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(base / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", PYTHONUNBUFFERED="1")
    return env


def _command(landing: Path, night, out: Path, state: Path) -> list[str]:
    return [sys.executable, "-m", "crosscheck.cli", "run", "--landing", str(landing), "--as-of", night.isoformat(),
            "--out", str(out), "--state", str(state)]


def run(base: Path, landing: Path, night, out: Path, state: Path) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(_command(landing, night, out, state), cwd=REPO, env=_env(base), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return time.perf_counter() - started, proc.stdout + proc.stderr


def _leftovers(base: Path, pid: int) -> list[str]:
    """Processes still running that belong to the killed night: its process group, or anything whose
    command line names this test's folder (Chromium printing into it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            pgid = os.getpgid(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
        if pgid == pid or str(base) in cmdline:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def kill_at(base: Path, landing: Path, night, out: Path, state: Path, seconds: float,
            after_flow_begins: bool) -> str:
    """Start the night and SIGKILL its process ``seconds`` after it starts, or after its flow begins;
    what it had logged by then."""
    log = base / "killed.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(_command(landing, night, out, state), cwd=REPO, env=_env(base), stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
        if after_flow_begins:
            deadline = time.monotonic() + 300
            while "Beginning flow run" not in log.read_text(errors="replace") and proc.poll() is None:
                assert time.monotonic() < deadline, "the night's flow did not begin"
                time.sleep(0.05)
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)      # the night's own process only: its helpers must follow it
            proc.wait()
    deadline = time.monotonic() + 20
    while (left := _leftovers(base, proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        for line in left:
            try:
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise AssertionError(f"the killed night left processes running: {left}")
    return log.read_text(errors="replace")


def _where(log: str) -> str:
    """The last stage the killed run reached, from its log."""
    marks = [line for line in log.splitlines() if "Task run '" in line or "Beginning flow run" in line]
    if not marks:
        return "before the flow began"
    last = marks[-1]
    return "flow begun" if "Beginning" in last else last.split("Task run '")[1].split("'")[0] + " done"


@pytest.fixture(scope="module")
def before_night2(tmp_path_factory):
    """State and landing just before night 2 (night 1 run, the auditors' workbook returned), and the result
    of an uninterrupted night 2 on a copy of them, with its duration."""
    base = tmp_path_factory.mktemp("crash")
    landing, state = base / "landing", base / "state1"
    deliver(landing)
    run(base, landing, NIGHT1, base / "out1", state)
    return_workbook(base / "out1", landing)
    shutil.copytree(state, base / "reference-state", symlinks=True)
    seconds, output = run(base, landing, NIGHT2, base / "reference-out", base / "reference-state")
    reference = night_result(base / "reference-out", base / "reference-state")
    return base, landing, state, reference, (seconds, _flow_span(output))


def _flow_span(output: str) -> float:
    """Seconds from "Beginning flow run" to the flow's last line, from the log's HH:MM:SS.mmm stamps."""
    stamps = [line[:12] for line in output.splitlines() if re.match(r"\d\d:\d\d:\d\d\.\d{3} \|", line)]
    begin = next(line[:12] for line in output.splitlines() if "Beginning flow run" in line)

    def secs(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return secs(stamps[-1]) - secs(begin)


def test_killed_nights_resume_to_the_uninterrupted_result(before_night2):
    base, landing, state, reference, (seconds, flow_span) = before_night2
    rng = random.Random(SEED)
    # most kills inside the flow (start-up is a third of the process' time and holds no state), a few before
    early = max(2, KILL_POINTS // 10)
    points = sorted((False, rng.uniform(0.5, seconds - flow_span)) for _ in range(early))
    points += sorted((True, rng.uniform(0.0, flow_span + 1.0)) for _ in range(KILL_POINTS - early))
    failures, reached = [], []
    for i, (in_flow, at) in enumerate(points):
        trial_state, trial_out = base / f"trial-state-{i}", base / f"trial-out-{i}"
        shutil.copytree(state, trial_state, symlinks=True)
        log = kill_at(base, landing, NIGHT2, trial_out, trial_state, at, in_flow)
        at_text = f"flow +{at:.1f}s" if in_flow else f"{at:.1f}s"
        reached.append(f"{at_text}: {_where(log)}")
        run(base, landing, NIGHT2, trial_out, trial_state)
        diff = differences(reference, night_result(trial_out, trial_state))
        if diff:
            failures.append(f"killed at {at_text} ({_where(log)}): {diff}")
        assert not list(trial_out.glob(".partial-night")) and not (trial_state / ".night").exists()
        entries, problem = auditlog.verify(trial_state)
        assert problem is None and entries > 0
        shutil.rmtree(trial_state)
        shutil.rmtree(trial_out)
    print(f"uninterrupted night 2: {seconds:.1f} s, its flow {flow_span:.1f} s; killed at: " + "; ".join(reached))
    assert not failures, "\n".join(failures)


def test_running_a_complete_night_again_changes_nothing(before_night2):
    base, landing, _, reference, _ = before_night2
    warehouse = base / "reference-state" / "warehouse.duckdb"
    before = warehouse.read_bytes()
    _, output = run(base, landing, NIGHT2, base / "reference-out", base / "reference-state")
    assert "already complete" in output
    assert warehouse.read_bytes() == before, "the warehouse file changed"
    assert not (base / "reference-state" / ".night").exists(), "the copy made ahead was left behind"
    assert differences(reference, night_result(base / "reference-out", base / "reference-state")) == []
    events = [e["event"] for e in auditlog.read(base / "reference-state")]
    assert events[-1] == "night_already_complete"


def test_a_second_run_on_the_same_state_is_refused(before_night2):
    """Two runs of night 2 started together on one state folder: one does the night, the other is refused
    (exit 3, a clear message, nothing written to its output folder), and the audit log says so."""
    base, landing, state, reference, _ = before_night2
    trial_state = base / "concurrent-state"
    shutil.copytree(state, trial_state, symlinks=True)
    outs = [base / "concurrent-out-1", base / "concurrent-out-2"]
    procs = [subprocess.Popen(_command(landing, NIGHT2, out, trial_state), cwd=REPO, env=_env(base),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
             for out in outs]
    try:
        outputs = [p.communicate(timeout=900) for p in procs]
        results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], [(code, err[-1500:]) for code, _, err in results]
    winner = 0 if results[0][0] == 0 else 1
    assert "another crosscheck run is using" in results[1 - winner][2]
    assert not (outs[1 - winner] / "cases.csv").exists()
    assert differences(reference, night_result(outs[winner], trial_state)) == []
    events = [e["event"] for e in auditlog.read(trial_state)]
    assert "night_refused" in events and events.count("night_finished") == 2     # night 1's and this one
