"""Read-ahead: the next delivered file is read and parsed on a background thread while DuckDB stages the
file before it.

Reading a file is mostly single-threaded Python (GB18030 decoding, the XLSX reader, hashing) while staging is
DuckDB on every core; one after the other, a core idles through every read. The load stage lists the files it
will read tonight, in order (``plan_reads``), and a ``ReadAhead`` reads them one file ahead of the loader:
file *i + 1* is read only once the loader has taken file *i*, so at most one file waits in memory, and a file
larger than ``read_ahead_max_mib`` (thresholds.yaml) is left for the loader to read itself.

The loader asks for every file through ``FileConnector.read``, which takes the read-ahead's copy when there
is one for exactly that file (the same ``connectors.landing.stat_key`` as when it was read ahead, the same
table spec) and otherwise reads the file as it always does. The read-ahead never decides anything: it runs
the same ``read_file`` the loader would, so a file read ahead and a file read by the loader give the same
``DeliveredFile``; a read that fails in the background is simply done again by the loader, where its error
is reported the usual way.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from connectors.base import DeliveredFile
from connectors.landing import stat_key
from crosscheck.settings import TableSpec


@dataclass(frozen=True)
class PlannedRead:
    """One file the loader will read tonight, with the spec of the table it belongs to."""

    path: Path
    spec: TableSpec


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def file_identity(path: Path) -> tuple | None:
    """``stat_key`` of the file as it is now (None when it is gone): changed since it was read ahead, it differs."""
    st = _stat(path)
    return stat_key(path, st) if st is not None else None


class ReadAhead:
    """Reads ``plan`` on one daemon thread, at most one file ahead of the loader's ``take``."""

    def __init__(self, plan: Sequence[PlannedRead], max_bytes: int):
        self.plan = list(plan)
        self.max_bytes = max_bytes
        self._cond = threading.Condition()
        self._next = 0                       # index of the next planned file the loader has not passed
        self._at = 0                         # index of the file the worker reads now or will read next
        self._done: dict[int, tuple[tuple | None, DeliveredFile | None]] = {}   # index → (identity, result)
        self._stopped = False
        self.served = 0                      # files handed to the loader (for the night's summary)
        self._thread = threading.Thread(target=self._work, name="read-ahead", daemon=True)

    def start(self) -> "ReadAhead":
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more reads; results nobody took are dropped (their memory is freed)."""
        with self._cond:
            self._stopped = True
            self._done.clear()
            self._cond.notify_all()

    def take(self, path: Path, spec: TableSpec) -> DeliveredFile | None:
        """The read-ahead's copy of ``path``, waiting for it while it is being read; None when the loader must
        read the file itself (not planned, too large, failed, changed since, or the read-ahead is busy with a
        file the loader skipped)."""
        path = Path(path)
        with self._cond:
            index = next((i for i in range(self._next, len(self.plan)) if self.plan[i].path == path), None)
            if index is None or self._stopped:
                return None
            # the loader has moved on to this file: files of the plan before it will not be asked for
            for skipped in range(self._next, index):
                self._done.pop(skipped, None)
            self._next = index
            self._cond.notify_all()
            while (not self._stopped and index not in self._done and self._at == index
                   and self._thread.is_alive()):
                self._cond.wait(timeout=1.0)
            identity, result = self._done.pop(index, (None, None))
            self._next = index + 1
            self._cond.notify_all()
        if result is None or self.plan[index].spec != spec or identity is None or identity != file_identity(path):
            return None
        self.served += 1
        return result

    def _work(self) -> None:
        from connectors.files import read_file   # not at import: files.py uses this module
        for index, item in enumerate(self.plan):
            with self._cond:
                self._at = index
                self._cond.notify_all()
                # one file ahead at most: start file i only once the loader has taken file i - 1
                while not self._stopped and self._next < index:
                    self._cond.wait()
                if self._stopped:
                    return
                if self._next > index:            # the loader is already past it
                    continue
            st = _stat(item.path)
            identity = stat_key(item.path, st) if st is not None else None
            result = None
            if st is not None and st.st_size <= self.max_bytes:
                try:
                    result = read_file(item.path, item.spec)
                except Exception:  # noqa: BLE001 — the loader reads it again and reports the error its way
                    result = None
                if file_identity(item.path) != identity:   # changed while it was being read
                    result = None
            with self._cond:
                if not self._stopped and self._next <= index:
                    self._done[index] = (identity, result)
                self._cond.notify_all()
        with self._cond:
            self._at = len(self.plan)
            self._cond.notify_all()


_ACTIVE: ReadAhead | None = None
_ACTIVE_LOCK = threading.Lock()


def start_read_ahead(plan: Sequence[PlannedRead], max_bytes: int) -> ReadAhead | None:
    """Start reading ``plan`` ahead of the loader (replacing any read-ahead still active); None if disabled."""
    global _ACTIVE
    stop_read_ahead()
    if max_bytes <= 0 or not plan:
        return None
    with _ACTIVE_LOCK:
        _ACTIVE = ReadAhead(plan, max_bytes).start()
        return _ACTIVE


def stop_read_ahead() -> int:
    """Stop the active read-ahead; returns how many files it served."""
    global _ACTIVE
    with _ACTIVE_LOCK:
        active, _ACTIVE = _ACTIVE, None
    if active is None:
        return 0
    active.stop()
    return active.served


def take_read_ahead(path: Path, spec: TableSpec) -> DeliveredFile | None:
    """The active read-ahead's copy of ``path`` (see ``ReadAhead.take``), or None."""
    active = _ACTIVE
    return active.take(path, spec) if active is not None else None
