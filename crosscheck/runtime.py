"""Process settings for a night: Prefect without a server or network, private files, one run at a time."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from crosscheck.safety import make_private_dir, private_umask

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


def start_temporary_server_in_background():
    """Start Prefect's temporary API server (when no PREFECT_API_URL names a real one) on a thread, so that
    its start-up (a separate uvicorn process: a few seconds) overlaps the import of the pipeline in this
    process. Returns the thread to join before the flow runs, or None. Should the start fail, the flow's
    own client starts the server again and reports the error the usual way."""
    import threading

    if os.environ.get("PREFECT_API_URL"):
        return None
    from prefect.server.api.server import SubprocessASGIServer

    def start() -> None:
        try:
            SubprocessASGIServer().start()
        except Exception:  # noqa: BLE001 — retried, and reported, by the flow's own client
            pass

    thread = threading.Thread(target=start, name="prefect-server-start", daemon=True)
    thread.start()
    return thread


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
