"""Our Fellegi–Sunter fallback (linkage/fuzzy.py) against Splink 4 on DuckDB, on the same held-out records.

    python3 -m uv run --group bench python bench/fuzzy_vs_splink.py --scale 0.1 --seed 1 [--dir /tmp/crosscheck-bench-link]

(Splink is in the ``bench`` dependency group of pyproject.toml, hence ``--group bench``.)

What it does, all in one process on one machine:
1. finds or makes the prepared warehouse of bench/linkage.py (``<dir>/s<scale>-seed<seed>/``: landing zone,
   its ``landing.truth`` and ``prepared_warehouse.duckdb``, loaded and validated) and links a copy of it
   (``linkage.link.link_all``), so ``linked.household_person`` exists;
2. holdout: every cremation record whose ID is valid and belongs to a hukou person has its ID blanked
   (id_number, id_norm NULL, id_status 'empty') and its link removed from ``linked.cremation``; its label is
   the person the generator's truth says it is (``landing.truth/links.parquet``; the ID before blanking when
   the truth does not list the row). Any fuzzy link ``link_all`` made is removed too, so both linkers get
   exactly the records ``fuzzy_link`` selects (no usable ID, not in ``linked.cremation``);
3. ours: ``fuzzy_link(con, 'cremation')`` with the saved model (trained on another seed), timed. The time
   of ``train_fuzzy_model`` on this warehouse (before blanking) is measured too, but that model is discarded;
4. Splink 4 (DuckDBAPI, its own in-memory connection): link_only between those records and the same
   candidates ``fuzzy._build_candidates`` uses (every hukou person, plus roster members without a hukou row);
   blocking on exact name and on toneless pinyin; comparisons: name (exact with term-frequency adjustment,
   same pinyin with term-frequency adjustment, else), funeral-home area (the funeral home's service area,
   same map the saved model holds), hukou death deregistration near the death date, age at death, and
   "the person already has an ID-linked cremation record". Names are canonicalised with linkage.names first
   and compared by exact characters / pinyin, never by DuckDB's jaro_winkler or levenshtein, which count
   UTF-8 bytes on Chinese (a Han character is three bytes). Prior = 1 / candidates (each record is at most
   one person). u by random sampling; m by expectation maximisation blocked on name, except the name's own
   m: EM cannot estimate it from a name block, and a name-free block (month of death = month of
   deregistration) made EM converge on the wrong cluster, so the name's m is counted from the held-out
   records' labels (an advantage Splink gets and ours does not: ours was trained on another seed).
   Training and prediction are timed separately; the preparation of Splink's inputs (canonical names,
   pinyin, districts) is counted in its link time;
5. both are scored the same way: a record is linked when its best candidate has probability >= 0.999
   (ours: the model's ``accept``) and is a household person; review = best household candidate in
   [0.5, 0.999). "Should link" = held-out records whose true person is in ``linked.household_person``.

Prints a markdown table and the ratios ours / Splink, and writes bench/fuzzy_vs_splink_results.json (one
entry per scale and seed; a rerun replaces its own entry).
Every figure is measured in the run; none is asserted.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from crosscheck.settings import load_sources  # noqa: E402
from crosscheck.warehouse import connect, table_columns  # noqa: E402
from linkage import fuzzy  # noqa: E402
from linkage.link import link_all  # noqa: E402
from linkage.names import canonical  # noqa: E402

TABLE = "cremation"
REVIEW = 0.5
# EM sessions for Splink, as block_on() column lists. A session blocked on the month of death = month of
# deregistration (to estimate the name's m) converged on the wrong cluster (exact-name m 0.002) and, since
# Splink averages m over sessions, spoiled the others: hence name m from labels and this one session.
EM_BLOCKS = (("name",),)


# ---------------------------------------------------------------- the warehouse
def _bench_linkage():
    """bench/linkage.py as a module (its name clashes with the ``linkage`` package)."""
    spec = importlib.util.spec_from_file_location("bench_linkage", HERE / "linkage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepared_warehouse(base: Path, scale: float, seed: int, as_of: str) -> tuple[Path, Path]:
    """(prepared warehouse, truth folder) for scale and seed, generated and loaded the way bench/linkage.py does."""
    folder = base / f"s{scale}-seed{seed}"
    landing, prepared = folder / "landing", folder / "prepared_warehouse.duckdb"
    truth = Path(str(landing) + ".truth")
    bl = _bench_linkage()
    if not (folder / "generated.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "crosscheck.cli", "generate", "--out", str(landing), "--as-of",
                        as_of, "--scale", str(scale), "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
        (folder / "generated.json").write_text(json.dumps({"seconds": round(time.perf_counter() - started, 2)}))
    if not prepared.exists():
        bl._child(bl.PREPARE, str(landing), str(prepared), as_of)
    return prepared, truth


def holdout(con: duckdb.DuckDBPyConnection, truth: Path) -> pd.DataFrame:
    """Blank the IDs of the cremation records that name a hukou person; return them with their label."""
    held = con.execute(f"""
        SELECT _file, _row, _delivery_date, id_norm AS id_before FROM staging.{TABLE}
        WHERE id_status = 'valid' AND id_norm IN (SELECT id_norm FROM staging.hukou)""").df()
    links = pd.read_parquet(truth / "links.parquet", columns=["table", "delivery_date", "file", "row", "true_id"])
    links = links[links["table"] == TABLE].rename(columns={"file": "_file", "row": "_row"})
    links["_delivery_date"] = pd.to_datetime(links["delivery_date"])
    held["_delivery_date"] = pd.to_datetime(held["_delivery_date"])
    held = held.merge(links[["_file", "_row", "_delivery_date", "true_id"]], how="left",
                      on=["_file", "_row", "_delivery_date"])
    held["label"] = held["true_id"].where(held["true_id"].notna() & (held["true_id"] != ""), held["id_before"])
    con.register("bench_held", held[["_file", "_row"]])
    try:
        con.execute(f"""UPDATE staging.{TABLE} SET id_number = NULL, id_norm = NULL, id_status = 'empty'
                        WHERE (_file, _row) IN (SELECT (_file, _row) FROM bench_held)""")
        con.execute(f"DELETE FROM linked.{TABLE} WHERE (_file, _row) IN (SELECT (_file, _row) FROM bench_held)")
    finally:
        con.unregister("bench_held")
    if "link_method" in table_columns(con, "linked", TABLE):
        con.execute(f"DELETE FROM linked.{TABLE} WHERE link_method = 'fuzzy'")
    return held


# ---------------------------------------------------------------- ours
def time_our_training(con: duckdb.DuckDBPyConnection) -> float:
    """Seconds ``train_fuzzy_model`` takes on this warehouse (the model is discarded, not saved)."""
    started = time.perf_counter()
    fuzzy.train_fuzzy_model(con, TABLE, path=None)
    return time.perf_counter() - started


def run_ours(con: duckdb.DuckDBPyConnection, model: dict) -> tuple[pd.DataFrame, dict]:
    """(best household candidate per record with its probability, timings) from fuzzy_link."""
    started = time.perf_counter()
    counts = fuzzy.fuzzy_link(con, TABLE, model)
    seconds = time.perf_counter() - started
    best = con.execute(f"""
        SELECT * FROM (
            SELECT _file, _row, person_id, match_probability FROM linked.fuzzy_{TABLE}
            UNION ALL
            SELECT _file, _row, person_id, match_probability FROM linked.fuzzy_review
            WHERE record_table = '{TABLE}')
        QUALIFY row_number() OVER (PARTITION BY _file, _row ORDER BY match_probability DESC) = 1""").df()
    return best, {"train_s": None, "link_s": seconds, "pairs": counts["pairs"], "records": counts["records"]}


# ---------------------------------------------------------------- Splink
def _canonical_frame(values) -> pd.DataFrame:
    names = sorted({v for v in values if isinstance(v, str)})
    canon = [canonical(n) for n in names]
    return pd.DataFrame({"raw_name": names, "name": canon, "name_pinyin": [fuzzy.pinyin(c) for c in canon]})


def splink_inputs(con: duckdb.DuckDBPyConnection, model: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records, candidates) with the same columns: Splink's two input tables."""
    districts = fuzzy._districts(con)
    homes = model.get("funeral_home_districts", {})
    home_of = {d: h for h, ds in homes.items() for d in ds}
    spec = fuzzy._table_spec(model["settings"], TABLE)
    where = "id_status IN ('" + "', '".join(fuzzy.UNUSABLE) + "')"
    rec = con.execute(f"""
        SELECT _file || ':' || _row AS unique_id, {spec['name']} AS raw_name, funeral_home AS home,
               death_date, CAST(NULL AS DATE) AS birth_date, CAST(NULL AS VARCHAR) AS person_status,
               CAST(NULL AS DATE) AS deregistration_date,
               CAST(NULL AS BOOLEAN) AS taken
        FROM staging.{TABLE}
        WHERE {where} AND (_file, _row) NOT IN (SELECT (_file, _row) FROM linked.{TABLE})""").df()
    rec["home"] = rec["home"].where(rec["home"].isin(list(homes)))
    roster = """UNION ALL SELECT id_norm, any_value(name), NULL, NULL, NULL, NULL FROM staging.roster
                WHERE id_norm IS NOT NULL AND id_norm NOT IN (SELECT id_norm FROM staging.hukou
                WHERE id_norm IS NOT NULL) GROUP BY id_norm"""
    cand = con.execute(f"""
        WITH c AS (
            SELECT id_norm AS unique_id, any_value(name) AS raw_name, any_value(birth_date) AS birth_date,
                   any_value(person_status) AS person_status, any_value(deregistration_date) AS deregistration_date,
                   any_value({fuzzy._district_sql('address', districts)}) AS district
            FROM staging.hukou WHERE id_norm IS NOT NULL GROUP BY id_norm
            {roster})
        SELECT unique_id, raw_name, district, CAST(NULL AS DATE) AS death_date, birth_date, person_status,
               deregistration_date,
               unique_id IN (SELECT id_norm FROM staging.{TABLE} WHERE id_norm IS NOT NULL) AS taken
        FROM c""").df()
    cand["home"] = cand.pop("district").map(home_of)
    names = _canonical_frame(pd.concat([rec["raw_name"], cand["raw_name"]]))
    cols = ["unique_id", "name", "name_pinyin", "home", "death_date", "birth_date", "person_status",
            "deregistration_date", "taken"]
    rec = rec.merge(names, on="raw_name")
    cand = cand.merge(names, on="raw_name")
    return rec[rec["name"] != ""][cols], cand[cand["name"] != ""][cols]


def name_m_from_labels(rec: pd.DataFrame, cand: pd.DataFrame, held: pd.DataFrame) -> dict:
    """m of the name levels (exact, same pinyin, other) from the held-out records' labels, add-one smoothed."""
    labels = held.assign(unique_id=held["_file"] + ":" + held["_row"].astype(str))[["unique_id", "label"]]
    pairs = (rec.merge(labels, on="unique_id")
             .merge(cand[["unique_id", "name", "name_pinyin"]], left_on="label", right_on="unique_id",
                    suffixes=("", "_true")))
    exact = pairs["name"] == pairs["name_true"]
    reading = ~exact & (pairs["name_pinyin"] == pairs["name_pinyin_true"])
    counts = {"exact": int(exact.sum()), "pinyin": int(reading.sum()), "else": int((~exact & ~reading).sum())}
    total = sum(counts.values()) + len(counts)
    return {level: (n + 1) / total for level, n in counts.items()}


def splink_settings(n_candidates: int, name_m: dict):
    """A Splink user's settings for this problem (see the module docstring)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    death, dereg, birth = ("coalesce(death_date_l, death_date_r)", "coalesce(deregistration_date_l, "
                           "deregistration_date_r)", "coalesce(birth_date_l, birth_date_r)")
    status = "coalesce(person_status_l, person_status_r)"
    days = f"date_diff('day', {death}, {dereg})"
    years = f"date_diff('day', {birth}, {death}) / 365.25"
    name = cl.CustomComparison(output_column_name="name", comparison_levels=[
        cll.NullLevel("name"),
        cll.ExactMatchLevel("name", term_frequency_adjustments=True).configure(
            m_probability=name_m["exact"], fix_m_probability=True),
        cll.ExactMatchLevel("name_pinyin", term_frequency_adjustments=True).configure(
            m_probability=name_m["pinyin"], fix_m_probability=True),
        cll.ElseLevel().configure(m_probability=name_m["else"], fix_m_probability=True)])
    death_cmp = cl.CustomComparison(output_column_name="death", comparison_levels=[
        cll.CustomLevel(f"{status} IS NULL OR {death} IS NULL").configure(is_null_level=True),
        cll.CustomLevel(f"{status} = '1' AND {days} BETWEEN -3 AND 30", "deregistered 0-30 days after death"),
        cll.CustomLevel(f"{status} = '1' AND {days} BETWEEN 31 AND 400", "deregistered 31-400 days after"),
        cll.CustomLevel(f"{status} = '0'", "still alive in hukou"),
        cll.ElseLevel()])
    age = cl.CustomComparison(output_column_name="age_at_death", comparison_levels=[
        cll.CustomLevel(f"{birth} IS NULL OR {death} IS NULL").configure(is_null_level=True),
        cll.CustomLevel(f"{years} < 0", "born after death"),
        cll.CustomLevel(f"{years} < 40", "under 40"),
        cll.CustomLevel(f"{years} < 60", "40-60"),
        cll.CustomLevel(f"{years} < 75", "60-75"),
        cll.ElseLevel()])
    taken = cl.CustomComparison(output_column_name="taken", comparison_levels=[
        cll.CustomLevel("coalesce(taken_l, taken_r) IS NULL").configure(is_null_level=True),
        cll.CustomLevel("coalesce(taken_l, taken_r)", "already has an ID-linked cremation record"),
        cll.ElseLevel()])
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=1 / max(n_candidates, 1),
        blocking_rules_to_generate_predictions=[block_on("name"), block_on("name_pinyin")],
        comparisons=[name, cl.ExactMatch("home"), death_cmp, age, taken],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def run_splink(con: duckdb.DuckDBPyConnection, model: dict, held: pd.DataFrame,
               threads: int | None) -> tuple[pd.DataFrame, dict]:
    """(best household candidate per record with its probability, timings) from Splink."""
    from splink import DuckDBAPI, Linker, block_on

    started = time.perf_counter()
    rec, cand = splink_inputs(con, model)
    prepare_s = time.perf_counter() - started
    sp = duckdb.connect()
    if threads:
        sp.execute(f"SET threads = {threads}")
    sp.register("rec_df", rec)
    sp.register("cand_df", cand)
    sp.execute("CREATE TABLE records AS SELECT * FROM rec_df")
    sp.execute("CREATE TABLE candidates AS SELECT * FROM cand_df")
    sp.unregister("rec_df")
    sp.unregister("cand_df")
    started = time.perf_counter()
    name_m = name_m_from_labels(rec, cand, held)
    linker = Linker(["records", "candidates"], splink_settings(len(cand), name_m), db_api=DuckDBAPI(connection=sp),
                    input_table_aliases=["records", "candidates"])
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    em = []
    for columns in EM_BLOCKS:
        rule = block_on(*columns)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
            em.append(str(rule.get_blocking_rule("duckdb").blocking_rule_sql))
        except Exception as error:  # noqa: BLE001 -- reported in the results, not hidden
            em.append(f"failed: {error}")
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    pairs = linker.inference.predict(threshold_match_probability=REVIEW).as_pandas_dataframe()
    predict_s = time.perf_counter() - started
    pairs = pairs.rename(columns={"unique_id_l": "a", "unique_id_r": "b"})
    # orient the pair: record id is '<file>:<row>', candidate id an ID number
    is_rec_l = pairs["source_dataset_l"] == "records"
    pairs["record"] = pairs["a"].where(is_rec_l, pairs["b"])
    pairs["person_id"] = pairs["b"].where(is_rec_l, pairs["a"])
    above = pairs[pairs.match_probability >= 0.999].groupby("record").size()
    best = (pairs.sort_values("match_probability", ascending=False).drop_duplicates("record")
            [["record", "person_id", "match_probability"]])
    best[["_file", "_row"]] = best["record"].str.rsplit(":", n=1, expand=True)
    best["_row"] = best["_row"].astype("int64")
    timing = {"prepare_s": prepare_s, "train_s": train_s, "predict_s": predict_s,
              "link_s": prepare_s + predict_s, "pairs_scored": len(pairs), "records": len(rec),
              "candidates": len(cand), "records_with_several_above_accept": int((above > 1).sum()),
              "em_sessions": em, "name_m_from_labels": name_m, "parameters": _splink_parameters(linker)}
    sp.close()
    return best[["_file", "_row", "person_id", "match_probability"]], timing


def _splink_parameters(linker) -> dict:
    """The trained m and u per comparison level (for the results file)."""
    out = {}
    for comparison in linker._settings_obj.comparisons:
        out[comparison.output_column_name] = {
            level.label_for_charts: {"m": level.m_probability, "u": level.u_probability}
            for level in comparison.comparison_levels if not level.is_null_level}
    return out


# ---------------------------------------------------------------- scoring
def score(held: pd.DataFrame, best: pd.DataFrame, household: set[str], accept: float) -> dict:
    """Links, correct and false links, review, precision and recall of one method on the held-out records."""
    df = held.merge(best, how="left", on=["_file", "_row"])
    in_hp = df["person_id"].isin(household)
    linked = in_hp & (df["match_probability"] >= accept)
    review = in_hp & (df["match_probability"] >= REVIEW) & ~linked
    correct = linked & (df["person_id"] == df["label"])
    should = df["label"].isin(household)
    n_correct, n_false = int(correct.sum()), int((linked & ~correct).sum())
    return {"held_out": len(df), "should_link": int(should.sum()), "linked_correct": n_correct,
            "false": n_false, "precision": n_correct / (n_correct + n_false) if n_correct + n_false else None,
            "recall": n_correct / int(should.sum()) if should.any() else None, "review": int(review.sum())}


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"


def table(rows: list[dict]) -> str:
    head = ("method", "held out", "should link", "linked correct", "false", "precision", "recall", "review",
            "train s", "link s")
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for r in rows:
        lines.append(f"| {r['method']} | {_fmt(r['held_out'])} | {_fmt(r['should_link'])} | "
                     f"{_fmt(r['linked_correct'])} | {_fmt(r['false'])} | {_fmt(r['precision'])} | "
                     f"{_fmt(r['recall'])} | {_fmt(r['review'])} | {_fmt(r['train_s'], 2)} | {_fmt(r['link_s'], 2)} |")
    return "\n".join(lines)


def ratios(ours: dict, splink: dict) -> dict:
    def div(a, b):
        return a / b if a is not None and b else None
    return {"recall": div(ours["recall"], splink["recall"]), "precision": div(ours["precision"], splink["precision"]),
            "false": div(ours["false"], splink["false"]), "link_s": div(ours["link_s"], splink["link_s"]),
            "train_s": div(ours["train_s"], splink["train_s"])}


# ---------------------------------------------------------------- main
def run(base: Path, scale: float, seed: int, as_of: str, threads: int | None) -> dict:
    prepared, truth = prepared_warehouse(base, scale, seed, as_of)
    model = fuzzy.load_model()
    with tempfile.TemporaryDirectory(prefix="fuzzy-vs-splink-") as tmp:
        db = Path(tmp) / "bench_warehouse.duckdb"
        shutil.copy(prepared, db)
        con = connect(db)
        if threads:
            con.execute(f"SET threads = {threads}")
        link_all(con, load_sources())
        our_train_s = time_our_training(con)
        held = holdout(con, truth)
        household = {r[0] for r in con.execute("SELECT DISTINCT person_id FROM linked.household_person").fetchall()}
        ours_best, ours_t = run_ours(con, model)
        ours_t["train_s"] = our_train_s
        splink_best, splink_t = run_splink(con, model, held, threads)
        con.close()
    accept = model["settings"]["accept"]
    ours = {"method": "ours (linkage/fuzzy.py)", **score(held, ours_best, household, accept), **ours_t}
    spl = {"method": "Splink 4 (DuckDB)", **score(held, splink_best, household, accept), **splink_t}
    import splink
    return {"scale": scale, "seed": seed, "as_of": as_of, "accept": accept, "review": REVIEW,
            "label_from_truth_differs_from_id": int((held["label"] != held["id_before"]).sum()),
            "versions": {"splink": splink.__version__, "duckdb": duckdb.__version__,
                         "python": platform.python_version()},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "model": {"path": str(fuzzy.MODEL_PATH.relative_to(HERE.parent)), "trained_on": model.get("trained_on")},
            "caveat": "DuckDB's jaro_winkler / levenshtein count UTF-8 bytes, so a Han character counts as three; "
                      "both linkers compare names by characters (exact canonical name, pinyin) instead.",
            "methods": [ours, spl], "ours_over_splink": ratios(ours, spl)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, action="append", help="held-out seed(s); default 1")
    parser.add_argument("--dir", default="/tmp/crosscheck-bench-link", help="bench/linkage.py's folder")
    parser.add_argument("--as-of", default="2026-11-20")
    parser.add_argument("--threads", type=int, help="DuckDB threads for both (default: DuckDB's)")
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.WARNING)
    results = []
    for seed in args.seed or [1]:
        result = run(Path(args.dir), args.scale, seed, args.as_of, args.threads)
        results.append(result)
        print(f"\nscale {args.scale}, seed {seed} (held out; model trained on another seed), "
              f"accept >= {result['accept']}:\n")
        print(table(result["methods"]))
        print("\nours / Splink: " + ", ".join(f"{k} {_fmt(v, 2)}" for k, v in result["ours_over_splink"].items()))
        spl = result["methods"][1]
        print(f"Splink: {spl['records_with_several_above_accept']} records with several candidates above accept; "
              f"EM: {spl['em_sessions']}")
    write_results(HERE / "fuzzy_vs_splink_results.json", results)


def write_results(path: Path, results: list[dict]) -> None:
    """Add this run's results to the file, replacing earlier ones for the same scale and seed."""
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    fresh = {(r["scale"], r["seed"]) for r in results}
    kept = [r for r in earlier if (r.get("scale"), r.get("seed")) not in fresh]
    path.write_text(json.dumps(kept + results, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
