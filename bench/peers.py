"""Peers side by side in the same run, as ratios: an analyst's pandas + rapidfuzz version of link + flag, and
Splink 4 with its documented default settings on the link stage, against our link and flag stages.

Reproduce (scale 0.1):

    python3 -m uv run crosscheck generate --out /tmp/peers/s01/landing --as-of 2026-11-20 --scale 0.1 --seed 1
    python3 -m uv run crosscheck run --landing /tmp/peers/s01/landing --as-of 2026-11-20 \\
        --out /tmp/peers/s01/out --state /tmp/peers/s01/state
    python3 -m uv run --group bench python bench/peers.py --state /tmp/peers/s01/state \\
        --out /tmp/peers/s01/out --as-of 2026-11-20 [--json bench/peers_results.json]
        [--splink-tables bank,tax] [--skip-splink] [--skip-analyst] [--truth /tmp/peers/s01/landing.truth]

(Splink is in the ``bench`` dependency group, hence ``--group bench``.)

What it does. The night's warehouse (``<state>/warehouse.duckdb``) is copied to a temporary folder first;
the given state is never opened. Each peer runs in a fresh child process, one after the other, so that its
peak memory is its own (peak MiB = highest VmRSS sampled every 20 ms during the measured work, less the
VmRSS just before it; the child's ru_maxrss is kept in the JSON too):

* ours, re-measured: ``linkage.link.link_all(full=True)`` then ``rules.engine.evaluate_rules`` (with the
  night's source verdicts from ``audit.source_status``) on the copy, as flows/nightly.py calls them on a
  first night or with ``--full`` (without ``full`` the copy's own link state would make it a delta link of
  nothing changed, which is not the work the peers do; until 2026-12-06 it was measured so); its flagged
  households are checked against the night's ``flags.hits``. With ``--splink-tables`` our ``link_table`` is
  also timed on just those tables (after ``link_all``, so ``linked.id_repair`` and
  ``linked.household_person`` exist), the figure Splink is then compared with;
* the analyst (bench/peers_analyst.py): staging tables read into pandas (timed apart), linked by
  ``merge`` on ``id_norm`` with a rapidfuzz name check in a Python loop, rules R01–R09 in pandas; flagged
  households per rule compared with ours (both / only ours / only analyst's) and, with ``--truth`` (the
  generator's ground truth folder), each side's households held against the true cases: how many of the
  households only one side flags are real, and the look-alike kinds the analyst's false ones fell for;
* Splink (bench/peers_splink.py): the person tables' records linked to ``linked.household_person`` with the
  tutorial's defaults; its links compared with ours record by record (same record → same person_id).

The night's own ``link`` and ``flag`` seconds come from ``<out>/run_summary.json`` (``stages``).
Prints markdown tables and writes bench/peers_results.json (``--json`` to override; a rerun for the same
state and as-of replaces its entry). Every figure is measured in the run; none is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # before bench/ (the script's folder): bench/linkage.py would shadow linkage/
sys.path.append(str(HERE))             # peers_analyst, peers_splink

import duckdb  # noqa: E402

BYTE_CAVEAT = ("Splink's default name comparisons run DuckDB's jaro_winkler / levenshtein, which count UTF-8 "
               "bytes, not characters: a Han character is three bytes, so NameComparison is degraded on "
               "Chinese names. Left as is: that is what default settings give.")


# ---------------------------------------------------------------- memory
class RssSampler:
    """Highest VmRSS of this process while active, sampled by a thread, relative to its start."""

    def __init__(self, every: float = 0.02):
        self.every, self.base, self.peak = every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_kib() -> int:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss_kib())
            time.sleep(self.every)

    def __enter__(self) -> "RssSampler":
        self.base = self.peak = self.rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss_kib())

    @property
    def delta_mib(self) -> float:
        return (self.peak - self.base) / 1024


def memory_fields(sampler: RssSampler) -> dict:
    return {"peak_delta_mib": round(sampler.delta_mib, 1), "rss_before_mib": round(sampler.base / 1024, 1),
            "child_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


# ---------------------------------------------------------------- the night's own figures
def night_stages(out: Path) -> dict:
    """The night's stage seconds from <out>/run_summary.json ({} when the night wrote none: the figures
    of this run's re-measurement then stand alone, and the output says so)."""
    path = out / "run_summary.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["stages"]


def source_status(con, as_of: date) -> dict[str, dict]:
    """The night's verdict per source (audit.source_status), as the flow hands it to evaluate_rules."""
    rows = con.execute("SELECT source, status, reason FROM audit.source_status WHERE run_date = ?", [as_of]).fetchall()
    return {s: {"status": status, "reason": reason} for s, status, reason in rows}


def flagged_households(con, as_of: date) -> dict[str, list[str] | None]:
    """Households per rule in flags.hits for the night (None for a rule skipped that night)."""
    runs = dict(con.execute("SELECT rule, status FROM flags.rule_runs WHERE run_date = ?", [as_of]).fetchall())
    hits = con.execute("SELECT rule, list(DISTINCT household_id ORDER BY household_id) FROM flags.hits "
                       "WHERE run_date = ? GROUP BY rule", [as_of]).fetchall()
    found = dict(hits)
    return {rule: (sorted(found.get(rule, [])) if status == "evaluated" else None) for rule, status in
            sorted(runs.items())}


def link_record_count(con) -> int:
    from crosscheck.settings import load_sources
    from linkage.link import person_tables

    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'").fetchall()}
    return sum(con.execute(f"SELECT count(*) FROM staging.{t}").fetchone()[0]
               for t in person_tables(load_sources()) if t in existing)


# ---------------------------------------------------------------- children: one peer each
def child_ours(db: str, as_of: date, subset: list[str]) -> dict:
    from crosscheck.settings import load_policy, load_sources
    from crosscheck.warehouse import connect
    from linkage.link import link_all, link_table
    from rules.engine import evaluate_rules

    con = connect(db)
    status = source_status(con, as_of)
    with RssSampler() as rss:
        started = time.perf_counter()
        link_all(con, load_sources(), full=True)      # the whole link, as the peers do: the copy's earlier link
        link_s = time.perf_counter() - started         # would make it a delta of nothing changed
        started = time.perf_counter()
        evaluate_rules(con, load_policy(), as_of, status)
        flag_s = time.perf_counter() - started
    result = {"link_s": link_s, "flag_s": flag_s, **memory_fields(rss), "flagged": flagged_households(con, as_of)}
    subset_s = {}
    for table in subset:
        started = time.perf_counter()
        link_table(con, table)
        subset_s[table] = time.perf_counter() - started
    result["subset_link_s"] = subset_s
    con.close()
    return result


def child_analyst(db: str, as_of: date) -> dict:
    from crosscheck.settings import load_policy
    from peers_analyst import run_analyst

    con = duckdb.connect(db, read_only=True)
    usable = {s for s, r in source_status(con, as_of).items() if r["status"] == "ok"}
    with RssSampler() as rss:
        result = run_analyst(con, load_policy(), as_of, usable)
    con.close()
    return {**result, **memory_fields(rss)}


def child_splink(db: str, tables: list[str]) -> dict:
    import splink
    from peers_splink import agreement, our_links, run_splink

    with RssSampler() as rss:
        result = run_splink(db, tables)
    best = result.pop("best")
    con = duckdb.connect(db, read_only=True)
    result["agreement"] = agreement(our_links(con, tables), best)
    con.close()
    return {**result, **memory_fields(rss), "tables": tables, "version": splink.__version__}


def run_child(kind: str, db: Path, as_of: date, tables: list[str]) -> dict:
    """Run one peer in a fresh interpreter; its JSON result (last line of its output)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--db", str(db),
           "--as-of", as_of.isoformat(), "--tables", ",".join(tables)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    if done.returncode != 0:     # reported with the others' figures, which are kept
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}",
                "process_s": time.perf_counter() - started}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def child_main(args) -> None:
    as_of = date.fromisoformat(args.as_of)
    tables = [t for t in (args.tables or "").split(",") if t]
    if args.child == "ours":
        result = child_ours(args.db, as_of, tables)
    elif args.child == "analyst":
        result = child_analyst(args.db, as_of)
    else:
        result = child_splink(args.db, tables)
    print(json.dumps(result, default=str, ensure_ascii=False))


# ---------------------------------------------------------------- comparison
COUNTS = ("ours", "peer", "both", "only_ours", "only_peer")
TRUE_COUNTS = ("truth", "ours_true", "peer_true", "only_ours_true", "only_peer_true")


def read_truth(folder: Path) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """The generator's ground truth (``<landing>.truth``): rule → households with a true case, and
    (rule, household) → look-alike kind (the traps a false lead falls for)."""
    import csv

    truth: dict[str, set[str]] = {}
    with open(folder / "cases.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            truth.setdefault(row["rule"], set()).add(row["household_id"])
    kinds: dict[tuple[str, str], str] = {}
    lookalikes = folder / "lookalikes.csv"
    if lookalikes.exists():
        with open(lookalikes, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                kinds.setdefault((row["rule"], row["household_id"]), row["kind"])
    return truth, kinds


def rule_agreement(ours: dict, theirs: dict, truth: tuple[dict, dict] | None = None) -> list[dict]:
    """Per rule: households flagged by both, by ours only, by the peer only; with ``truth`` (read_truth), how
    many of each are true cases, and the look-alike kinds among the peer's households that are not."""
    rows = []
    for rule in sorted(set(ours) | set(theirs)):
        a, b = ours.get(rule), theirs.get(rule)
        if a is None or b is None:
            rows.append({"rule": rule, "skipped": True, **dict.fromkeys(COUNTS)})
            continue
        a, b = set(a), set(b)
        row = {"rule": rule, "skipped": False, "ours": len(a), "peer": len(b), "both": len(a & b),
               "only_ours": len(a - b), "only_peer": len(b - a)}
        if truth is not None:
            real, kinds = truth[0].get(rule, set()), truth[1]
            row.update(truth=len(real), ours_true=len(a & real), peer_true=len(b & real),
                       only_ours_true=len((a - b) & real), only_peer_true=len((b - a) & real),
                       peer_false_kinds=sorted(kinds.get((rule, h), "no look-alike") for h in b - real))
        rows.append(row)
    return rows


def totals(rows: list[dict]) -> dict:
    counted = [r for r in rows if not r["skipped"]]
    keys = COUNTS + (TRUE_COUNTS if counted and all("truth" in r for r in counted) else ())
    return {k: sum(r[k] for r in counted) for k in keys}


def precision_recall(total: dict, side: str) -> tuple[float | None, float | None]:
    """Precision and recall of one side (``ours`` or ``peer``) from ``totals`` with the truth counts."""
    flagged, true = total[side], total[f"{side}_true"]
    return (true / flagged if flagged else None, true / total["truth"] if total["truth"] else None)


def ratio(a, b):
    return a / b if a is not None and b else None


# ---------------------------------------------------------------- output
def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def peer_rows(res: dict) -> list[dict]:
    """The rows of the main table: peer, stage, seconds, ours seconds (this run and the night), peak, agreement."""
    ours, night = res["ours"], res["night_stages"]
    if "error" in ours:       # no re-measurement: the peers are held against the night's figures only
        ours = {"link_s": None, "flag_s": None, "subset_link_s": {}}
    ours_lf = ours["link_s"] + ours["flag_s"] if ours["link_s"] is not None else None
    night_lf = night["link"] + night["flag"] if {"link", "flag"} <= set(night) else None
    rows = []
    if "ours_vs_night_flags" in res:
        versus = res["ours_vs_night_flags"]
        same = "identical" if versus["only_ours"] == versus["only_peer"] == 0 else f"differs: {versus}"
        rows.append(dict(peer="ours (re-measured)", stage="link + flag", seconds=ours_lf, ours=ours_lf,
                         night=night_lf, peak=ours["peak_delta_mib"],
                         agreement=f"flagged households vs the night's flags.hits: {same}"))
    if "analyst" in res and "error" not in res["analyst"]:
        an, t = res["analyst"], res["analyst_totals"]
        agree = (f"households: {t['both']:,} both, {t['only_ours']:,} only ours, {t['only_peer']:,} only analyst's")
        if "truth" in t:
            agree += (f"; true cases among them: only ours {t['only_ours_true']:,}, only analyst's "
                      f"{t['only_peer_true']:,}")
        rows += [dict(peer="analyst (pandas + rapidfuzz)", stage="read staging → pandas", seconds=an["read_s"],
                      ours=None, night=None, peak=None, agreement="(ours reads nothing: load stage)"),
                 dict(peer="analyst", stage="link", seconds=an["link_s"], ours=ours["link_s"],
                      night=night.get("link"), peak=None, agreement=""),
                 dict(peer="analyst", stage="flag", seconds=an["flag_s"], ours=ours["flag_s"],
                      night=night.get("flag"), peak=None, agreement=""),
                 dict(peer="analyst", stage="link + flag", seconds=an["link_s"] + an["flag_s"], ours=ours_lf,
                      night=night_lf, peak=an["peak_delta_mib"], agreement=agree),
                 dict(peer="analyst", stage="read + link + flag", seconds=an["read_s"] + an["link_s"] + an["flag_s"],
                      ours=ours_lf, night=night_lf, peak=an["peak_delta_mib"], agreement="")]
    if "splink" in res and "error" not in res["splink"]:
        sp, ag = res["splink"], res["splink"]["agreement"]
        subset = res["splink_subset"]
        our_link = (sum(ours["subset_link_s"].values()) or None) if subset else ours["link_s"]
        night_link = None if subset else night.get("link")
        label = f"link ({', '.join(sp['tables'])})" if subset else "link (all person tables)"
        agree = (f"{ag['splink_links']:,} records linked; same person as ours {ag['same_person']:,}, other person "
                 f"{ag['different_person']:,}, only Splink {ag['only_splink']:,}, only ours {ag['only_ours']:,}")
        rows += [dict(peer=f"Splink {sp['version']} defaults", stage="prepare inputs", seconds=sp["prepare_s"],
                      ours=None, night=None, peak=None, agreement=f"{sp['records']:,} records × {sp['persons']:,} persons"),
                 dict(peer="Splink", stage="train (λ, u, EM)", seconds=sp["train_s"], ours=None, night=None,
                      peak=None, agreement=""),
                 dict(peer="Splink", stage="predict", seconds=sp["predict_s"], ours=our_link, night=night_link,
                      peak=None, agreement=""),
                 dict(peer="Splink", stage=label + ": prepare + train + predict",
                      seconds=sp["prepare_s"] + sp["train_s"] + sp["predict_s"], ours=our_link, night=night_link,
                      peak=sp["peak_delta_mib"], agreement=agree)]
    return rows


def main_table(res: dict) -> str:
    head = ("peer", "stage", "seconds", "ours seconds (this run)", "ratio (peer/ours)", "ours seconds (night)",
            "ratio (peer/night)", "peak MiB", "agreement")
    lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * 6 + " --- |"]
    for r in peer_rows(res):
        lines.append(f"| {r['peer']} | {r['stage']} | {fmt(r['seconds'])} | {fmt(r['ours'])} | "
                     f"{fmt(ratio(r['seconds'], r['ours']))} | {fmt(r['night'])} | {fmt(ratio(r['seconds'], r['night']))}"
                     f" | {fmt(r['peak'], 0)} | {r['agreement']} |")
    return "\n".join(lines)


def rules_table(rows: list[dict]) -> str:
    with_truth = any("truth" in r for r in rows)
    head = "| rule | ours | analyst | both | only ours | only analyst |"
    if with_truth:
        head += " true cases | ours: true | analyst: true | only ours: true | only analyst: true | analyst's false ones |"
    lines = [head, "| --- |" + " ---: |" * (10 if with_truth else 5) + (" --- |" if with_truth else "")]
    for r in rows:
        if r["skipped"]:
            lines.append(f"| {r['rule']} | skipped | skipped | – | – | – |" + (" – |" * 6 if with_truth else ""))
            continue
        line = (f"| {r['rule']} | {r['ours']:,} | {r['peer']:,} | {r['both']:,} | {r['only_ours']:,} | "
                f"{r['only_peer']:,} |")
        if with_truth:
            kinds = {k: r["peer_false_kinds"].count(k) for k in r["peer_false_kinds"]}
            line += (f" {r['truth']:,} | {r['ours_true']:,} | {r['peer_true']:,} | {r['only_ours_true']:,} | "
                     f"{r['only_peer_true']:,} | {', '.join(f'{k} {n}' for k, n in sorted(kinds.items())) or '–'} |")
        lines.append(line)
    return "\n".join(lines)


def print_report(res: dict) -> None:
    print(f"\nPeers on the night {res['as_of']} of {res['state']} ({res['link_records']:,} source records in the "
          f"link stage; {os.cpu_count()} CPUs):\n")
    print(main_table(res))
    for peer in ("ours", "analyst", "splink"):
        if "error" in res.get(peer, {}):
            print(f"\n{peer} failed: {res[peer]['error']}")
    if not res["night_stages"]:
        print(f"\n{res['out']}/run_summary.json is missing (the night did not finish its summary): no night figures.")
    if "analyst_rules" in res:
        print("\nFlagged households per rule, ours (night) against the analyst's:\n")
        print(rules_table(res["analyst_rules"]))
        t = res["analyst_totals"]
        if "against_truth" in res:
            (op, orc), (ap, arc) = res["against_truth"]["ours"], res["against_truth"]["analyst"]
            print(f"\nAgainst the ground truth ({t['truth']:,} true (household, rule) cases): ours precision "
                  f"{fmt(op, 4)}, recall {fmt(orc, 4)}; the analyst's precision {fmt(ap, 4)}, recall {fmt(arc, 4)}.")
        an = res["analyst"]
        print(f"\nAnalyst: name check fuzz.ratio ≥ {an['name_min_ratio']} on ID-matched pairs; no ID repair, no "
              f"fuzzy fallback. Links: {sum(v for k, v in an['links'].items() if k != 'household_person'):,}.")
    if "splink" in res and "error" not in res["splink"]:
        sp = res["splink"]
        print(f"\nSplink: blocking on id_norm{' and name' if sp['name_rule_used'] else ' only'} (name block: "
              f"{sp['name_block_pairs']:,} pairs); predict threshold {sp['predict_at']}; "
              f"{sp['pairs_above_threshold']:,} pairs above it; EM: {sp['em_sessions']}")
        if res["splink_subset"]:
            print(f"Splink ran on a subset of tables ({', '.join(sp['tables'])}); ours is timed on the same "
                  "tables with linkage.link.link_table (after link_all built repairs and household persons).")
        print(BYTE_CAVEAT)


def write_results(path: Path, res: dict) -> None:
    """Add this run to the file, replacing an earlier entry for the same state and as-of."""
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    kept = [r for r in earlier if (r.get("state"), r.get("as_of")) != (res["state"], res["as_of"])]
    path.write_text(json.dumps(kept + [res], indent=2, ensure_ascii=False, default=str), encoding="utf-8")


# ---------------------------------------------------------------- main
def copy_warehouse(state: Path, tmp: Path) -> Path:
    db = tmp / "peers_warehouse.duckdb"
    shutil.copy(state / "warehouse.duckdb", db)
    return db


def night_facts(db: Path, as_of: date) -> dict:
    from crosscheck.warehouse import connect

    con = connect(db, read_only=True)
    try:
        return {"flagged": flagged_households(con, as_of), "link_records": link_record_count(con)}
    finally:
        con.close()


def splink_tables(requested: str | None, db: Path) -> tuple[list[str], bool]:
    """The tables Splink links (every person table our link stage links, unless a subset is named)."""
    from crosscheck.settings import load_sources
    from linkage.link import person_tables

    con = duckdb.connect(str(db), read_only=True)
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'").fetchall()}
    con.close()
    every = [t for t in person_tables(load_sources()) if t in existing]
    if not requested:
        return every, False
    return [t for t in requested.split(",") if t in every], True


def run_peers(args) -> dict:
    import pandas
    import rapidfuzz

    from peers_analyst import NAME_MIN_RATIO
    from peers_splink import PREDICT_AT

    state, out, as_of = Path(args.state), Path(args.out), date.fromisoformat(args.as_of)
    res = {"state": str(state), "out": str(out), "as_of": as_of.isoformat(), "night_stages": night_stages(out)}
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        db = copy_warehouse(state, Path(tmp))
        facts = night_facts(db, as_of)
        res["link_records"] = facts["link_records"]
        tables, subset = splink_tables(args.splink_tables, db)
        res["splink_subset"] = subset
        if not args.skip_analyst:
            res["analyst"] = {**run_child("analyst", db, as_of, []), "name_min_ratio": NAME_MIN_RATIO}
            if "flagged" in res["analyst"]:
                truth = read_truth(Path(args.truth)) if args.truth else None
                res["analyst_rules"] = rule_agreement(facts["flagged"], res["analyst"].pop("flagged"), truth)
                res["truth"] = str(Path(args.truth).resolve()) if args.truth else None
                res["analyst_totals"] = total = totals(res["analyst_rules"])
                if "truth" in total:
                    res["against_truth"] = {"ours": precision_recall(total, "ours"),
                                            "analyst": precision_recall(total, "peer")}
        if not args.skip_splink:
            res["splink"] = {**run_child("splink", db, as_of, tables), "predict_at": PREDICT_AT,
                             "caveat": BYTE_CAVEAT}
        res["ours"] = run_child("ours", db, as_of, tables if subset else [])   # last: it rewrites the copy
    if "flagged" in res["ours"]:
        res["ours_vs_night_flags"] = totals(rule_agreement(facts["flagged"], res["ours"].pop("flagged")))
    res["versions"] = {"duckdb": duckdb.__version__, "pandas": pandas.__version__,
                       "rapidfuzz": rapidfuzz.__version__, "python": platform.python_version()}
    res["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    return res


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", help="state folder of a night that has run (holds warehouse.duckdb)")
    parser.add_argument("--out", help="that night's --out folder (holds run_summary.json)")
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--json", default=str(HERE / "peers_results.json"))
    parser.add_argument("--splink-tables", help="comma-separated subset of person tables for Splink")
    parser.add_argument("--skip-analyst", action="store_true")
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--truth", help="the generator's ground truth folder (<landing>.truth): each side's flagged "
                                        "households are also held against the true cases")
    parser.add_argument("--child", choices=["ours", "analyst", "splink"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--tables", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args)
        return
    if not args.state or not args.out:
        raise SystemExit("--state and --out are required")
    res = run_peers(args)
    print_report(res)
    write_results(Path(args.json), res)
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
