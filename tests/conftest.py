"""Test-wide settings: Prefect gets its own home, no telemetry, no server."""
from __future__ import annotations

import os
import tempfile

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="crosscheck-test-prefect-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.pop("PREFECT_API_URL", None)
