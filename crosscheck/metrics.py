"""Wall time, CPU time and peak resident memory of each stage of the night, for the summary and the benchmark.

Peak memory per stage comes from the kernel's high-water mark (VmHWM in /proc/self/status), which
``/proc/self/clear_refs`` resets at the start of each stage; DuckDB allocates inside this process, so its
memory is counted. Where /proc is not writable the figure is the process's peak so far (an upper bound).

CPU time is user + system time of this process (every thread: DuckDB's workers, the read-ahead) and of the
child processes it has waited for (the workbook helper, Chromium), so a stage whose CPU seconds approach
its wall seconds times the cores was bound by the processor, not by waiting. A child still running when the
stage ends (Prefect's temporary server) is counted only once it has been waited for, outside the stages, and
Chromium's renderer processes are reaped by Chromium's own zygote, not by a process the night waits for, so
most of their time is not counted: the report stage's figure is a lower bound (bench/night.py samples the
whole process tree for the night's total).
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


def cpu_seconds() -> float:
    """User + system seconds of this process and of its children waited for, so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def timed(seconds: dict, name: str):
    """Record the block's wall seconds in ``seconds[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = round(time.perf_counter() - started, 3)


@contextmanager
def measured(seconds: dict, peak_mib: dict, name: str, cpu_s: dict | None = None):
    """Record the block's wall seconds in ``seconds[name]``, its peak RSS in ``peak_mib[name]`` and, with
    ``cpu_s``, its CPU seconds (``cpu_seconds``) in ``cpu_s[name]``."""
    _reset_peak()
    cpu_before = cpu_seconds()
    try:
        with timed(seconds, name):
            yield
    finally:
        peak_mib[name] = round(peak_rss_mib())
        if cpu_s is not None:
            cpu_s[name] = round(cpu_seconds() - cpu_before, 3)
