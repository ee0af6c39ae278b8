"""Process settings for a night: Prefect without a server or network, private files, one run at a time."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from crosscheck.safety import make_private_dir, private_umask

BACKGROUND_NICENESS = 10    # of the report's helper processes (background_helper)
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "INFO",
    # Task results stay in memory: they are small summaries, and nothing personal is written to disk.
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
}


def configure_prefect(state: Path) -> None:
    """Must run before prefect is imported. Without PREFECT_API_URL, Prefect starts a temporary local
    server whose database lives in PREFECT_HOME, here inside the state folder unless set."""
    private_umask()
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(make_private_dir(state / "prefect")))


def die_with_parent() -> None:
    """``preexec_fn`` of every helper process the night starts (Prefect's server, the workbook writer,
    Chromium): the kernel sends it SIGTERM when the thread that started it dies, even by SIGKILL, so a killed
    night leaves nothing running behind it (Linux; elsewhere a no-op)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def background_helper() -> None:
    """``preexec_fn`` of the report's background helpers (Chromium printing the PDFs, the workbook writer):
    ``die_with_parent`` and a lower CPU priority. The night's own thread, rendering the HTML report, is the
    report stage's critical path; at equal priority the helpers took most of the two cores from it.

    A helper that leads its own session (Chromium, started with start_new_session) is in its own scheduler
    autogroup on Linux, where a process's nice value counts only against the processes of the same group:
    there the group's own nice (/proc/self/autogroup) is lowered as well."""
    die_with_parent()
    try:
        os.nice(BACKGROUND_NICENESS)
    except OSError:
        pass
    if os.getsid(0) == os.getpid():
        try:
            with open("/proc/self/autogroup", "w") as group:
                group.write(str(BACKGROUND_NICENESS))
        except OSError:
            pass


def start_temporary_server():
    """Start Prefect's API for this process when no PREFECT_API_URL names a real server, before Prefect is
    imported, and return a function that waits until it answers (or None when Prefect's own arrangements
    apply: a real server, or Prefect already imported, as in the tests).

    Prefect's own temporary server would do the same work in series: import its whole server package in
    this process (about 9 s here), then start uvicorn in a subprocess and wait for it. Started here, the
    server process imports itself on the other core while this process imports the pipeline, and this
    process never imports the server package at all. The server runs in Prefect's ephemeral mode (no
    background services, no UI) on 127.0.0.1 with the database in PREFECT_HOME, and stops when this process
    exits."""
    import atexit
    import importlib.util
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    if os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return None
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.submodule_search_locations[0]).parent),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "error", "--lifespan", "on"], env=env, stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent)
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"

    def stop() -> None:
        """uvicorn stops gracefully on SIGTERM but waits for the client's keep-alive connections: after a
        short grace it is killed (every flow and task state was written before the flow returned; SQLite
        keeps its database whole)."""
        _drain_prefect_workers()
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=3)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    atexit.register(stop)

    def wait_until_ready() -> None:
        deadline = time.monotonic() + float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"Prefect's temporary server on 127.0.0.1:{port} exited with code "
                                   f"{server.returncode} before answering")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        stop()
        raise RuntimeError(f"Prefect's temporary server on 127.0.0.1:{port} did not answer in time")

    return wait_until_ready


def _drain_prefect_workers() -> None:
    """Send the run's remaining logs and events while the server still answers. Left to the interpreter's
    exit, Prefect's log handler drains after the server has stopped and waits out its 5 s timeout, and those
    last log lines never reach the run record."""
    import sys

    if "prefect" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    except Exception:  # noqa: BLE001 — best effort at exit; the night's results are already published
        pass


class NightAlreadyRunning(RuntimeError):
    pass


@contextmanager
def exclusive_night(state: Path):
    """Refuse a second run on the same state folder while one is under way."""
    make_private_dir(state)
    lock_path = state / ".night.lock"
    handle = open(lock_path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise NightAlreadyRunning(f"another crosscheck run is using {state}; this one was not started") from exc
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
