"""bench/night.py's own machinery: the memory guard, the per-scale memory limit and the table."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def night():
    spec = importlib.util.spec_from_file_location("bench_night", REPO / "bench" / "night.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_process_tree_over_the_guard_is_stopped(night, tmp_path, monkeypatch):
    avail = night.available_mib()
    if not avail:
        pytest.skip("/proc/meminfo not readable here")
    monkeypatch.setattr(night, "MEMORY_GUARD", 150 / avail)          # a guard of 150 MiB
    grow = "import time; x = bytearray(400 << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep(60)"
    with pytest.raises(night.OverMemory, match="passed"):
        night.run_measured([sys.executable, "-c", grow], tmp_path / "log")
    small = night.run_measured([sys.executable, "-c", "print('ok')"], tmp_path / "log2")
    assert small["seconds"] < 30 and (tmp_path / "log2").read_text() == "ok\n"


def test_a_failing_step_raises_with_its_log(night, tmp_path):
    with pytest.raises(RuntimeError, match="exit code 3"):
        night.run_measured([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "log")


def test_memory_limit_copy_changes_that_line_only(night, tmp_path):
    cfg = night.config_with_memory_limit(tmp_path, "6GB")
    ours = yaml.safe_load((cfg / "thresholds.yaml").read_text(encoding="utf-8"))
    repo = yaml.safe_load((REPO / "config" / "thresholds.yaml").read_text(encoding="utf-8"))
    assert ours.pop("warehouse_memory_limit") == "6GB"
    repo.pop("warehouse_memory_limit")
    assert ours == repo
    for f in (REPO / "config").glob("*.yaml"):
        if f.name != "thresholds.yaml":
            assert (cfg / f.name).read_bytes() == f.read_bytes()
    assert night.default_memory_limit() == yaml.safe_load(
        (REPO / "config" / "thresholds.yaml").read_text(encoding="utf-8"))["warehouse_memory_limit"]


def test_table_shows_limits_stops_and_skips(night):
    stage = {"seconds": 1.0, "peak_mib": 100, "rows_per_s": 10}
    run = {"seconds": 50.0, "peak_mib": 2000, "tree_peak_mib": 3000, "rows_read": 1000, "outside_stages_s": 1.0,
           "stages": {"load": stage}}
    results = [
        {"scale": 1.0, "warehouse_memory_limit": "1536MB", "generate": {"seconds": 40.0}, "landing_mib": 10,
         "machine_reference": {"python_loop_s": 1.7, "duckdb_hash_s": 0.9},
         "night": run, "incremental": {**run, "seconds": 12.0}, "incremental_same_cases": True},
        {"scale": 10.0, "warehouse_memory_limit": "6GB", "generate": {"seconds": 400.0}, "landing_mib": 100,
         "night": {**run, "seconds": 700.0, "rows_read": 10000}, "stopped": "incremental nights: stopped after 9 s"},
        {"scale": 20.0, "skipped": "night stopped after 5 s: resident memory 9 MiB passed 92 %"},
    ]
    table = night.markdown(results)
    assert "| 1 | 1,000 | 10 | 40.0 s (≤ 120 s: met) | 50.0 s (≤ 60 s: met) |" in table
    assert "| 6GB |" in table and "| 1536MB |" in table
    assert "700.0 s (≤ 600 s: missed by 100.0 s, ×1.17)" in table
    assert "Scale 10 stopped at incremental nights: stopped after 9 s" in table
    assert "| 20 | – | – | – | skipped: night stopped after 5 s" in table
    assert "scale 1: Python loop 1.7 s, DuckDB hash 0.9 s" in table
    assert "scale 10: 1.40" in table              # seconds per row against scale 1: 0.07 / 0.05


def test_readme_names_each_runs_command_date_and_commit(night, tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text(f"intro\n{night.README_START}\nold\n{night.README_END}\nafter\n",
                                        encoding="utf-8")
    monkeypatch.setattr(night, "REPO", tmp_path)
    results = [{"scale": 0.1, "command": "A", "measured_on": "2026-12-05", "commit": "abc1234"},
               {"scale": 1.0, "command": "A", "measured_on": "2026-12-05", "commit": "abc1234"},
               {"scale": 10.0, "command": "B", "measured_on": "2026-12-04", "commit": "def5678+changes"}]
    night.update_readme("TABLE\n", results)
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert ("Measured by `A` on 2026-12-05 at commit abc1234 (scale 0.1, 1); "
            "`B` on 2026-12-04 at commit def5678+changes (scale 10):\n\nTABLE\n") in text
    assert text.startswith("intro\n") and text.endswith(f"{night.README_END}\nafter\n") and "old" not in text


def test_code_version_names_this_checkout(night):
    version = night.code_version()
    if version == "unknown":
        pytest.skip("not a git checkout")
    commit = version.removesuffix("+changes")
    assert len(commit) >= 7 and all(c in "0123456789abcdef" for c in commit)


def test_a_stage_that_took_no_time_shows_no_rate(night):
    run = {"seconds": 50.0, "peak_mib": 2000, "tree_peak_mib": 3000, "rows_read": 1000, "outside_stages_s": 1.0,
           "stages": {"load": {"seconds": 2.0, "peak_mib": 100, "rows_per_s": 500},
                      "workspace": {"seconds": 0.001, "peak_mib": 90, "rows_per_s": 1_000_000}}}
    table = night.markdown([{"scale": 1.0, "generate": {"seconds": 40.0}, "landing_mib": 10, "night": run}])
    assert "| 1 | 2.0 / – / 100 / 500 | 0.0 / – / 90 / – | 1.0 / – |" in table


SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"


def test_cpu_seconds_count_the_children_waited_for(night, tmp_path):
    """The night's CPU is its own and its helpers' (Prefect's server, the workbook helper, Chromium): a child
    that spins 0.4 s and waits for a grandchild that spins 0.4 s is at least 0.8 s of CPU."""
    code = SPIN + f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {SPIN!r}], check=True)\n"
    both = night.run_measured([sys.executable, "-c", code], tmp_path / "log")
    alone = night.run_measured([sys.executable, "-c", SPIN], tmp_path / "log2")
    assert both["cpu_s"] >= 0.8 and alone["cpu_s"] >= 0.4
    assert both["cpu_s"] - alone["cpu_s"] >= 0.35          # the grandchild's spin is counted


def test_cpu_seconds_count_descendants_nobody_waited_for(night, tmp_path):
    """Chromium's renderers are reaped by no process the benchmark waits for: the sampled process tree still
    counts them. Here a grandchild spins 0.6 s and its parent exits without waiting for it."""
    spin = SPIN.replace("0.4", "0.6")
    code = ("import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', {spin!r}])\n"
            "time.sleep(1.5)\n")                     # long enough for the grandchild to finish; never waited for
    measured = night.run_measured([sys.executable, "-c", code], tmp_path / "log")
    assert measured["cpu_s"] >= 0.45                  # the grandchild's 0.6 s, less at most the last 0.1 s sample


def _timed_run(seconds, cpu_s, stages, outside_s=2.0, outside_cpu_s=3.0):
    return {"seconds": seconds, "cpu_s": cpu_s, "peak_mib": 2000, "tree_peak_mib": 3000, "rows_read": 1000,
            "outside_stages_s": outside_s, "outside_stages_cpu_s": outside_cpu_s,
            "stages": {name: {"seconds": wall, "cpu_s": cpu, "peak_mib": 100, "rows_per_s": 10}
                       for name, (wall, cpu) in stages.items()}}


def test_table_says_what_bounds_a_missed_time_target(night):
    full = _timed_run(100.0, 160.0, {"load": (50.0, 90.0), "link": (25.0, 30.0), "report": (12.0, 22.0),
                                     "flag": (1.0, 1.0)})
    inc = _timed_run(30.0, 20.0, {"load": (4.0, 3.0), "report": (12.0, 10.0)})
    result = {"scale": 1.0, "cores": 2, "generate": {"seconds": 40.0}, "landing_mib": 10, "night": full,
              "incremental": inc, "incremental_same_cases": True}
    table = night.markdown([result])
    assert "100.0 s (≤ 60 s: missed by 40.0 s, ×1.67); CPU 160.0 s ÷ 2 cores = 80.0 s" in table
    assert "30.0 s (≤ 15 s: missed by 15.0 s, ×2.00); CPU 20.0 s ÷ 2 cores = 10.0 s" in table
    assert "| 1 | 50.0 / 90.0 / 100 / 10 (4.0 / 3.0) |" in table
    bounds = night.bound_lines(result)
    assert len(bounds) == 2
    assert bounds[0].startswith("- scale 1, night: 100.0 s against 60 s; the work alone is 160.0 s of CPU, at "
                                "least 80.0 s on 2 cores: 20.0 s over the target")
    # the three stages with the most CPU, most first, each judged against the cores (the report only shown)
    assert ("Most CPU: load 90.0 s of CPU in 50.0 s (CPU-bound, 1.80 of 2 cores); link 30.0 s of CPU in 25.0 s "
            "(not CPU-bound, 1.20 of 2 cores); report 22.0 s of CPU in 12.0 s (1.83 of 2 cores, Chromium's "
            "renderers not counted); outside the stages") in bounds[0]
    # the incremental night's CPU would fit the target on 2 cores: the line says the cores waited instead
    assert bounds[1].startswith("- scale 1, incremental night: 30.0 s against 15 s; the work is 20.0 s of CPU, "
                                "10.0 s on 2 cores: the cores were idle for 20.0 s")
    # met targets, and runs measured before CPU was recorded, get no line
    met = {**result, "night": _timed_run(50.0, 90.0, {"load": (30.0, 50.0)}), "incremental": None}
    assert night.bound_lines(met) == []
    old = {**result, "night": {**full, "cpu_s": None}, "incremental": None}
    assert night.bound_lines(old) == [] and "÷" not in night.markdown([old])


def test_peers_row_says_which_households_only_one_side_flags_are_true_cases(night):
    run = {"seconds": 50.0, "peak_mib": 2000, "tree_peak_mib": 3000, "rows_read": 1000, "outside_stages_s": 1.0,
           "stages": {"load": {"seconds": 2.0, "peak_mib": 100, "rows_per_s": 500}}}
    peers = {"ours_link_flag_s": 10.0, "analyst_link_flag_s": 8.0, "analyst_ratio": 0.8, "splink_s": 20.0,
             "ours_link_same_tables_s": 5.0, "splink_ratio": 4.0, "splink_agreement": {},
             "analyst_households": {"both": 90, "only_ours": 6, "only_peer": 4, "ours": 96, "peer": 94,
                                    "truth": 100, "ours_true": 95, "peer_true": 91, "only_ours_true": 5,
                                    "only_peer_true": 1},
             "against_truth": {"ours": [95 / 96, 0.95], "analyst": [91 / 94, 0.91]}}
    table = night.markdown([{"scale": 1.0, "generate": {"seconds": 40.0}, "landing_mib": 10, "night": run,
                             "peers": peers}])
    assert ("| 90 / 6 (5 true) / 4 (1 true); precision / recall against the truth: ours 0.9896 / 0.9500, "
            "the analyst's 0.9681 / 0.9100 |") in table
    # a run measured before the truth was compared keeps its old cell
    del peers["against_truth"]
    table = night.markdown([{"scale": 1.0, "generate": {"seconds": 40.0}, "landing_mib": 10, "night": run,
                             "peers": peers}])
    assert "| 90 / 6 / 4 |" in table
