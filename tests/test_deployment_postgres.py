"""The production deployment, as README "Production deployment (Prefect server on PostgreSQL)" sets it up,
on this machine and with nothing pre-existing.

A fresh PostgreSQL database for Prefect; `prefect server start` on 127.0.0.1 with
PREFECT_API_DATABASE_CONNECTION_URL pointing at it; the process work pool; `prefect deploy` from
prefect.yaml with landing, out and state taken from the environment; a night triggered by hand and run to
completion by a worker; a second night whose landing zone does not exist, which must end Failed with the
stage and the reason in its state. Every process it starts it stops (their process groups, and the flow-run
processes the worker starts in sessions of their own), and it drops the database, even when it fails.

The test process never sets PREFECT_API_URL: the commands get an explicit environment, and the API checks
use a client whose URL is set only inside `temporary_settings`.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # a server, a deploy and two nights in fresh processes (~3 min)

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-20"
PG_HOST = os.environ.get("CROSSCHECK_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CROSSCHECK_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CROSSCHECK_TEST_PG_USER", "postgres")
POOL = "crosscheck-process"
DEPLOYMENT = "crosscheck-night/nightly"

SERVER_READY_S = 240      # migrations of a fresh database included
COMMAND_S = 300           # one prefect CLI command
NIGHT_S = 1200            # one night at scale 0.01 from trigger to a final state, on a shared 2-core machine


# ---------------------------------------------------------------------------------------------- processes

def _children(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in children.read_text().split()]
        except OSError:
            pass
    return found


def _descendants(pid: int) -> list[int]:
    seen: list[int] = []
    todo = _children(pid)
    while todo:
        child = todo.pop()
        if child not in seen:
            seen.append(child)
            todo += _children(child)
    return seen


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Started:
    """A command started in its own session with its output in a log file; `stop()` ends it and everything
    it started, including descendants that moved to sessions of their own (Prefect starts each flow run's
    process with start_new_session)."""

    def __init__(self, name: str, args: list[str], *, env: dict, cwd: Path, log: Path):
        self.name, self.log_path = name, log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen([str(a) for a in args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if "nanobind" not in line and "leaked " not in line]
        return f"--- last lines of {self.name} ({self.log_path}) ---\n" + "\n".join(kept[-lines:])

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> None:
        pids = [self.proc.pid, *_descendants(self.proc.pid)]
        groups = set()
        for pid in pids:
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                pass
        groups.discard(os.getpgrp())
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in groups:
                try:
                    os.killpg(group, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            for pid in pids[1:]:       # a descendant whose group was not among those found
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            if self._gone(pids, grace):
                break
        self._log.close()

    def _gone(self, pids: list[int], within: float) -> bool:
        deadline = time.monotonic() + within
        while True:
            self.proc.poll()           # reaps our own child, so it does not linger as a zombie
            if not any(_alive(pid) for pid in pids):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture
def prefect_database():
    """A database of its own for Prefect's server, dropped at the end (WITH (FORCE): even while a stray
    connection is left)."""
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    name = f"crosscheck_test_prefect_{uuid.uuid4().hex[:12]}"

    def admin():
        return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True,
                               connect_timeout=10)

    try:
        con = admin()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_USER}@{PG_HOST}:{PG_PORT}: {exc}")
    with con:
        con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin() as con:
            con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            left = con.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name]).fetchone()[0]
        assert left == 0, f"database {name} was not dropped"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _base_env() -> dict[str, str]:
    """This process's environment without its Prefect settings (tests/conftest.py sets some for the
    in-process tests) and without any CROSSCHECK_ path, plus no telemetry and no prompts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CROSSCHECK_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_CLI_PROMPT="false")
    return env


class Stack:
    def __init__(self, base: Path, database_url: str):
        self.base = base
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.started: list[Started] = []
        self.server: Started | None = None
        self.database_url = database_url

    def client_env(self, home: str, **extra: str) -> dict[str, str]:
        env = _base_env()
        env.update(PREFECT_HOME=str(self.base / home), PREFECT_API_URL=self.api, **extra)
        return env

    def start(self, name: str, args: list, *, env: dict, cwd: Path) -> Started:
        started = Started(name, args, env=env, cwd=cwd, log=self.base / f"{name}.log")
        self.started.append(started)
        return started

    def logs(self) -> str:
        seen, parts = set(), []
        for started in self.started:
            if started.log_path not in seen:
                seen.add(started.log_path)
                parts.append(started.tail())
        return "\n".join(parts)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.logs()}", pytrace=False)

    def start_server(self) -> None:
        env = _base_env()
        env.update(
            PREFECT_HOME=str(self.base / "server-home"),
            PREFECT_API_DATABASE_CONNECTION_URL=self.database_url,
            PREFECT_UI_ENABLED="false",
            # The 02:00 schedule is checked as declared (test below); its runs are not created here, so a
            # test running at 02:00 Asia/Shanghai cannot have the scheduled night picked up by its worker.
            PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        )
        self.server = self.start("server", [sys.executable, "-m", "prefect", "server", "start", "--host",
                                            "127.0.0.1", "--port", self.port], env=env, cwd=self.base)
        deadline = time.monotonic() + SERVER_READY_S
        while time.monotonic() < deadline:
            if self.server.proc.poll() is not None:
                self.fail(f"prefect server exited with code {self.server.proc.returncode} before answering")
            try:
                with urllib.request.urlopen(f"{self.api}/health", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.fail(f"prefect server on 127.0.0.1:{self.port} did not answer /api/health in {SERVER_READY_S} s")

    def prefect(self, *args, env: dict | None = None, cwd: Path | None = None) -> str:
        """One `prefect` CLI command, as an operator types it (`python3 -m uv run prefect ...` runs this
        same interpreter's prefect)."""
        env = env or self.client_env("cli-home")
        try:
            done = subprocess.run([sys.executable, "-m", "prefect", *map(str, args)], env=env, cwd=cwd or self.base,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=COMMAND_S,
                                  start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            self.fail(f"`prefect {' '.join(map(str, args))}` did not finish in {COMMAND_S} s:\n"
                      f"{(exc.stdout or b'')[-3000:]!r}\n{(exc.stderr or b'')[-3000:]!r}")
        if done.returncode != 0:
            self.fail(f"`prefect {' '.join(map(str, args))}` exited with {done.returncode}:\n"
                      f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout + done.stderr

    def stop(self) -> None:
        for started in reversed(self.started):
            started.stop()


@pytest.fixture
def stack(tmp_path, prefect_database):
    stack = Stack(tmp_path, prefect_database)
    try:
        yield stack
    finally:
        stack.stop()
        leftovers = [s.name for s in stack.started if _alive(s.proc.pid)]
        assert not leftovers, f"still running after teardown: {leftovers}"


# ---------------------------------------------------------------------------------------------- API

class Api:
    """Prefect's client against the test's server, its URL set for the calls only (never in os.environ)."""

    def __init__(self, url: str):
        self.url = url

    def call(self, fn):
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.url}):
            with get_client(sync_client=True) as client:
                return fn(client)

    def flow_run(self, flow_run_id: str):
        return self.call(lambda c: c.read_flow_run(uuid.UUID(flow_run_id)))

    def logs(self, flow_run_id: str) -> list[str]:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        flt = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(flow_run_id)]))
        return [log.message for log in self.call(lambda c: c.read_logs(log_filter=flt, limit=200))]


def _trigger(stack: Stack, *params: str) -> str:
    args = ["deployment", "run", DEPLOYMENT]
    for param in params:
        args += ["--param", param]
    output = stack.prefect(*args)
    found = re.search(r"UUID: ([0-9a-f-]{36})", output)
    if not found:
        stack.fail(f"no flow run id in the output of `prefect deployment run`:\n{output}")
    return found.group(1)


def _run_to_final_state(stack: Stack, api: Api, flow_run_id: str, worker_cwd: Path):
    """Run `prefect worker start --pool ... --run-once` until the flow run reaches a final state: one
    worker normally does it (it polls once, runs what is due and waits for it); another is started if a
    poll came too early or the run waited for the deployment's concurrency slot."""
    deadline = time.monotonic() + NIGHT_S
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        worker = stack.start("worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL,
                                        "--run-once"], env=stack.client_env("worker-home"), cwd=worker_cwd)
        code = worker.wait(max(1.0, deadline - time.monotonic()))
        if code is None:
            break
        if code != 0:
            stack.fail(f"worker (attempt {attempt}) exited with code {code}")
        settle = time.monotonic() + 30      # the run's last state may reach the server just after
        run = api.flow_run(flow_run_id)
        while not (run.state is None or run.state.is_final() or run.state.is_scheduled()) \
                and time.monotonic() < settle:
            time.sleep(1)
            run = api.flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        if run.state is not None and not run.state.is_scheduled():
            stack.fail(f"the worker exited and left flow run {flow_run_id} {run.state!r}")
        time.sleep(2)                       # still scheduled (a poll too early, or waiting for the slot)
    run = api.flow_run(flow_run_id)
    stack.fail(f"flow run {flow_run_id} not in a final state after {NIGHT_S} s "
               f"({attempt} worker start(s)); its state: {run.state!r}")


# ---------------------------------------------------------------------------------------------- the test

@pytest.mark.timeout(NIGHT_S * 2 + SERVER_READY_S + 6 * COMMAND_S)
def test_nightly_deployment_on_a_prefect_server_backed_by_postgresql(stack, tmp_path):
    landing, out, state = tmp_path / "landing", tmp_path / "out", tmp_path / "state"
    generated = subprocess.run(
        [sys.executable, "-m", "crosscheck.cli", "generate", "--out", str(landing), "--as-of", AS_OF,
         "--scale", "0.01", "--seed", "7"], cwd=REPO, env=_base_env(), capture_output=True, text=True,
        timeout=COMMAND_S)
    assert generated.returncode == 0, generated.stdout[-3000:] + generated.stderr[-3000:]

    # the server on PostgreSQL, the pool, the deployment from prefect.yaml (README, steps 2–4)
    stack.start_server()
    stack.prefect("work-pool", "create", POOL, "--type", "process")
    deploy_env = stack.client_env("cli-home", CROSSCHECK_HOME=str(REPO), CROSSCHECK_LANDING=str(landing),
                                  CROSSCHECK_OUT=str(out), CROSSCHECK_STATE=str(state))
    stack.prefect("--no-prompt", "deploy", "-n", "nightly", env=deploy_env, cwd=REPO)

    api = Api(stack.api)
    deployment = api.call(lambda c: c.read_deployment_by_name(DEPLOYMENT))
    assert deployment.parameters == {"landing": str(landing), "out": str(out), "state": str(state)}
    assert deployment.work_pool_name == POOL and deployment.entrypoint == "flows/nightly.py:night"
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == [
        ("0 2 * * *", "Asia/Shanghai", True)]
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    assert api.call(lambda c: c.read_work_pool(POOL)).type == "process"

    # a night by hand, run by a worker started elsewhere than the checkout (the pull step moves the run there)
    worker_cwd = tmp_path / "worker-cwd"
    worker_cwd.mkdir()
    good = _trigger(stack, f"as_of={AS_OF}")
    run = _run_to_final_state(stack, api, good, worker_cwd)
    if not run.state.is_completed():
        stack.fail(f"the night ended {run.state.name}: {run.state.message}")
    assert run.deployment_id == deployment.id and run.parameters["as_of"] == AS_OF
    assert (out / "cases.csv").is_file(), f"no cases.csv in {out}: {sorted(p.name for p in out.iterdir())}"
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["run_date"] == AS_OF
    assert summary["landing"] == str(landing) and summary["state"] == str(state)

    # a night whose landing zone does not exist: Failed, and its state says which stage failed and why
    missing = tmp_path / "no-such-landing"
    bad = _trigger(stack, f"as_of={AS_OF}", f"landing={missing}")
    run = _run_to_final_state(stack, api, bad, worker_cwd)
    message = run.state.message or ""
    assert run.state.is_failed(), f"a night without its landing zone ended {run.state.name}: {message!r}"
    reported = re.search(rf"night {AS_OF} failed at stage ([\w-]+)\W+(.+)", message, re.S)
    assert reported, f"the Failed state does not say which stage failed and why: {message!r}"
    stage, reason = reported.groups()
    assert stage == "load", message
    assert str(missing) in reason or "landing" in reason.lower(), message
    assert any(f"failed at stage {stage}" in line for line in api.logs(bad)), \
        "the failed night's logs on the server do not carry the stage and reason"
