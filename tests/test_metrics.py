"""crosscheck/metrics.py: what each stage of the night records (wall seconds, peak memory, CPU seconds)."""
from __future__ import annotations

import subprocess
import sys
import time

from crosscheck.metrics import cpu_seconds, measured

SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"


def _spin(seconds: float) -> None:
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass


def test_a_stage_records_its_own_cpu_and_its_waited_childrens():
    seconds, peaks, cpu = {}, {}, {}
    with measured(seconds, peaks, "busy", cpu):
        _spin(0.3)
        subprocess.run([sys.executable, "-c", SPIN], check=True)      # a helper the stage waits for
    with measured(seconds, peaks, "idle", cpu):
        time.sleep(0.3)
    assert cpu["busy"] >= 0.55                  # 0.3 s here + 0.3 s in the child (less the clock's tick)
    assert cpu["idle"] < 0.1 <= seconds["idle"]  # waiting is wall time, not CPU
    assert set(peaks) == {"busy", "idle"} and peaks["busy"] > 0


def test_without_a_cpu_dict_only_wall_and_peak_are_recorded():
    seconds, peaks = {}, {}
    with measured(seconds, peaks, "stage"):
        pass
    assert set(seconds) == set(peaks) == {"stage"}


def test_cpu_seconds_only_grow():
    before = cpu_seconds()
    _spin(0.05)
    assert cpu_seconds() >= before + 0.04
