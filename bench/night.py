"""Benchmark whole nights at several scales, with the issue-7 targets beside the measured figures.

    python3 -m uv run --group bench python bench/night.py --scale 0.1 --scale 1 [--scale 10] [--dir /tmp/crosscheck-bench]
                                            [--no-incremental] [--incremental-up-to S] [--verify-up-to S] [--readme]

For each scale, each step in a fresh process:

* ``generate``: the synthetic landing zone (as of 2026-11-20, seed 1); above scale 1 in shards of at most scale 1,
  generated side by side as the cores and memory allow (synthetic/generate.py);
* ``night``: a full night as of 2026-11-20 on an empty state folder: wall time of the whole ``crosscheck run``
  process (Python start, Prefect's temporary server, every stage, reports), its peak resident memory
  (the largest of the stages' own peaks and ``wait4``'s ru_maxrss of the night process) and the peak of the whole process tree (the night and Prefect's
  server, sampled every 0.1 s), and per stage the wall time, the stage's own peak resident memory (from the
  run summary) and delivered rows per second;
* ``incremental``: on another state folder, the night of 2026-11-18 and then the night of 2026-11-19, when the
  only new delivery is the roster's (every other source's newest delivery is the same file): the second
  night is the incremental one that is timed (default up to scale 1). With verification (default up to scale 1)
  the same two nights run again with ``--full`` (nothing reused) and the two nights' case exports must be identical.

A step whose process tree passes 92 % of the memory available when it started is stopped and reported.

Figures go to bench/results.json (per scale), and a markdown table to stdout, to bench/results.md and, with
``--readme``, into README.md between the ``bench:night`` markers. Nothing is asserted or hard-coded: a missed
target is shown with how far it is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from synthetic.generate import available_mib, shard_peak_mib, shards_for  # noqa: E402

AS_OF = date(2026, 11, 20)
INCREMENTAL_NIGHTS = (date(2026, 11, 18), date(2026, 11, 19))     # only the roster delivers on 11-19
# Splink on every person table at scale 1 would take about 35 minutes (217 s for 1.4 M records at 0.1); above
# scale 0.1 it gets the tables other than the three largest (hukou, tax, si_contribution: ~11 M records).
SPLINK_SUBSET = "cremation,vehicle,property_owner,business_person,payroll,housing_fund,si_benefit,bank"
GIB = 1024
MIN_RATE_SECONDS = 0.05     # below this a stage's rows per second is not shown

TARGETS = {  # issue 7, on this 2-core, 24 GB machine
    0.1: {},
    1.0: {"night_s": 60, "night_peak_mib": 3 * GIB, "generate_s": 120, "incremental_s": 15},
    10.0: {"night_s": 600, "night_peak_mib": 12 * GIB},
}
DISK_PER_SCALE_GB = 4.0      # landing ~1.5 GB, warehouse and outputs ~2 GB per unit of scale, measured at scale 1
# A process tree whose resident memory passes this share of the memory available when it started is
# stopped and reported as such, before the kernel's OOM killer picks a victim on a shared machine.
MEMORY_GUARD = 0.92
README_START, README_END = "<!-- bench:night:start -->", "<!-- bench:night:end -->"


# --- measuring one process ---------------------------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        found.append(p)
    return found


def _tree_rss_kib(pids: list[int]) -> int:
    """Resident memory of the given processes (a tree from ``_tree``), from /proc (0 for those gone)."""
    total = 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError):
            continue
    return total


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _tree_cpu(pids: list[int]) -> dict[tuple[int, int], float]:
    """(pid, start time) → user + system seconds so far, for the given processes, from /proc."""
    found = {}
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            found[(p, int(fields[19]))] = (int(fields[11]) + int(fields[12])) / _TICK   # utime, stime; starttime
        except (OSError, ValueError, IndexError):
            continue
    return found


class OverMemory(RuntimeError):
    """The measured process tree was stopped: its resident memory passed the guard."""


def run_measured(cmd: list[str], log: Path, env_extra: dict | None = None) -> dict:
    """Run ``cmd`` to completion; wall seconds, its own peak RSS, the sampled peak of its process tree and the
    tree's CPU seconds. A tree that passes MEMORY_GUARD of the available memory is killed and OverMemory raised."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    avail = available_mib()
    guard_kib = MEMORY_GUARD * avail * 1024 if avail else None
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        tree_peak, done, killed, tree_cpu = [0], threading.Event(), [], {}

        def sample() -> None:
            while not done.wait(0.1):
                pids = _tree(proc.pid)
                rss = _tree_rss_kib(pids)
                tree_peak[0] = max(tree_peak[0], rss)
                tree_cpu.update(_tree_cpu(pids))
                if guard_kib and rss > guard_kib and not killed:
                    killed.append(rss)
                    for p in reversed(_tree(proc.pid)):
                        try:
                            os.kill(p, 9)
                        except OSError:
                            pass

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = round(time.perf_counter() - started, 2)
    if killed:
        raise OverMemory(f"stopped after {seconds:.0f} s: resident memory {killed[0] / 1024:,.0f} MiB passed "
                         f"{MEMORY_GUARD:.0%} of the {avail:,.0f} MiB available")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … failed with exit code {proc.returncode}; see {log}")
    # CPU (user + system) of the whole process tree: the night, Prefect's server, the workbook helper, Chromium.
    # wait4 counts the processes waited for, which misses Chromium's renderers (their parent, Chromium's zygote,
    # is not waited for); the sampled figure adds every descendant's own time as last seen, which misses at
    # most each process's last 0.1 s. The larger of the two.
    waited = usage.ru_utime + usage.ru_stime
    return {"seconds": seconds, "peak_mib": round(usage.ru_maxrss / 1024), "tree_peak_mib": round(tree_peak[0] / 1024),
            "cpu_s": round(max(waited, sum(tree_cpu.values())), 2)}


# A fixed amount of work, timed before each scale: this machine's speed varies from session to session (the
# same scale-1 night took 117.6 s one day and 132.0 s the next), and these two figures let runs of different
# days be compared. One core of plain Python, and DuckDB on every core.
MACHINE_REFERENCE = """
import time, duckdb
t = time.perf_counter(); s = 0
for i in range(20_000_000):
    s += i
py = time.perf_counter() - t
con = duckdb.connect(); t = time.perf_counter()
con.execute("SELECT sum(hash(i)) FROM range(200000000) t(i)").fetchall()
print(round(py, 2), round(time.perf_counter() - t, 2))
"""


def machine_reference() -> dict:
    out = subprocess.run([sys.executable, "-c", MACHINE_REFERENCE], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.split()
    return {"python_loop_s": float(out[0]), "duckdb_hash_s": float(out[1])}


def usable_cores() -> int:
    """The cores this process may run on (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def crosscheck(*args: str) -> list[str]:
    return [sys.executable, "-m", "crosscheck.cli", *args]


def run_night(landing: Path, run_date: date, out: Path, state: Path, logs: Path, *, full: bool = False,
              env: dict | None = None) -> dict:
    cmd = crosscheck("run", "--landing", str(landing), "--as-of", run_date.isoformat(), "--out", str(out),
                     "--state", str(state), *(["--full"] if full else []))
    measured = run_measured(cmd, logs / f"night-{state.name}-{run_date}{'-full' if full else ''}.log", env)
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    rows = sum(int(s.get("rows_read") or 0) for s in summary["sources"].values())
    stage_cpu = summary.get("stage_cpu_s") or {}
    stages = {name: {"seconds": secs, "peak_mib": summary.get("stage_peak_mib", {}).get(name),
                     "cpu_s": stage_cpu.get(name), "rows_per_s": round(rows / secs) if secs else None}
              for name, secs in summary["stages"].items()}
    reused = sorted(s for s, info in summary["sources"].items() if info.get("reused_from"))
    # wait4's ru_maxrss is the kernel's high-water mark at exit, which the per-stage reset (crosscheck/metrics.py)
    # clears: the night's peak is the larger of it and every stage's own peak
    measured["peak_mib"] = max([measured["peak_mib"], *(st["peak_mib"] or 0 for st in stages.values())])
    return {**measured, "rows_read": rows, "stages": stages, "stage_seconds_sum": round(sum(summary["stages"].values()), 2),
            "outside_stages_s": round(measured["seconds"] - sum(summary["stages"].values()), 2),
            "outside_stages_cpu_s": (round(measured["cpu_s"] - sum(stage_cpu.values()), 2)
                                     if stage_cpu and measured.get("cpu_s") is not None else None),
            "sources_reused": reused, "link_modes": (summary.get("links") or {}).get("mode")}


# --- one scale ---------------------------------------------------------------------------------------------

def run_peers(root: Path, scale: float, logs: Path) -> dict:
    """bench/peers.py on the full night's state (a copy): the analyst's pandas + rapidfuzz version and Splink
    with its defaults, with our link and flag re-measured in the same run."""
    out_json = root / "peers.json"
    cmd = [sys.executable, str(HERE / "peers.py"), "--state", str(root / "state"), "--out", str(root / "out"),
           "--as-of", AS_OF.isoformat(), "--json", str(out_json)]
    if scale > 0.1:
        cmd += ["--splink-tables", SPLINK_SUBSET]
    truth = root / "landing.truth"
    if truth.is_dir():                  # each side's flagged households held against the true cases too
        cmd += ["--truth", str(truth)]
    run_measured(cmd, logs / "peers.log")
    res = json.loads(out_json.read_text(encoding="utf-8"))[-1]
    ours, analyst, splink = res.get("ours", {}), res.get("analyst", {}), res.get("splink", {})
    ours_lf = (ours.get("link_s") or 0) + (ours.get("flag_s") or 0)
    ours_subset = sum((ours.get("subset_link_s") or {}).values()) if res.get("splink_subset") else ours.get("link_s")
    analyst_lf = (analyst.get("link_s") or 0) + (analyst.get("flag_s") or 0)
    splink_s = sum(splink.get(k) or 0 for k in ("prepare_s", "train_s", "predict_s"))
    return {
        "ours_link_flag_s": round(ours_lf, 2),
        "analyst_link_flag_s": round(analyst_lf, 2) if analyst_lf else None,
        "analyst_read_s": round(analyst.get("read_s") or 0, 2),
        "analyst_ratio": round(analyst_lf / ours_lf, 2) if analyst_lf and ours_lf else None,
        # bench/peers.py's totals over the rules it evaluated (with the truth counts when it had the truth)
        "analyst_households": res.get("analyst_totals") or dict.fromkeys(("both", "only_ours", "only_peer"), 0),
        "against_truth": res.get("against_truth"),
        "splink_s": round(splink_s, 2) if splink_s else None, "ours_link_same_tables_s": round(ours_subset or 0, 2),
        "splink_ratio": round(splink_s / ours_subset, 2) if splink_s and ours_subset else None,
        "splink_tables": splink.get("tables"), "splink_agreement": splink.get("agreement"),
        "errors": {k: v["error"] for k, v in (("analyst", analyst), ("splink", splink)) if v.get("error")},
    }


def config_with_memory_limit(root: Path, limit: str) -> Path:
    """A copy of config/ whose only change is thresholds.yaml's warehouse_memory_limit."""
    cfg = root / "config"
    shutil.copytree(REPO / "config", cfg, dirs_exist_ok=True)
    path = cfg / "thresholds.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith("warehouse_memory_limit:")]
    if len(hits) != 1:
        raise SystemExit("config/thresholds.yaml: expected one warehouse_memory_limit line")
    lines[hits[0]] = f"warehouse_memory_limit: {limit}\n"
    path.write_text("".join(lines), encoding="utf-8")
    return cfg


def default_memory_limit() -> str | None:
    """The repository's warehouse_memory_limit, read and validated as the night reads it."""
    from crosscheck.settings import load_thresholds

    return load_thresholds(REPO / "config").warehouse_memory_limit


def run_scale(scale: float, base: Path, *, seed: int, incremental: bool, verify: bool, peers: bool,
              memory_limit: str | None = None) -> dict:
    root = base / f"s{scale:g}"
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True)
    landing = root / "landing"
    result: dict = {"scale": scale, "seed": seed, "as_of": AS_OF.isoformat(),
                    "warehouse_memory_limit": memory_limit or default_memory_limit()}
    env = {"CROSSCHECK_CONFIG": str(config_with_memory_limit(root, memory_limit))} if memory_limit else None
    result["machine_reference"] = machine_reference()
    result["cores"] = usable_cores()
    step = "generate"
    try:
        result["generate"] = run_measured(crosscheck("generate", "--out", str(landing), "--as-of", AS_OF.isoformat(),
                                                     "--scale", str(scale), "--seed", str(seed)), logs / "generate.log")
        result["generate"]["shards"] = shards_for(scale)
        result["landing_mib"] = round(sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) / 2**20)
        step = "night"
        result["night"] = run_night(landing, AS_OF, root / "out", root / "state", logs, env=env)
        if peers:
            step = "peers"
            result["peers"] = run_peers(root, scale, logs)
        if incremental:
            step = "incremental nights"
            first, second = INCREMENTAL_NIGHTS
            run_night(landing, first, root / "inc_out1", root / "inc_state", logs, env=env)
            result["incremental"] = run_night(landing, second, root / "inc_out2", root / "inc_state", logs, env=env)
            if verify:
                run_night(landing, first, root / "full_out1", root / "full_state", logs, full=True, env=env)
                result["incremental_full"] = run_night(landing, second, root / "full_out2", root / "full_state", logs,
                                                       full=True, env=env)
                result["incremental_same_cases"] = same_cases(root / "inc_out2", root / "full_out2")
    except (OverMemory, RuntimeError) as e:     # recorded with the step; the other scales go on
        result["stopped"] = f"{step}: {e}"
        if "night" not in result:
            done = f" (generated in {result['generate']['seconds']:,.0f} s)" if "generate" in result else ""
            result["skipped"] = f"{step} {e}{done}"
    shutil.rmtree(landing, ignore_errors=True)     # the landing zone is the biggest thing on disk
    return result


def same_cases(a: Path, b: Path) -> bool:
    """The two nights exported exactly the same cases (every column of the case CSV)."""
    return (a / "cases.csv").read_bytes() == (b / "cases.csv").read_bytes()


def disk_allows(scale: float, base: Path) -> tuple[bool, str]:
    base.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(base).free / 1e9
    need = DISK_PER_SCALE_GB * scale
    return free_gb >= need, f"{free_gb:.0f} GB free, about {need:.0f} GB needed"


def memory_allows(scale: float) -> tuple[bool, str]:
    """Whether one shard of the generator fits the memory the machine has available (a scale that does
    not fit is skipped with the reason, not left to the kernel's OOM killer)."""
    shard_scale = scale / shards_for(scale)
    need = shard_peak_mib(shard_scale) / GIB
    avail = available_mib()
    if avail is None:
        return True, "memory not known"
    return need <= 0.9 * avail / GIB, (f"the generator holds one shard of scale {shard_scale:g} in memory: about "
                                       f"{need:.0f} GiB, {avail / GIB:.0f} GiB available")


# --- tables ------------------------------------------------------------------------------------------------

def _vs(measured: float | None, target: float | None, unit: str) -> str:
    """A measured figure with its target: '41.2 s (target ≤ 60 s: met)' or '... missed by 12.0 s (×1.20)'."""
    if measured is None:
        return "–"
    text = f"{measured:,.1f} {unit}" if unit == "s" else f"{measured:,.0f} {unit}"
    if target is None:
        return text
    if measured <= target:
        return f"{text} (≤ {target:,} {unit}: met)"
    return f"{text} (≤ {target:,} {unit}: missed by {measured - target:,.1f} {unit}, ×{measured / target:.2f})"


def _figure(value: float | None, digits: int) -> str:
    """A measured figure with ``digits`` decimals, '–' where it was not measured."""
    return f"{value:.{digits}f}" if value is not None else "–"


def _cpu_floor(run: dict, cores: int | None) -> str:
    """'; CPU 161.0 s ÷ 2 cores = 80.5 s' for a run measured with its CPU time, else ''."""
    if run.get("cpu_s") is None or not cores:
        return ""
    return f"; CPU {run['cpu_s']:,.1f} s ÷ {cores} cores = {run['cpu_s'] / cores:,.1f} s"


# a stage's CPU seconds above this share of (wall seconds × cores) count as bound by the processor
CPU_BOUND_SHARE = 0.75


# stages whose own CPU figure leaves work out (crosscheck/metrics.py): no verdict on them, only the figure
UNDERCOUNTED_STAGES = {"report": "Chromium's renderers not counted"}


def _bound_by_cpu(name: str, st: dict, cores: int) -> str:
    share = f"{st['cpu_s'] / st['seconds'] if st['seconds'] else 0:.2f} of {cores} cores"
    if name in UNDERCOUNTED_STAGES:
        return f"{share}, {UNDERCOUNTED_STAGES[name]}"
    return f"{'CPU-bound' if st['cpu_s'] >= CPU_BOUND_SHARE * cores * st['seconds'] else 'not CPU-bound'}, {share}"


def bound_lines(r: dict) -> list[str]:
    """One line per missed time target of scale ``r``: by how much, whether the CPU work alone rules the
    target out on this machine's cores, and the stages that take the most CPU (each with its share of the
    cores while it ran). Figures only, from the run; nothing is assumed."""
    t, cores, lines = TARGETS.get(r["scale"], {}), r.get("cores"), []
    for key, target_key, label in (("night", "night_s", "night"), ("incremental", "incremental_s", "incremental night")):
        run, target = r.get(key), t.get(target_key)
        if not run or target is None or run["seconds"] <= target or run.get("cpu_s") is None or not cores:
            continue
        floor = run["cpu_s"] / cores
        if floor > target:
            verdict = (f"the work alone is {run['cpu_s']:,.1f} s of CPU, at least {floor:,.1f} s on {cores} cores: "
                       f"{floor - target:,.1f} s over the target before any waiting, so no overlap can meet it, only "
                       "less CPU (less work, or the same work done more cheaply)")
        else:
            verdict = (f"the work is {run['cpu_s']:,.1f} s of CPU, {floor:,.1f} s on {cores} cores: the cores were "
                       f"idle for {run['seconds'] - floor:,.1f} s of the night's {run['seconds']:,.1f} s, so more "
                       "overlap could come closer")
        staged = sorted(((name, st) for name, st in run["stages"].items() if st.get("cpu_s") is not None),
                        key=lambda item: -item[1]["cpu_s"])[:3]
        parts = [f"{name} {st['cpu_s']:,.1f} s of CPU in {st['seconds']:,.1f} s ({_bound_by_cpu(name, st, cores)})"
                 for name, st in staged]
        if run.get("outside_stages_cpu_s") is not None:
            parts.append(f"outside the stages (start-up, Prefect's server, exit, and Chromium's renderers, which the "
                         f"stages do not count) {run['outside_stages_cpu_s']:,.1f} s of CPU in "
                         f"{run['outside_stages_s']:,.1f} s")
        lines.append(f"- scale {r['scale']:g}, {label}: {run['seconds']:,.1f} s against {target:,} s; {verdict}. "
                     f"Most CPU: {'; '.join(parts)}.")
    return lines


def markdown(results: list[dict]) -> str:
    lines = ["| scale | rows delivered | landing MiB | generate | night (whole process) | night peak RSS "
             "(night process; with Prefect server) | DuckDB memory limit | incremental night (roster only) "
             "| same cases as full |",
             "| ---: | ---: | ---: | --- | --- | --- | ---: | --- | --- |"]
    for r in results:
        if r.get("skipped"):
            lines.append(f"| {r['scale']:g} | – | – | – | skipped: {r['skipped']} | – | – | – | – |")
            continue
        t = TARGETS.get(r["scale"], {})
        inc = r.get("incremental")
        lines.append(
            f"| {r['scale']:g} | {r['night']['rows_read']:,} | {r['landing_mib']:,} "
            f"| {_vs(r['generate']['seconds'], t.get('generate_s'), 's')} "
            f"| {_vs(r['night']['seconds'], t.get('night_s'), 's')}{_cpu_floor(r['night'], r.get('cores'))} "
            f"| {_vs(r['night']['peak_mib'], t.get('night_peak_mib'), 'MiB')}; {r['night']['tree_peak_mib']:,} MiB "
            f"| {r.get('warehouse_memory_limit') or 'DuckDB default'} "
            f"| {_vs(inc['seconds'], t.get('incremental_s'), 's') + _cpu_floor(inc, r.get('cores')) if inc else '–'} "
            f"| {({True: 'yes', False: 'NO'}).get(r.get('incremental_same_cases'), 'not checked')} |")
    lines += [f"\nScale {r['scale']:g} stopped at {r['stopped']}" for r in results
              if r.get("stopped") and not r.get("skipped")]
    refs = [r for r in results if r.get("machine_reference")]
    if refs:
        lines += ["", "Machine reference, timed before each scale (`MACHINE_REFERENCE` in bench/night.py; lower is a "
                  "faster machine, for comparing runs of different days): "
                  + ", ".join(f"scale {r['scale']:g}: Python loop {r['machine_reference']['python_loop_s']} s, "
                              f"DuckDB hash {r['machine_reference']['duckdb_hash_s']} s" for r in refs)]
    stages = [s for s in results[0].get("night", {}).get("stages", {})] if not results[0].get("skipped") else []
    lines += ["", "Per stage of the full night: wall seconds / CPU seconds (user + system of the night process and "
              "the helpers it waited for; Chromium's renderers are mostly not in it, so the report's figure is a "
              "lower bound) / the stage's peak RSS in MiB / delivered rows per second (incremental night in "
              "brackets: wall / CPU seconds). The night's CPU in the table above is the whole process tree's, "
              "sampled; outside the stages it is that less the stages' own, so it holds Prefect's server and "
              "Chromium's renderers as well as start-up and exit.", "",
              "| scale | " + " | ".join(stages) + " | outside the stages |",
              "| ---: | " + " | ".join("---:" for _ in stages) + " | ---: |"]
    for r in results:
        if r.get("skipped"):
            continue
        inc = (r.get("incremental") or {}).get("stages", {})
        cells = []
        for s in stages:
            st = r["night"]["stages"].get(s, {})
            # rows per second of a stage that took almost no time (a full night's empty workspace step) says
            # nothing about its speed
            rate = f"{st.get('rows_per_s') or 0:,}" if st.get("seconds", 0) >= MIN_RATE_SECONDS else "–"
            cell = f"{st.get('seconds', 0):.1f} / {_figure(st.get('cpu_s'), 1)} / {st.get('peak_mib') or 0:,} / {rate}"
            if s in inc:
                cell += f" ({inc[s]['seconds']:.1f} / {_figure(inc[s].get('cpu_s'), 1)})"
            cells.append(cell)
        outside = (f"{r['night']['outside_stages_s']:.1f} / {_figure(r['night'].get('outside_stages_cpu_s'), 1)}"
                   + (f" ({r['incremental']['outside_stages_s']:.1f} / "
                      f"{_figure(r['incremental'].get('outside_stages_cpu_s'), 1)})" if r.get("incremental") else ""))
        lines.append(f"| {r['scale']:g} | " + " | ".join(cells) + f" | {outside} |")
    bounds = [line for r in results if not r.get("skipped") for line in bound_lines(r)]
    if bounds:
        lines += ["", "What bounds each missed time target, from the same runs: the night's CPU seconds (the whole "
                  "process tree: the night, Prefect's server, the workbook helper and Chromium) divided by the cores "
                  "are the least wall time any overlap of the same work could reach on this machine.", "", *bounds]
    with_peers = [r for r in results if r.get("peers")]
    if with_peers:
        lines += ["", "Peers in the same run (bench/peers.py; ratio = peer seconds / ours, above 1 = slower than ours):",
                  "", "| scale | ours: link + flag s | analyst (pandas + rapidfuzz): link + flag s | ratio "
                  "| analyst's flagged households: both / only ours / only analyst's (true cases among them, from the "
                  "generator's truth) | Splink defaults: train + predict s "
                  "| ours on the same tables s | ratio | Splink links: same person / another person / only ours |",
                  "| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
        for r in with_peers:
            p, agree = r["peers"], r["peers"].get("splink_agreement") or {}
            h = p["analyst_households"]
            households = f"{h['both']} / {h['only_ours']} / {h['only_peer']}"
            if p.get("against_truth"):   # how many of the households only one side flags are true cases
                (op, orc), (ap, arc) = p["against_truth"]["ours"], p["against_truth"]["analyst"]
                households = (f"{h['both']} / {h['only_ours']} ({h['only_ours_true']} true) / {h['only_peer']} "
                              f"({h['only_peer_true']} true); precision / recall against the truth: ours "
                              f"{_figure(op, 4)} / {_figure(orc, 4)}, the analyst's {_figure(ap, 4)} / {_figure(arc, 4)}")
            lines.append(f"| {r['scale']:g} | {p['ours_link_flag_s']} | {p['analyst_link_flag_s']} | {p['analyst_ratio']} "
                         f"| {households} | {p['splink_s']} "
                         f"| {p['ours_link_same_tables_s']} | {p['splink_ratio']} "
                         f"| {agree.get('same_person', 0):,} / {agree.get('different_person', 0):,} / "
                         f"{agree.get('only_ours', 0):,} |")
    growth = [r for r in results if not r.get("skipped")]
    if len(growth) > 1:
        base = growth[0]
        per_row = base["night"]["seconds"] / base["night"]["rows_read"]
        lines += ["", "Growth: night seconds per delivered row, relative to scale "
                  f"{base['scale']:g} (1.00 = exactly linear; below 1, fixed costs are being spread): "
                  + ", ".join(f"scale {r['scale']:g}: {r['night']['seconds'] / r['night']['rows_read'] / per_row:.2f}"
                              for r in growth)]
    return "\n".join(lines) + "\n"


def update_readme(table: str, results: list[dict]) -> None:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise SystemExit(f"README.md has no {README_START} … {README_END} section to update")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    runs: dict[tuple[str, str, str], list[str]] = {}
    for r in results:
        runs.setdefault((r.get("command", "?"), r.get("measured_on", "?"), r.get("commit", "")), []).append(
            f"{r['scale']:g}")
    said = "; ".join(f"`{cmd}` on {when}{f' at commit {commit}' if commit else ''} (scale {', '.join(scales)})"
                     for (cmd, when, commit), scales in runs.items())
    block = f"{README_START}\nMeasured by {said}:\n\n{table}{README_END}"
    readme.write_text(head + block + tail, encoding="utf-8")


def merge_results(previous: list[dict], new: list[dict]) -> list[dict]:
    """--merge: the scales measured now replace theirs; the others are kept as they were measured."""
    now = {r["scale"] for r in new}
    return sorted([r for r in previous if r["scale"] not in now] + new, key=lambda r: r["scale"])


def code_version() -> str:
    """The commit the benchmark runs (``+changes`` when the checkout has uncommitted changes), so that figures
    of different runs merged into one table can each be traced to their code."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        return (commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")) or "unknown"
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, action="append", help="repeatable; default 0.1")
    parser.add_argument("--dir", default="/tmp/crosscheck-bench", help="scratch folder (landing, state, outputs)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-incremental", action="store_true", help="skip the incremental nights")
    parser.add_argument("--memory-limit", action="append", default=[], metavar="SCALE=LIMIT",
                        help="run that scale's nights with another warehouse_memory_limit (config/thresholds.yaml), "
                             "e.g. 10=3GB for a province-sized night whose target is 12 GiB; repeatable")
    parser.add_argument("--incremental-up-to", type=float, default=1.0,
                        help="run the incremental nights up to this scale (default 1: the target is at scale 1, and "
                             "at scale 10 the pair of nights would add about half an hour)")
    parser.add_argument("--verify-up-to", type=float, default=1.0,
                        help="verify the incremental night against --full nights up to this scale (default 1)")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip the peers (analyst's pandas version, Splink); they run up to scale 1 by default "
                             "and need the bench dependency group: python3 -m uv run --group bench ...")
    parser.add_argument("--json", default=str(HERE / "results.json"))
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--table-only", action="store_true",
                        help="measure nothing: write the table again from the --json file (to results.md, and with "
                             "--readme into README.md), e.g. after a change to how it is laid out")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other scales of the --json file (each labelled with its own command and date)")
    args = parser.parse_args()
    if args.table_only:
        write_outputs(json.loads(Path(args.json).read_text(encoding="utf-8")), args)
        return
    base = Path(args.dir)
    command = "python3 -m uv run --group bench python bench/night.py " + shlex.join(sys.argv[1:])
    measured_on = date.today().isoformat()
    commit = code_version()
    limits = {float(k): v for k, v in (item.split("=", 1) for item in args.memory_limit)}
    results = []
    for scale in args.scale or [0.1]:
        ok, why = disk_allows(scale, base)
        if not ok:
            results.append({"scale": scale, "skipped": f"not enough disk ({why})"})
            continue
        ok, why = memory_allows(scale)
        if not ok:
            results.append({"scale": scale, "skipped": f"not enough memory to generate ({why})"})
            continue
        results.append(run_scale(scale, base, seed=args.seed, incremental=not args.no_incremental and scale <= args.incremental_up_to,
                                 verify=scale <= args.verify_up_to, peers=not args.no_peers and scale <= 1,
                                 memory_limit=limits.get(scale)))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    for r in results:
        r.update(command=command, measured_on=measured_on, commit=commit)
    if args.merge and Path(args.json).exists():
        results = merge_results(json.loads(Path(args.json).read_text(encoding="utf-8")), results)
    Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    write_outputs(results, args)


def write_outputs(results: list[dict], args) -> None:
    """The table on stdout and in results.md, and with --readme in README.md."""
    table = markdown(results)
    print(table)
    (HERE / "results.md").write_text(table, encoding="utf-8")
    if args.readme:
        update_readme(table, results)


if __name__ == "__main__":
    main()
