"""Test-wide settings: Prefect gets its own home (removed afterwards), no telemetry, no server."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_PREFECT_HOME = tempfile.mkdtemp(prefix="crosscheck-test-prefect-")
atexit.register(shutil.rmtree, _PREFECT_HOME, True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.pop("PREFECT_API_URL", None)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def small_night(tmp_path_factory):
    """generate (scale 0.01, seed 7) → run through the Prefect flow, once per session: (base, landing,
    summary) with ``base/out`` and ``base/state``. Tests that only read its outputs share it."""
    from datetime import date

    from crosscheck.cli import run_night
    from synthetic.generate import generate

    as_of = date(2026, 11, 20)
    base = tmp_path_factory.mktemp("night")
    landing = base / "landing"
    generate(landing, as_of, 0.01, 7, None)
    summary = run_night(landing, as_of, base / "out", base / "state")
    return base, landing, summary


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright, with no network: every http(s) request is refused.
    Installs Chromium first when it is missing and this process may (crosscheck/systemdeps.py)."""
    from crosscheck import systemdeps

    if systemdeps.ensure(["chromium"]):
        pytest.skip("Chromium is not installed and could not be installed here (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=systemdeps.PACKAGES["chromium"], args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def pytest_sessionfinish(session, exitstatus):
    """Stop Prefect's temporary server while pytest's output streams are still open."""
    import sys

    if "prefect.server.api.server" in sys.modules:
        from prefect.server.api.server import SubprocessASGIServer

        for server in list(getattr(SubprocessASGIServer, "_instances", {}).values()):
            server.stop()
