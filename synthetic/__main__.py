"""python -m synthetic --out DIR --as-of YYYY-MM-DD --scale S --seed N [--truth DIR] [--shards N] [--jobs J]"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from .generate import generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synthetic", description="Synthetic landing zone with ground truth")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--truth", type=Path, default=None)
    ap.add_argument("--shards", type=int, default=None, help="parts of the city (default: one per unit of scale above 1)")
    ap.add_argument("--jobs", type=int, default=None, help="parts generated at once")
    a = ap.parse_args(argv)
    summary = generate(a.out, a.as_of, a.scale, a.seed, a.truth, shards=a.shards, jobs=a.jobs)
    json.dump({k: v for k, v in summary.items() if k not in ("rows", "manifests")} | {"files": len(summary["rows"])},
              sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
