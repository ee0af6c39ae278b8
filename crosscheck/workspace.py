"""A night's work is done aside and made visible in one step, so that a killed run leaves nothing half done.

The night never writes to the warehouse or the output folder that people read:

* it works on a copy of the warehouse (``<state>/.night/warehouse.duckdb``), made when it starts (by
  ``crosscheck run`` while the process starts, under the night's lock: ``start_precopy``);
* it writes every output into ``<out>/.partial-night/``.

When everything is written, ``commit()`` moves the outputs into ``<out>`` (``run_summary.json`` last: its
``run_date`` and ``inputs_sha`` say which night the folder holds) and then replaces the warehouse with the
copy by one ``rename``. Killed before that, the warehouse is still the one the night started from and the
outputs are the previous ones; the next run starts the night again from the same place and, the night being
deterministic, writes exactly what an uninterrupted run would have. Killed between the two steps, the
outputs are tonight's and the warehouse the one before: running again gives the same outputs again. Killed
after the rename, the night is complete, and running it again finds it so (``completed_night``) and changes
nothing.

Leftovers of a killed run (the copy, the partial folder, a half-finished move) are cleared when the next
run starts. Two runs on one state folder never meet: ``crosscheck.runtime.exclusive_night`` holds a lock.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from connectors.landing import sha256_file

from crosscheck.safety import make_private_dir

WAREHOUSE = "warehouse.duckdb"
WORK_DIR = ".night"
PARTIAL_OUT = ".partial-night"
PREVIOUS_OUT = ".previous-night"
SUMMARY_LAST = ("run_summary.md", "run_summary.json")     # moved last, in this order


def warehouse_path(state: Path) -> Path:
    return Path(state) / WAREHOUSE


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checkpoint(path: Path) -> None:
    """Fold a warehouse's write-ahead log into the file (a run killed before closing leaves one)."""
    with duckdb.connect(str(path)) as con:
        con.execute("FORCE CHECKPOINT")
    if Path(str(path) + ".wal").exists():
        raise RuntimeError(f"{path}: the write-ahead log is still there after a checkpoint")


def _copy_file(src: Path, dst: Path) -> None:
    """A whole-file copy (shutil.copyfile: in the kernel on Linux), owner-only, on disk before it is used.
    The wait is most of the copy's time (2.4 of 3.1 s for a 1.9 GB warehouse at scale 1), but it is not
    avoidable: without it, DuckDB's first checkpoint on the copy syncs the same file and waits for the same
    bytes (2026-12-06, alternating nights: the workspace step 2.7 s shorter, the load stage 1.6-2 s longer)."""
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class NightWorkspace:
    """Where tonight writes (``warehouse``, ``out``) and where it is published (``state``, ``final_out``)."""

    state: Path
    final_out: Path
    warehouse: Path
    out: Path

    def commit(self) -> None:
        """Publish the outputs, then the warehouse (module docstring)."""
        _checkpoint(self.warehouse)
        publish_outputs(self.out, self.final_out)
        os.replace(self.warehouse, warehouse_path(self.state))
        _fsync_dir(self.state)
        self.discard()

    def discard(self) -> None:
        """Drop tonight's copy and partial outputs (after a commit, or when the night failed)."""
        shutil.rmtree(self.state / WORK_DIR, ignore_errors=True)
        shutil.rmtree(self.out, ignore_errors=True)


def open_workspace(state: Path, out: Path) -> NightWorkspace:
    """Clear what a killed run left, copy the warehouse (or take the copy ``start_precopy`` made) and make
    an empty partial output folder."""
    state, out = Path(state), Path(out)
    make_private_dir(state)
    make_private_dir(out)
    finish_interrupted_publish(out)
    copy = state / WORK_DIR / WAREHOUSE
    main = warehouse_path(state)
    if not _take_precopy(state, main):
        if main.exists() and Path(str(main) + ".wal").exists():
            _checkpoint(main)
        _copy_into_work(state, main)
    partial = out / PARTIAL_OUT
    shutil.rmtree(partial, ignore_errors=True)
    make_private_dir(partial)
    return NightWorkspace(state=state, final_out=out, warehouse=copy, out=partial)


def _copy_into_work(state: Path, main: Path) -> None:
    """An empty work folder (whatever a killed run left there goes) holding a copy of ``main``, if any."""
    work = state / WORK_DIR
    shutil.rmtree(work, ignore_errors=True)
    make_private_dir(work)
    if main.exists():
        _copy_file(main, work / WAREHOUSE)


# --- the copy made ahead, while the process starts ----------------------------------------------------------

@dataclass
class _Precopy:
    copied_from: tuple | None = None        # the warehouse's identity, unchanged from start to end of the copy
    failed: bool = False
    done: threading.Event = field(default_factory=threading.Event)


_PRECOPIES: dict[str, _Precopy] = {}


def _identity(path: Path) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def start_precopy(state: Path) -> bool:
    """Copy the warehouse for tonight's workspace on a background thread, before the night starts.

    ``crosscheck run`` calls it right after taking the night's lock (crosscheck/runtime.py
    ``hold_night_lock``), while Prefect's temporary server starts and the pipeline is imported: 5-8 s in
    which the disk has nothing to do, against 1.5-7 s for copying and syncing a 1.9 GB warehouse at scale 1
    (the workspace step of an incremental night). ``open_workspace`` waits for the copy and uses it only
    when the warehouse is still the very file that was copied (device, inode, size, modification and
    change times equal before the copy, after it and then); otherwise it copies again. A copy the night does
    not use (a night already complete, a night that failed before its workspace) is removed by
    ``discard_precopy`` before the lock is let go. Returns whether a copy was started (not when there is no
    warehouse yet, or a write-ahead log the workspace must fold in first)."""
    state = Path(state)
    main = warehouse_path(state)
    key = str(state.resolve())
    if key in _PRECOPIES or not main.exists() or Path(str(main) + ".wal").exists():
        return False
    precopy = _Precopy()

    def copy() -> None:
        try:
            before = _identity(main)
            _copy_into_work(state, main)
            precopy.copied_from = before if _identity(main) == before else None
        except Exception:  # noqa: BLE001 — the workspace then copies the warehouse itself and reports any error
            precopy.failed = True
        finally:
            precopy.done.set()

    _PRECOPIES[key] = precopy
    threading.Thread(target=copy, name="warehouse-precopy", daemon=True).start()
    return True


def _take_precopy(state: Path, main: Path) -> bool:
    """Whether the copy ``start_precopy`` made for ``state`` is there and is a copy of ``main`` as it is now."""
    precopy = _PRECOPIES.pop(str(Path(state).resolve()), None)
    if precopy is None:
        return False
    precopy.done.wait()
    try:
        return (not precopy.failed and precopy.copied_from is not None and main.exists()
                and _identity(main) == precopy.copied_from and (Path(state) / WORK_DIR / WAREHOUSE).is_file())
    except OSError:
        return False


def discard_precopy(state: Path) -> None:
    """Remove a copy ``start_precopy`` made that no workspace took (waiting for it to finish first)."""
    precopy = _PRECOPIES.pop(str(Path(state).resolve()), None)
    if precopy is not None:
        precopy.done.wait()
        shutil.rmtree(Path(state) / WORK_DIR, ignore_errors=True)


def publish_outputs(partial: Path, out: Path) -> None:
    """Move every entry of ``partial`` into ``out``, replacing the entry of the same name; the summary
    files last. A folder being replaced is first moved to ``<out>/.previous-night`` so that the swap is two
    renames; entries of ``out`` that tonight does not write are left alone."""
    previous = out / PREVIOUS_OUT
    shutil.rmtree(previous, ignore_errors=True)
    names = sorted(p.name for p in partial.iterdir())
    ordered = [n for n in names if n not in SUMMARY_LAST] + [n for n in SUMMARY_LAST if n in names]
    for name in ordered:
        src, dst = partial / name, out / name
        if dst.is_dir() and not dst.is_symlink():
            make_private_dir(previous)
            os.replace(dst, previous / name)
        os.replace(src, dst)
    _fsync_dir(out)
    shutil.rmtree(previous, ignore_errors=True)


def finish_interrupted_publish(out: Path) -> None:
    """A run killed while publishing leaves ``.previous-night``: whatever it holds was being replaced, so
    it goes (the next run writes the whole night again)."""
    shutil.rmtree(Path(out) / PREVIOUS_OUT, ignore_errors=True)


# --- has this night already been completed with these very inputs? ---------------------------------------

def inputs_sha(landing: Path, as_of: date, files: list[Path], config_dir: Path, code_dirs: list[Path]) -> str:
    """What decides a night's result: tonight's delivered files and auditors' workbooks (by content), the
    configuration and the pipeline's code. Equal fingerprints and a committed night mean running it again
    would write the same."""
    _hash_in_parallel(files)
    digest = hashlib.sha256(f"night {as_of.isoformat()}\n".encode())
    for path in sorted(files):      # each file's own digest, which the load stage then needs not compute again
        digest.update(f"{path.relative_to(landing) if path.is_relative_to(landing) else path}\n".encode())
        digest.update(f"{sha256_file(path)}\n".encode())
    for base in [config_dir, *code_dirs]:
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sql", ".yaml", ".yml", ".json", ".html", ".css", ".j2") \
                    and "__pycache__" not in path.parts:
                digest.update(f"{path.relative_to(base.parent)}\n{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _hash_in_parallel(files: list[Path]) -> None:
    """Hash the delivery files on every core (hashlib lets go of the GIL), largest first; ``sha256_file``
    remembers the digests, so the fingerprint's loop then only reads them back. 1.5 GB at scale 1: 1.4 s on
    one core."""
    by_size = sorted(files, key=lambda p: p.stat().st_size if p.exists() else 0, reverse=True)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="sha256") as pool:
        list(pool.map(sha256_file, by_size))


def completed_night(state: Path, out: Path, as_of: date, sha: str) -> dict | None:
    """The summary of this night when the warehouse and ``out`` both hold it, complete, from the same
    inputs; else None."""
    summary_path = Path(out) / "run_summary.json"
    main = warehouse_path(state)
    if not summary_path.exists() or not main.exists():
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if summary.get("run_date") != as_of.isoformat() or summary.get("inputs_sha") != sha:
        return None
    if not all(Path(p).exists() for p in (summary.get("outputs") or {}).values()):
        return None
    try:
        with duckdb.connect(str(main), read_only=True) as con:
            row = con.execute("SELECT inputs_sha FROM audit.nights WHERE run_date = ?", [as_of]).fetchone()
    except duckdb.Error:
        return None
    return summary if row is not None and row[0] == sha else None


def record_night(con: duckdb.DuckDBPyConnection, as_of: date, sha: str) -> None:
    """Mark the night complete in tonight's warehouse copy (committed with it)."""
    con.execute("CREATE TABLE IF NOT EXISTS audit.nights (run_date DATE PRIMARY KEY, inputs_sha VARCHAR, "
                "completed_at TIMESTAMP)")
    con.execute("INSERT OR REPLACE INTO audit.nights VALUES (?, ?, current_timestamp)", [as_of, sha])
