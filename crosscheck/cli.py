"""The `crosscheck` command (CONTRACT.md §4): generate, run, score, demo."""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STATE = REPO / "data" / "state"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from exc


def default_truth(landing: Path) -> Path:
    return Path(str(landing) + ".truth")


def cmd_generate(args) -> int:
    from synthetic.generate import generate

    started = time.perf_counter()
    summary = generate(Path(args.out), args.as_of, args.scale, args.seed,
                       Path(args.truth) if args.truth else None, shards=args.shards, jobs=args.jobs)
    truth = Path(args.truth) if args.truth else default_truth(Path(args.out))
    print(f"landing zone: {Path(args.out).resolve()}")
    print(f"ground truth: {truth.resolve()}")
    cases = summary.get("cases") or {}
    looks = summary.get("lookalikes") or {}
    for rule in sorted(set(cases) | set(looks)):
        print(f"  {rule}: {cases.get(rule, 0)} true cases, {looks.get(rule, 0)} look-alikes")
    if summary.get("shards"):
        print(f"  in {summary['shards']} shards (files named <name>-NNofMM)")
    print(f"generated in {time.perf_counter() - started:.1f} s")
    return 0


def run_night(landing: Path, as_of: date, out: Path, state: Path, *, full: bool = False) -> dict:
    """Run one night through the Prefect flow; returns the run summary. ``full``: read, validate and link
    every source again even where the warehouse already holds the same delivery."""
    from crosscheck.runtime import (configure_prefect, hold_night_lock, holds_night_lock, release_night_lock,
                                    start_temporary_server)
    from crosscheck.settings import ConfigError
    from crosscheck.workspace import discard_precopy, start_precopy

    configure_prefect(state)
    server_ready = start_temporary_server()
    # the night's lock, taken now and handed to the night, lets the warehouse be copied for tonight's
    # workspace while the server starts and the pipeline is imported (another run holding it: the night
    # refuses to start, as ever)
    held = hold_night_lock(state)
    try:
        if held:
            start_precopy(state)
        # imported after Prefect is configured, while its server starts; Great Expectations is imported on a
        # background thread while the server finishes starting
        from flows.nightly import night, warm_check_engine
        try:
            warm_check_engine()
        except ConfigError:           # the night itself reports a broken configuration, stage and file named
            pass
        if server_ready is not None:
            server_ready()
        return night(landing=str(landing.resolve()), as_of=as_of.isoformat(), out=str(out.resolve()),
                     state=str(state.resolve()), full=full)
    finally:
        if holds_night_lock(state):   # the night never started: its copy goes, then the lock
            discard_precopy(state)
            release_night_lock(state)


def cmd_run(args) -> int:
    from crosscheck.runtime import NightAlreadyRunning
    from reports.night import format_summary

    landing = Path(args.landing)
    if not landing.is_dir():
        print(f"crosscheck run: landing zone {landing} does not exist", file=sys.stderr)
        return 2
    try:
        summary = run_night(landing, args.as_of, Path(args.out), Path(args.state), full=args.full)
    except NightAlreadyRunning as exc:
        print(f"crosscheck run: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 — flows.nightly.NightFailed: stage and reason, no personal data
        if type(exc).__name__ != "NightFailed":
            raise
        print(f"crosscheck run: {exc}. Nothing was published: the outputs and the warehouse are those of "
              "the last complete night.", file=sys.stderr)
        return 1
    if summary.get("already_complete"):
        print(f"night {summary['run_date']} is already complete with the same deliveries, feedback, "
              "configuration and code: nothing changed (--full runs it again)")
    print(format_summary(summary))
    _print_outputs(summary)
    return 0


def _print_outputs(summary: dict) -> None:
    outputs = summary["outputs"]
    print(f"cases:     {outputs['csv']}  ({summary.get('cases_exported', 0)} new or open)")
    print(f"           {outputs['parquet']}")
    print(f"report:    {outputs['report']}")
    print(f"summary:   {outputs['summary_md']}")
    if outputs.get("districts"):
        print(f"districts: {outputs['districts']}  ({summary.get('bundles', 0)} bundles: report, workbook, PDF, "
              "each holding only its district's cases)")
    if outputs.get("reviews_due"):
        print(f"reviews:   {outputs['reviews_due']}  (periodic reviews overdue or due soon)")
    if outputs.get("dashboard"):
        print(f"stewards:  {outputs['dashboard']}" + (f"  (Data Docs: {outputs['data_docs']})" if outputs.get("data_docs") else ""))
    print(f"warehouse: {Path(summary['state']) / 'warehouse.duckdb'}")


def cmd_score(args) -> int:
    from crosscheck.score import format_score, score

    cases = Path(args.cases) if args.cases else Path(args.out) / "cases.csv"
    truth = Path(args.truth) if args.truth else default_truth(Path(args.landing))
    print(format_score(score(cases, truth)))
    if args.links:
        print()
        print(_link_quality_report(Path(args.out), Path(args.state), truth))
    return 0


def _link_quality_report(out: Path, state: Path, truth: Path) -> str:
    """The night's link quality (linkage/quality.py) from the state warehouse, also written to
    <out>/link_quality.md and .json."""
    import json

    from crosscheck.warehouse import connect
    from linkage.quality import write_link_quality

    run_date = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))["run_date"]
    with connect(state / "warehouse.duckdb") as con:
        md = write_link_quality(con, truth, run_date, out)
    return md.read_text(encoding="utf-8") + f"\n(written to {md} and {md.with_suffix('.json')})"


def cmd_demo(args) -> int:
    """Generate a small city, run a night on it, score it, and say where everything is."""
    from crosscheck.score import format_score, score
    from reports.night import format_summary
    from synthetic.generate import generate

    base = Path(args.dir)
    landing, out, state = base / "landing", base / "out", base / "state"
    as_of = args.as_of
    if not landing.exists():
        print(f"generating a synthetic landing zone (scale {args.scale}) in {landing} ...")
        generate(landing, as_of, args.scale, args.seed, None)
    summary = run_night(landing, as_of, out, state)
    print(format_summary(summary))
    print("## Score against the generator's ground truth\n")
    print(format_score(score(out / "cases.csv", default_truth(landing))))
    print()
    _print_outputs(summary)
    return 0


def cmd_audit_log(args) -> int:
    """The latest entries, one line each, and whether the hash chain is whole (exit 1 when it is not)."""
    from crosscheck import auditlog

    state = Path(args.state)
    entries, problem = auditlog.verify(state)
    for entry in auditlog.read(state)[-args.last:] if args.last > 0 else []:
        detail = {k: v for k, v in entry.items() if k not in ("at", "event", "by", "pid", "prev")}
        print(f"{entry['at']}  {entry['event']:<22} {entry['by']}  "
              + ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if not isinstance(v, (dict, list))))
    if problem:
        print(f"audit log BROKEN after {entries} good entries: {problem}", file=sys.stderr)
        return 1
    print(f"{auditlog.log_path(state)}: {entries} entries, chain intact")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crosscheck", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic landing zone with ground truth beside it")
    g.add_argument("--out", required=True)
    g.add_argument("--as-of", type=_date, required=True)
    g.add_argument("--scale", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--truth", help="ground-truth folder (default: <out>.truth)")
    g.add_argument("--shards", type=int, help="generate the city in this many parts, each in its own process "
                   "(default: one per unit of scale above 1, so that no part needs more than ~5 GiB)")
    g.add_argument("--jobs", type=int, help="parts generated at once (default: as the cores and memory allow)")
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("run", help="run the night: load, validate, link, flag, ledger, report")
    r.add_argument("--landing", required=True)
    r.add_argument("--as-of", type=_date, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--state", default=str(DEFAULT_STATE), help=f"warehouse and ledger (default {DEFAULT_STATE})")
    r.add_argument("--full", action="store_true",
                   help="reload, re-validate and re-link every source, even deliveries the warehouse already holds "
                        "byte for byte (by default those are reused: an incremental night)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("score", help="precision and recall of a night's cases against the ground truth")
    s.add_argument("--out", help="the run's output folder (reads <out>/cases.csv)")
    s.add_argument("--cases", help="a cases.csv to score instead of <out>/cases.csv")
    s.add_argument("--landing", help="the landing zone (truth read from <landing>.truth)")
    s.add_argument("--truth", help="the ground-truth folder")
    s.add_argument("--links", action="store_true",
                   help="also measure link precision and recall per source against the truth (needs --out and --state)")
    s.add_argument("--state", default=str(DEFAULT_STATE), help=f"the run's state folder (default {DEFAULT_STATE})")
    s.set_defaults(func=cmd_score)

    a = sub.add_parser("audit-log", help="show the append-only audit log of a state folder and check its chain")
    a.add_argument("--state", default=str(DEFAULT_STATE), help=f"the state folder (default {DEFAULT_STATE})")
    a.add_argument("--last", type=int, default=20, help="how many of the latest entries to show (default 20)")
    a.set_defaults(func=cmd_audit_log)

    d = sub.add_parser("demo", help="generate a small city, run a night, score it")
    d.add_argument("--dir", default=str(REPO / "data" / "demo"))
    d.add_argument("--scale", type=float, default=0.02)
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--as-of", type=_date, default=date.today())
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from crosscheck.safety import private_umask

    private_umask()  # every file and folder this command writes is readable by its owner only
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "score" and not (args.out or args.cases):
        parser.error("score needs --out or --cases")
    if args.command == "score" and not (args.truth or args.landing):
        parser.error("score needs --truth or --landing")
    return args.func(args)


def entry() -> None:
    """The console command: ``main``, then the exit handlers (Prefect's temporary server stops, open
    cursors close), then a hard exit. Skipping the interpreter's own teardown keeps DuckDB's nanobind
    bindings from printing "leaked function" noise after a clean run; nothing is left unflushed."""
    import atexit
    import os

    try:
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
