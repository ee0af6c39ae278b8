"""Benchmark the link stage alone: its wall time, peak resident memory and records per second.

    python3 -m uv run python bench/linkage.py --scale 1 [--dir /tmp/crosscheck-bench-link] [--quality]

(Warehouse files are not named after a schema: DuckDB would confuse the catalog with the schema.)
Steps, each in a fresh process so that its peak memory is its own:
1. generate the landing zone (skipped when the folder already holds one for this scale and seed);
2. load and validate every source into a warehouse (SQL check engine: the figures here are about linkage);
3. link: ``linkage.link.link_all`` on a copy of that warehouse, timed, peak RSS read by the child itself;
4. with ``--quality``: link precision and recall per source against the generator's truth.

Prints a table and writes bench/linkage_results.json. Every figure is measured, none asserted.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

PREPARE = """
import sys, json, time
from datetime import date
from pathlib import Path
from checks.suite import SqlCheckEngine
from checks.validate import validate_source
from connectors.load import load_source
from crosscheck.settings import load_sources
from crosscheck.warehouse import connect
landing, db, as_of = Path(sys.argv[1]), Path(sys.argv[2]), date.fromisoformat(sys.argv[3])
started = time.perf_counter()
with connect(db) as con:
    for source in load_sources().sources:
        load_source(con, landing, source, as_of, as_of)
        validate_source(con, source, as_of, as_of, engine=SqlCheckEngine())
print(json.dumps({"seconds": round(time.perf_counter() - started, 2)}))
"""

LINK = """
import sys, json, time, resource
from pathlib import Path
from crosscheck.settings import load_sources
from crosscheck.warehouse import connect
from linkage.link import link_all
db = Path(sys.argv[1])
with connect(db) as con:
    records = 0
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'").fetchall():
        if table != "roster":
            records += con.execute(f'SELECT count(*) FROM staging."{table}"').fetchone()[0]
    started = time.perf_counter()
    counts = link_all(con, load_sources())
    seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": round(seconds, 2), "peak_mib": round(peak / 1024), "records": records,
                  "counts": {k: int(v) for k, v in counts.items() if isinstance(v, int)}}))
"""

QUALITY = """
import sys, json
from datetime import date
from pathlib import Path
from crosscheck.warehouse import connect
from linkage.quality import link_quality, format_link_quality
db, truth, as_of = Path(sys.argv[1]), Path(sys.argv[2]), date.fromisoformat(sys.argv[3])
with connect(db) as con:
    result = link_quality(con, truth, as_of)
print(format_link_quality(result))
"""


def _child(code: str, *args: str, whole: bool = False) -> str:
    """Run ``code`` in a fresh interpreter; its last line of output (a JSON object), or all of it."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return done.stdout if whole else done.stdout.strip().splitlines()[-1]


def run(scale: float, base: Path, as_of: str, seed: int, quality: bool) -> dict:
    folder = base / f"s{scale}-seed{seed}"
    landing, prepared, linked = folder / "landing", folder / "prepared_warehouse.duckdb", folder / "link_warehouse.duckdb"
    marker = folder / "generated.json"
    result: dict = {"scale": scale, "seed": seed}
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "crosscheck.cli", "generate", "--out", str(landing), "--as-of", as_of,
                        "--scale", str(scale), "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
        marker.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 2)}))
    if not prepared.exists():
        result["prepare_s"] = json.loads(_child(PREPARE, str(landing), str(prepared), as_of))["seconds"]
    shutil.copy(prepared, linked)
    link = json.loads(_child(LINK, str(linked)))
    result.update(link_s=link["seconds"], link_peak_mib=link["peak_mib"], records=link["records"],
                  records_per_s=round(link["records"] / link["seconds"]) if link["seconds"] else None,
                  counts=link["counts"])
    if quality:
        result["quality"] = _child(QUALITY, str(linked), str(Path(str(landing) + ".truth")), as_of,
                                   whole=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, action="append")
    parser.add_argument("--dir", default="/tmp/crosscheck-bench-link")
    parser.add_argument("--as-of", default="2026-11-20")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quality", action="store_true", help="also score links against the truth")
    args = parser.parse_args()
    results = [run(s, Path(args.dir), args.as_of, args.seed, args.quality) for s in (args.scale or [0.1])]
    print("| scale | source records | link s | records/s | link peak MiB |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['scale']} | {r['records']:,} | {r['link_s']} | {r['records_per_s']:,} | {r['link_peak_mib']:,} |")
        if r.get("quality"):
            print(r["quality"])
    (HERE / "linkage_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
