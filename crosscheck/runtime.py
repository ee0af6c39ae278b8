"""Process settings for a night: Prefect without a server or network, private files, one run at a time."""
from __future__ import annotations

import fcntl
import os
from contextlib import closing, contextmanager
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
    database, template = _database_and_template(Path(spec.submodule_search_locations[0]))
    fresh = database is not None and not database.exists()
    if fresh and template is not None:
        _copy_template(template, database)
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
                        if fresh and template is not None and not template.exists():
                            _save_template(database, template)
                        return
            except OSError:
                pass
            time.sleep(0.1)
        stop()
        raise RuntimeError(f"Prefect's temporary server on 127.0.0.1:{port} did not answer in time")

    return wait_until_ready


def _database_and_template(package: Path) -> tuple[Path | None, Path | None]:
    """Prefect's SQLite database in PREFECT_HOME (None when another database is configured) and where a freshly
    migrated, empty copy of it for the installed Prefect is cached.

    On a new state folder the temporary server would bring an empty database up to date through Prefect's
    ~110 migrations: about 6 s of the first night of every state folder (11.9 s until the server answers
    instead of 5.6 s). The first night on this machine keeps that migrated database, before any run is
    recorded in it, in the user's cache; later new state folders start from a copy. The cache is keyed by
    Prefect's version and its migration files, so an upgraded Prefect never reads an older template."""
    import hashlib
    import importlib.metadata

    if any(os.environ.get(k) for k in ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")):
        return None, None
    home = os.environ.get("PREFECT_HOME")
    if not home:
        return None, None
    database = Path(home) / "prefect.db"
    try:
        version = importlib.metadata.version("prefect")
        migrations = sorted(p.name for p in (package / "server" / "database" / "_migrations" / "versions"
                                             / "sqlite").glob("*.py"))
    except (importlib.metadata.PackageNotFoundError, OSError):
        return database, None
    if not migrations:
        return database, None
    key = hashlib.sha256("\n".join([version, *migrations]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crosscheck"
    return database, cache / f"prefect-{version}-{key}.db"


def _copy_template(template: Path, database: Path) -> None:
    """A copy of the cached empty database for a new state folder (owner-only); nothing when there is none
    or it is unreadable: the server then migrates a new database itself."""
    import shutil
    import sqlite3

    if not template.is_file():
        return
    partial = database.with_name(database.name + ".partial")
    try:
        shutil.copyfile(template, partial)
        os.chmod(partial, 0o600)
        with closing(sqlite3.connect(partial)) as con:   # a damaged cache is never used
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok" or \
                    not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone():
                raise sqlite3.DatabaseError("not a migrated Prefect database")
        os.replace(partial, database)
    except (OSError, sqlite3.Error):
        partial.unlink(missing_ok=True)


def _save_template(database: Path, template: Path) -> None:
    """Keep the just-migrated database, before any run is recorded in it, as the cache's template (SQLite's
    backup API: a consistent copy while the server has it open). A failure only means no template."""
    import sqlite3

    try:
        make_private_dir(template.parent)
        partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
        with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(partial)) as target:
            source.backup(target)
        os.chmod(partial, 0o600)
        os.replace(partial, template)
    except (OSError, sqlite3.Error):
        pass


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


_HELD_LOCKS: dict[str, object] = {}     # resolved state folder -> lock file taken ahead of its night


def _lock_key(state: Path) -> str:
    return str(Path(state).resolve())


def _take_night_lock(state: Path):
    make_private_dir(state)
    handle = open(state / ".night.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise NightAlreadyRunning(f"another crosscheck run is using {state}; this one was not started") from exc
    return handle


def _let_go(handle) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def hold_night_lock(state: Path) -> bool:
    """Take the state folder's night lock before the night itself starts, for this process's next night
    (``exclusive_night`` takes it over instead of locking again). ``crosscheck run`` does, so that it can copy
    the warehouse while Prefect's server starts (crosscheck/workspace.py ``start_precopy``) with no other run
    able to touch the state folder. False when another run holds the lock: the night then refuses to start,
    as it always does."""
    key = _lock_key(state)
    if key in _HELD_LOCKS:
        return True
    try:
        _HELD_LOCKS[key] = _take_night_lock(Path(state))
    except NightAlreadyRunning:
        return False
    return True


def holds_night_lock(state: Path) -> bool:
    """Whether this process holds the lock ``hold_night_lock`` took and no night has taken over yet."""
    return _lock_key(state) in _HELD_LOCKS


def release_night_lock(state: Path) -> None:
    """Let go of a lock ``hold_night_lock`` took that no night took over (the night never started)."""
    handle = _HELD_LOCKS.pop(_lock_key(state), None)
    if handle is not None:
        _let_go(handle)


@contextmanager
def exclusive_night(state: Path):
    """Refuse a second run on the same state folder while one is under way (the lock this process took
    ahead with ``hold_night_lock``, if any, is taken over and released at the end)."""
    handle = _HELD_LOCKS.pop(_lock_key(state), None) or _take_night_lock(Path(state))
    try:
        yield
    finally:
        _let_go(handle)
