"""Benchmark a whole night: generate a landing zone at a scale, run the night, print the figures.

    python3 -m uv run python bench/night.py --scale 0.1 [--scale 1 ...] [--dir /tmp/crosscheck-bench]

Prints, per scale, the generation time, each stage's wall time and rows per second, and the process's
peak resident memory; writes them to bench/results.json. Every figure is measured, none asserted.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_one(scale: float, base: Path, as_of: date, seed: int) -> dict:
    """Run generate and the night in a fresh process each, so peak memory belongs to that step."""
    landing, out, state = base / f"s{scale}" / "landing", base / f"s{scale}" / "out", base / f"s{scale}" / "state"
    shutil.rmtree(base / f"s{scale}", ignore_errors=True)
    gen = _timed([sys.executable, "-m", "crosscheck.cli", "generate", "--out", str(landing), "--as-of",
                  as_of.isoformat(), "--scale", str(scale), "--seed", str(seed)])
    night = _timed([sys.executable, "-m", "crosscheck.cli", "run", "--landing", str(landing), "--as-of",
                    as_of.isoformat(), "--out", str(out), "--state", str(state)])
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    rows = sum(s.get("rows_read", 0) for s in summary["sources"].values())
    return {"scale": scale, "generate_s": gen["seconds"], "generate_peak_mib": gen["peak_mib"],
            "night_s": night["seconds"], "night_peak_mib": night["peak_mib"], "rows_read": rows,
            "stages": summary["stages"],
            "rows_per_s": {k: round(rows / v) if v else None for k, v in summary["stages"].items()}}


def _timed(cmd: list[str]) -> dict:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far; each step runs larger or equal data, so this
    # is that step's peak unless an earlier child was bigger (then it is an upper bound).
    return {"seconds": round(time.perf_counter() - started, 2), "peak_mib": round(max(peak, before) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, action="append")
    parser.add_argument("--dir", default="/tmp/crosscheck-bench")
    parser.add_argument("--as-of", default="2026-11-20")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = [run_one(s, Path(args.dir), date.fromisoformat(args.as_of), args.seed) for s in (args.scale or [0.1])]
    print("| scale | generate s | night s | night peak MiB | rows read | " + " | ".join(results[0]["stages"]) + " |")
    print("| ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in results[0]["stages"]) + " |")
    for r in results:
        print(f"| {r['scale']} | {r['generate_s']} | {r['night_s']} | {r['night_peak_mib']} | {r['rows_read']:,} | "
              + " | ".join(f"{v:.2f}" for v in r["stages"].values()) + " |")
    (HERE / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
