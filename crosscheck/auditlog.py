"""The append-only audit log: every run, every import of auditors' conclusions, every report bundle written.

One JSON object per line in ``<state>/audit/audit.log`` (owner-only). Each line carries the SHA-256 of the
line before it (``prev``), so removing, reordering or editing a line breaks the chain at that point and
``verify`` names the line. The log is only ever opened for appending (``O_APPEND``) and under a lock, so
two writers never interleave a line. It holds what happened, by whom (the OS user and host) and when, never
an ID number or a name: file names, counts, hashes, dates and stage names.
"""
from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from crosscheck.safety import make_private_dir, mask_ids

GENESIS = "0" * 64


def log_path(state: Path) -> Path:
    return Path(state) / "audit" / "audit.log"


def _last_line(handle) -> bytes | None:
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    if end == 0:
        return None
    pos, tail = end, b""
    while pos > 0:
        step = min(4096, pos)
        pos -= step
        handle.seek(pos)
        tail = handle.read(step) + tail
        lines = tail.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or pos == 0:
            return lines[-1]
    return None


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def append(state: Path, event: str, **fields) -> dict:
    """Add one entry; returns it. Free text is passed through mask_ids as a last guard."""
    path = log_path(state)
    make_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            last = _last_line(handle)
            entry = {"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event,
                     "by": _who(), "pid": os.getpid(),
                     **{k: (mask_ids(v) if isinstance(v, str) else v) for k, v in fields.items()},
                     "prev": hashlib.sha256(last).hexdigest() if last is not None else GENESIS}
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8") + b"\n"
            handle.seek(0, os.SEEK_END)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return entry


def read(state: Path) -> list[dict]:
    path = log_path(state)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def verify(state: Path) -> tuple[int, str | None]:
    """(entries, problem): problem names the first line whose ``prev`` does not match the line before it,
    or that is not a JSON object, or None when the chain is whole."""
    path = log_path(state)
    if not path.exists():
        return 0, None
    prev = GENESIS
    lines = path.read_bytes().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            return number - 1, f"{path}: line {number} is not a JSON entry"
        if not isinstance(entry, dict) or entry.get("prev") != prev:
            return number - 1, (f"{path}: line {number} does not follow line {number - 1} "
                                "(a line was removed, changed or inserted before it)")
        prev = hashlib.sha256(line).hexdigest()
    return len(lines), None
