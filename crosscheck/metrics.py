"""Wall time and peak resident memory of each stage of the night, for the summary and the benchmark.

Peak memory per stage comes from the kernel's high-water mark (VmHWM in /proc/self/status), which
``/proc/self/clear_refs`` resets at the start of each stage; DuckDB allocates inside this process, so its
memory is counted. Where /proc is not writable the figure is the process's peak so far (an upper bound).
"""
from __future__ import annotations

import re
import resource
import time
from contextlib import contextmanager
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """The process's resident-memory high-water mark since the last reset, in MiB."""
    try:
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", _STATUS.read_text())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(seconds: dict, name: str):
    """Record the block's wall seconds in ``seconds[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = round(time.perf_counter() - started, 3)


@contextmanager
def measured(seconds: dict, peak_mib: dict, name: str):
    """Record the block's wall seconds in ``seconds[name]`` and its peak RSS in ``peak_mib[name]``."""
    _reset_peak()
    try:
        with timed(seconds, name):
            yield
    finally:
        peak_mib[name] = round(peak_rss_mib())
