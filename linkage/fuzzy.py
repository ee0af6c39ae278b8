"""Probabilistic (Fellegi–Sunter) fallback for source records without a usable ID.

Splink's approach, built on the warehouse's own DuckDB and on linkage.names (Splink's string functions
count bytes on CJK). Every record whose ID is empty, malformed or Excel-damaged (or failed the check digit
and was not repaired, i.e. is not in linked.<table>) is compared with every hukou person (and roster
member without a hukou row) that shares a blocking key: canonical name, full pinyin, or the name with one
position masked (a typo, a `?`, a look-alike). Blocks larger than the model's caps are dropped, except the
exact-name block, whose size the term-frequency weight already accounts for (王伟 weighs little).

Comparison levels (m and u probabilities, log2 Bayes factors):
  name      exact (TF-adjusted: u = frequency of the name in hukou) · reading (every position reads the
            same / `?` / pinyin; TF on the pinyin) · fuzzy (≥ names.AGREE_AT of positions) · none
  district  the record's district (funeral home → districts learned from ID links, or an address) agrees
  death     (cremation) hukou 死亡注销 near / later than / before the death date, still alive, other
  age       (cremation) age at death from hukou birth date
  id_part   what survives of an Excel-damaged ID (area + birth date) agrees with the candidate's ID
  taken     (one-per-person tables) the candidate already has an ID-linked record in the same table

Posterior for candidate j of a record: p_j = 2^w_j / (1 + Σ_k 2^w_k), w = log2 prior odds + Σ log2(m/u),
so two candidates near the top share the mass and neither is accepted. p ≥ accept → linked.fuzzy_<table>;
review ≤ p < accept → linked.fuzzy_review. Only household persons are written; a record whose best
candidate is someone else is not linked.

The model is trained once (`train_fuzzy_model`, free labels: records whose valid ID matches a hukou
person, with the ID blanked) and saved to linkage/model/fuzzy_model.json; the night only loads it.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from datetime import date
from functools import lru_cache
from importlib.metadata import version as package_version
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from pypinyin import Style, lazy_pinyin

from crosscheck.warehouse import table_columns, table_exists, table_kind
from linkage.names import agreement, canonical_many

MODEL_PATH = Path(__file__).with_name("model") / "fuzzy_model.json"
UNUSABLE = ("empty", "malformed", "excel_damaged", "bad_check")
NAME_LEVELS = ("exact", "reading", "fuzzy", "none")
# The hukou candidates, kept between nights (see _build_candidates), and the key they were built under.
CANDIDATE_TABLES = ("linked.fuzzy_candidates", "linked.fuzzy_candidate_keys", "linked.fuzzy_candidate_tf")
CANDIDATE_STATE = "linked.fuzzy_candidate_state"

DEFAULT_SETTINGS = {
    "accept": 0.999,               # posterior from which a fuzzy link is made
    "review": 0.5,                 # posterior from which a candidate goes to review
    # Blocks larger than this are dropped (exact: TF weighs them). A masked key (one position a typo, a `?`)
    # over 20 people is a common name's: a typo in it cannot single anyone out at 0.999 anyway, and 20
    # instead of 100 gave the same links on held-out scale-0.1 data with 40 % of the pairs.
    "block_cap": {"exact": 5000, "pinyin": 500, "mask": 20},
    "sample_pairs": 300_000,       # random pairs for u
    "tables": {
        "cremation": {"name": "name", "district_from": "funeral_home", "district_map": True,
                      "death_date": "death_date", "one_per_person": True},
        "property_owner": {"name": "name", "district_from": "location", "where": "doc_type = '身份证'"},
        "vehicle": {"name": "name", "where": "owner_doc_type = 'A'"},
        "business_person": {"name": "name"},
    },
    "default_table": {"name": "name"},
}


# ---------------------------------------------------------------- names → keys
_UNITS = re.compile(r"[a-z]+|.")


@lru_cache(maxsize=100_000)
def _char_pinyin(c: str) -> str:
    return lazy_pinyin(c, style=Style.NORMAL, errors="ignore")[0] if "\u4e00" <= c <= "\u9fff" else c


def pinyin(canon: str) -> str:
    """Toneless pinyin of a canonical name, one syllable per unit (a blocking key, not a comparison)."""
    return " ".join(_char_pinyin(u) if len(u) == 1 else u for u in _UNITS.findall(canon))


def name_keys(canon: str) -> list[tuple[str, str]]:
    """(kind, key) blocking keys of a canonical name."""
    if not canon:
        return []
    units = _UNITS.findall(canon)
    keys = [("exact", canon), ("pinyin", pinyin(canon))]
    if len(units) >= 2:
        keys += [("mask", f"{i}:" + "".join("*" if j == i else u for j, u in enumerate(units)))
                 for i in range(len(units))]
    return keys


def name_level(a: str, b: str) -> str:
    if a == b:
        return "exact"
    score, what = agreement(a, b)
    if what == "exact":
        return "exact"
    if what in ("none", "missing"):
        return "none"
    return "reading" if score >= 0.8 else "fuzzy"


def build_name_keys(con, source: str, target: str) -> None:
    """target (canon, kind, key): the blocking keys of every distinct ``canon`` of ``source``, built in SQL.

    The same keys as ``name_keys`` (the reference, kept for tests), but only each distinct character goes
    through pypinyin; splitting, masking and joining run in DuckDB list functions (158k names: 0.5 s
    instead of 3.7 s in Python). ``target`` qualified (``linked.x``) is a warehouse table, else a temp table."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE fz_units AS SELECT canon, regexp_extract_all(canon, "
                f"'{_UNITS.pattern}') AS units FROM (SELECT DISTINCT canon FROM {source})")
    chars = [c for (c,) in con.execute("SELECT DISTINCT u FROM (SELECT unnest(units) AS u FROM fz_units) "
                                       "WHERE length(u) = 1").fetchall()]
    con.execute("SET VARIABLE fz_pinyin = map(?::VARCHAR[], ?::VARCHAR[])", [chars, [_char_pinyin(c) for c in chars]])
    try:
        con.execute(f"""
            CREATE OR REPLACE {table_kind(target)} AS
            SELECT canon, 'exact' AS kind, canon AS key FROM fz_units
            UNION ALL
            SELECT canon, 'pinyin', array_to_string(list_transform(units,
                   lambda unit: coalesce(getvariable('fz_pinyin')[unit], unit)), ' ') FROM fz_units
            UNION ALL
            SELECT canon, 'mask', pos || ':' || array_to_string(list_transform(units,
                   lambda unit, j: CASE WHEN j - 1 = pos THEN '*' ELSE unit END), '')
            FROM (SELECT canon, units, unnest(range(len(units))) AS pos FROM fz_units WHERE len(units) >= 2)""")
    finally:
        con.execute("RESET VARIABLE fz_pinyin")
        con.execute("DROP TABLE IF EXISTS fz_units")


# ---------------------------------------------------------------- candidates and records
def _districts(con) -> list[str]:
    found = set()
    if table_exists(con, "staging", "roster"):
        found |= {r[0] for r in con.execute("SELECT DISTINCT district FROM staging.roster "
                                            "WHERE coalesce(district, '') <> ''").fetchall()}
    # longest first (a district's name inside another's matches the longer one), then by name: a set's order
    # changes from one process to the next, and both the CASE below and the candidates' cache key follow it
    return sorted(found, key=lambda d: (-len(d), d))


def _district_sql(expr: str, districts: list[str]) -> str:
    if not districts:
        return "CAST(NULL AS VARCHAR)"
    cases = " ".join(f"WHEN strpos({expr}, '{d}') > 0 THEN '{d}'" for d in districts)
    return f"CASE {cases} END"


def candidate_cache_key(version: str, hukou_fingerprint: str) -> str:
    """What the hukou candidates are made of besides the districts: the linkage code and configuration
    version and staging.hukou's content fingerprint (linkage/incremental.py), for ``fuzzy_link``'s cache."""
    return f"{version}:{hukou_fingerprint}"


def _build_candidates(con, cache_key: str | None = None) -> int:
    """fz_cand2 (every hukou person, and roster member without one, with attributes and canonical name),
    fz_keys (the name keys of every distinct canonical name) and fz_tf (how many candidates hold each key).

    The hukou part is nearly all the work (2.9 M persons at scale 1, 4 of the fallback's 5 s) and depends
    only on hukou, the roster's district names and the code. With ``cache_key`` (``candidate_cache_key``)
    it is kept in the warehouse (linked.fuzzy_candidates, _keys, _tf; linked.fuzzy_candidate_state holds
    the key it was built under) and used again on the nights that key and the districts do not change,
    which is most nights: hukou delivers monthly. The roster members without a hukou row are added every
    night. Keys are a function of the canonical name alone and term frequencies are sums over names, so
    the union is exactly what one build over all candidates gives."""
    districts = _districts(con)
    if cache_key is None:
        hukou = ("fz_hcand", "fz_hkeys", "fz_htf")
        _build_hukou_candidates(con, districts, *hukou)
    else:
        hukou = CANDIDATE_TABLES
        key = hashlib.sha256(repr((cache_key, districts, duckdb.__version__, package_version("pypinyin")))
                             .encode()).hexdigest()
        if not _candidates_cached(con, key):
            forget_candidates(con)
            # Stored uncompressed: choosing and applying DuckDB's string compression tripled the cost of
            # writing them (scale 1: 1.2 s instead of 3.3 s; 290 MB instead of 85 MB in the warehouse).
            con.execute("SET force_compression = 'uncompressed'")
            try:
                _build_hukou_candidates(con, districts, *hukou)
            finally:
                con.execute("RESET force_compression")
            con.execute(f"CREATE TABLE {CANDIDATE_STATE} AS SELECT ?::VARCHAR AS cache_key", [key])
    _add_roster_candidates(con, *hukou)
    return con.execute("SELECT count(*) FROM fz_cand2").fetchone()[0]


def forget_candidates(con) -> None:
    """The kept hukou candidates are not used again: the next ``fuzzy_link`` with a key builds them anew."""
    con.execute(f"DROP TABLE IF EXISTS {CANDIDATE_STATE}")


def _candidates_cached(con, key: str) -> bool:
    schema_tables = [t.split(".") for t in (*CANDIDATE_TABLES, CANDIDATE_STATE)]
    if not all(table_exists(con, schema, name) for schema, name in schema_tables):
        return False
    return con.execute(f"SELECT cache_key FROM {CANDIDATE_STATE}").fetchall() == [(key,)]


def _build_hukou_candidates(con, districts: list[str], cand: str, keys: str, tf: str) -> None:
    """cand: one row per hukou person with a usable name; keys: their names' keys; tf: per key, how many of
    them hold it. Counted per distinct name, never as one row per person and key (at scale 1 that table
    held 14 M rows and dominated the link stage's memory)."""
    hk = table_columns(con, "staging", "hukou")
    col = lambda c, t="VARCHAR": c if c in hk else f"CAST(NULL AS {t})"  # noqa: E731
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fz_cand AS
        SELECT id_norm AS person_id, any_value(name) AS cand_name, any_value({col('birth_date', 'DATE')}) AS birth_date,
               any_value({col('person_status')}) AS person_status,
               any_value({col('deregistration_date', 'DATE')}) AS deregistration_date,
               any_value({_district_sql(col('address'), districts)}) AS district
        FROM staging.hukou WHERE id_norm IS NOT NULL GROUP BY id_norm""")
    _with_canonical_names(con, "fz_cand", "cand_name", cand, keep_name=False)
    con.execute("DROP TABLE fz_cand")
    build_name_keys(con, cand, keys)
    con.execute(f"""CREATE OR REPLACE {table_kind(tf)} AS
                    SELECT k.kind, k.key, sum(c.n) AS n FROM {keys} k
                    JOIN (SELECT canon, count(*) AS n FROM {cand} GROUP BY canon) c USING (canon)
                    GROUP BY ALL""")


def _add_roster_candidates(con, cand: str, keys: str, tf: str) -> None:
    """fz_cand2, fz_keys, fz_tf: the hukou candidates (cand, keys, tf) and the roster members without a
    hukou row (fz_rcand), with the keys of their names that hukou does not have and their term counts."""
    con.execute("""CREATE OR REPLACE TEMP TABLE fz_cand AS
                   SELECT CAST(NULL AS VARCHAR) AS person_id, CAST(NULL AS VARCHAR) AS cand_name, CAST(NULL AS DATE)
                   AS birth_date, CAST(NULL AS VARCHAR) AS person_status, CAST(NULL AS DATE) AS deregistration_date,
                   CAST(NULL AS VARCHAR) AS district LIMIT 0""")
    if table_exists(con, "staging", "roster"):
        con.execute("""INSERT INTO fz_cand
                       SELECT id_norm, any_value(name), NULL, NULL, NULL, any_value(district) FROM staging.roster
                       WHERE id_norm IS NOT NULL
                         AND id_norm NOT IN (SELECT id_norm FROM staging.hukou WHERE id_norm IS NOT NULL)
                       GROUP BY id_norm""")
    _with_canonical_names(con, "fz_cand", "cand_name", "fz_rcand", keep_name=False)
    con.execute("DROP TABLE fz_cand")
    con.execute(f"CREATE OR REPLACE TEMP VIEW fz_cand2 AS SELECT * FROM {cand} UNION ALL BY NAME SELECT * FROM fz_rcand")
    con.execute(f"CREATE OR REPLACE TEMP TABLE fz_rnames AS SELECT DISTINCT canon FROM fz_rcand "
                f"WHERE canon NOT IN (SELECT canon FROM {keys} WHERE kind = 'exact')")
    build_name_keys(con, "fz_rnames", "fz_rnkeys")
    con.execute("DROP TABLE fz_rnames")
    con.execute(f"CREATE OR REPLACE TEMP VIEW fz_keys AS SELECT * FROM {keys} UNION ALL BY NAME SELECT * FROM fz_rnkeys")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE fz_tf AS
                    SELECT kind, key, sum(n) AS n FROM (
                        SELECT kind, key, n FROM {tf}
                        UNION ALL
                        SELECT k.kind, k.key, sum(c.n) FROM fz_keys k
                        JOIN (SELECT canon, count(*) AS n FROM fz_rcand GROUP BY canon) c USING (canon)
                        GROUP BY ALL)
                    GROUP BY ALL""")


def _with_canonical_names(con, source: str, name_col: str, target: str, keep_name: bool = True) -> None:
    """target = source + its name's canonical form (without the name itself unless ``keep_name``); nameless
    rows dropped (``target`` qualified: a warehouse table, else a temp table).

    A name of plain Han characters (nearly all) is canonicalised in DuckDB: each distinct character is
    folded once in Python (linkage.names: traditional and variant forms, protected surnames) and the names
    are mapped with a list lambda. Only the rest (separators, Latin, wildcards, rare blocks) go through
    linkage.names one by one. At scale 1 that is a million distinct names in about a second."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE fz_names AS SELECT DISTINCT {name_col} AS name FROM {source} "
                f"WHERE {name_col} IS NOT NULL")
    plain = "regexp_full_match(name, '[\u4e00-\u9fff]+')"   # real characters: RE2 reads no \\u escapes
    chars = [c for (c,) in con.execute(f"SELECT DISTINCT unnest(string_split(name, '')) FROM fz_names "
                                       f"WHERE {plain}").fetchall()]
    con.execute("SET VARIABLE fz_fold = map(?::VARCHAR[], ?::VARCHAR[])", [chars, canonical_many(chars)])
    others = [n for (n,) in con.execute(f"SELECT name FROM fz_names WHERE NOT {plain}").fetchall()]
    con.register("fz_canonical_df", pd.DataFrame({"name": others, "canon": canonical_many(others)},
                                                 columns=["name", "canon"], dtype=object))
    try:
        con.execute(f"""
            CREATE OR REPLACE {table_kind(target)} AS
            WITH canon AS (
                SELECT name, array_to_string(list_transform(string_split(name, ''),
                       lambda c: coalesce(getvariable('fz_fold')[c], c)), '') AS canon
                FROM fz_names WHERE {plain}
                UNION ALL
                SELECT name, canon FROM fz_canonical_df)
            SELECT t.*{'' if keep_name else f' EXCLUDE ({name_col})'}, n.canon
            FROM {source} t JOIN canon n ON n.name = t.{name_col} WHERE n.canon <> ''""")
    finally:
        con.unregister("fz_canonical_df")
        con.execute("RESET VARIABLE fz_fold")
        con.execute("DROP TABLE IF EXISTS fz_names")


def _table_spec(settings: dict, table: str) -> dict:
    return settings["tables"].get(table, settings["default_table"])


def _build_records(con, table: str, spec: dict, training: bool) -> int:
    """fz_rec: the table's records to compare (training: valid IDs, with the true person kept aside)."""
    cols = set(table_columns(con, "staging", table))
    districts = _districts(con)
    dcol = spec.get("district_from")
    district = _district_sql(dcol, districts) if dcol in cols else "CAST(NULL AS VARCHAR)"
    home = dcol if (dcol in cols and spec.get("district_map")) else "CAST(NULL AS VARCHAR)"
    death = spec.get("death_date") if spec.get("death_date") in cols else "CAST(NULL AS DATE)"
    raw_id = "id_number" if "id_number" in cols else "CAST(NULL AS VARCHAR)"
    where = [f"({spec['where']})"] if spec.get("where") else []
    if training:
        where.append("id_status = 'valid' AND id_norm IN (SELECT person_id FROM fz_cand2)")
        true_id = "id_norm"
    else:
        where.append("id_status IN ('" + "', '".join(UNUSABLE) + "')")
        if table_exists(con, "linked", table):
            where.append(f"(_file, _row) NOT IN (SELECT (_file, _row) FROM linked.{table})")
        true_id = "CAST(NULL AS VARCHAR)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fz_rec0 AS
        SELECT _file, _row, {spec['name']} AS rec_name, {district} AS rec_district, {home} AS rec_home,
               {death} AS death_date, {raw_id} AS raw_id, {true_id} AS true_id
        FROM staging.{table} WHERE {' AND '.join(where)}""")
    _with_canonical_names(con, "fz_rec0", "rec_name", "fz_rec")
    return con.execute("SELECT count(*) FROM fz_rec").fetchone()[0]


def _pairs(con, settings: dict) -> pd.DataFrame:
    """Blocked candidate pairs with their comparison inputs."""
    build_name_keys(con, "fz_rec", "fz_rkeys")
    cap = settings["block_cap"]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fz_pairs AS
        WITH ok AS (SELECT kind, key FROM fz_tf WHERE n <= CASE kind WHEN 'exact' THEN {cap['exact']}
                                                  WHEN 'pinyin' THEN {cap['pinyin']} ELSE {cap['mask']} END),
        rk AS (SELECT DISTINCT r._file, r._row, k.kind, k.key FROM fz_rec r JOIN fz_rkeys k USING (canon)),
        names AS (SELECT DISTINCT rk._file, rk._row, ck.canon
                  FROM rk JOIN ok USING (kind, key) JOIN fz_keys ck USING (kind, key))
        SELECT DISTINCT n._file, n._row, c.person_id FROM names n JOIN fz_cand2 c USING (canon)""")
    return con.execute("""
        SELECT p._file, p._row, p.person_id, r.canon AS rec_canon, c.canon AS cand_canon,
               r.rec_district, r.rec_home, c.district AS cand_district, r.death_date, c.birth_date,
               c.person_status, c.deregistration_date, r.raw_id, r.true_id
        FROM fz_pairs p JOIN fz_rec r USING (_file, _row) JOIN fz_cand2 c USING (person_id)""").df()


# ---------------------------------------------------------------- comparison levels
def _id_part(raw) -> str | None:
    """Digits an Excel-damaged ID still holds reliably: 17 digits minus the zeroed tail, or the area code."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip().replace(" ", "")
    m = re.fullmatch(r"(\d)\.(\d+)[eE]\+?(\d+)", text)
    if m:
        return (m.group(1) + m.group(2))[:6] if len(m.group(1) + m.group(2)) >= 6 else None
    digits = re.sub(r"\D", "", text)
    if len(digits) == 18 and digits.endswith("000"):
        return digits[:14]
    return None


COMPARISONS = ("district", "death", "age", "id_part", "taken")

_LEVELS_SQL = """
SELECT p._i, n.name,
       CASE WHEN p.rec_home IN (SELECT home FROM fz_lv_homes) THEN
                CASE WHEN p.cand_district IS NULL THEN 'missing'
                     WHEN (p.rec_home, p.cand_district) IN (SELECT (home, district) FROM fz_lv_homes) THEN 'agree'
                     ELSE 'disagree' END
            WHEN p.rec_district IS NULL OR p.cand_district IS NULL THEN 'missing'
            WHEN p.rec_district = p.cand_district THEN 'agree' ELSE 'disagree' END AS district,
       CASE WHEN p.death_date IS NULL THEN 'missing'
            WHEN p.person_status = '1' AND p.deregistration_date IS NOT NULL THEN
                CASE WHEN p.dereg_days BETWEEN -3 AND 30 THEN 'dereg_near'
                     WHEN p.dereg_days BETWEEN 31 AND 400 THEN 'dereg_later' ELSE 'dereg_far' END
            WHEN p.person_status = '0' THEN 'alive'
            WHEN p.person_status IN ('2', '3', '4') THEN 'dereg_other' ELSE 'missing' END AS death,
       CASE WHEN p.death_date IS NULL OR p.birth_date IS NULL THEN 'missing'
            WHEN p.age_years < 0 THEN 'unborn' WHEN p.age_years < 40 THEN 'lt40' WHEN p.age_years < 60 THEN '40_60'
            WHEN p.age_years < 75 THEN '60_75' ELSE '75plus' END AS age,
       CASE WHEN i.part IS NULL THEN 'missing'
            WHEN starts_with(p.person_id, i.part) THEN CASE WHEN length(i.part) = 14 THEN 'agree14' ELSE 'agree6' END
            ELSE 'disagree' END AS id_part,
       CASE WHEN p.taken IS NULL THEN 'missing' WHEN p.taken THEN 'yes' ELSE 'no' END AS taken,
       p.dereg_days
FROM (SELECT *, date_diff('day', death_date, deregistration_date) AS dereg_days,
             date_diff('day', birth_date, death_date) / 365.25 AS age_years
      FROM (SELECT _i, CAST(person_id AS VARCHAR) AS person_id, CAST(rec_canon AS VARCHAR) AS rec_canon,
                   CAST(cand_canon AS VARCHAR) AS cand_canon, CAST(rec_district AS VARCHAR) AS rec_district,
                   CAST(rec_home AS VARCHAR) AS rec_home, CAST(cand_district AS VARCHAR) AS cand_district,
                   CAST(death_date AS DATE) AS death_date, CAST(birth_date AS DATE) AS birth_date,
                   CAST(person_status AS VARCHAR) AS person_status,
                   CAST(deregistration_date AS DATE) AS deregistration_date, CAST(raw_id AS VARCHAR) AS raw_id,
                   CAST({taken} AS BOOLEAN) AS taken FROM fz_lv_pairs)) p
JOIN fz_lv_names n USING (rec_canon, cand_canon)
LEFT JOIN fz_lv_parts i USING (raw_id)
ORDER BY p._i
"""


def _levels(con, df: pd.DataFrame, model: dict) -> pd.DataFrame:
    """The comparison level of every pair of ``df`` (one row each, same order), computed by DuckDB in one
    pass; only the name level is Python (linkage.names), once per distinct pair of canonical names."""
    names = df[["rec_canon", "cand_canon"]].drop_duplicates()
    names = names.assign(name=[name_level(a, b) for a, b in zip(names.rec_canon, names.cand_canon)])
    homes = pd.DataFrame([(h, d) for h, ds in model.get("funeral_home_districts", {}).items() for d in ds],
                         columns=["home", "district"], dtype=object)
    raw = [r for r in df["raw_id"].dropna().unique()]
    parts = pd.DataFrame({"raw_id": raw, "part": [_id_part(r) for r in raw]}, dtype=object)
    frames = {"fz_lv_pairs": df.assign(_i=range(len(df))), "fz_lv_names": names, "fz_lv_homes": homes,
              "fz_lv_parts": parts}
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        return con.execute(_LEVELS_SQL.format(taken="taken" if "taken" in df else "NULL")).df()
    finally:
        for name in frames:
            con.unregister(name)


_TEXTS = {"district": {"agree": "district"},
          "death": {"dereg_near": "hukou deregistered (death) {d} days after death",
                    "dereg_later": "hukou deregistered (death) later"},
          "age": {"60_75": "age at death 60–75", "75plus": "age at death 75+", "40_60": "age at death 40–60"},
          "id_part": {"agree14": "damaged ID's area and birth date", "agree6": "damaged ID's area code"},
          "taken": {"yes": "(person already has an ID-linked record)"}}


def _weights(df: pd.DataFrame, levels: pd.DataFrame, model: dict, n_cand: int, tf_exact, tf_pinyin):
    """log2 Bayes factors per comparison, the total match weight and the 'what agreed' text (vectorised:
    the per-pair work is dictionary lookups on plain arrays)."""
    floor = 1.0 / max(n_cand, 1)
    name_m, name_u = model["comparisons"]["name"]["m"], model["comparisons"]["name"]["u"]
    lvl = levels["name"].to_numpy(dtype=object)
    cand = df["cand_canon"].to_numpy(dtype=object)
    py_of = {c: pinyin(c) for c in set(cand[lvl == "reading"])}
    n_tf = np.array([tf_exact.get(c, 1) if lv == "exact" else tf_pinyin.get(py_of[c], 1) if lv == "reading" else 0
                     for lv, c in zip(lvl, cand)], dtype=float)
    u = np.where(np.isin(lvl, ("exact", "reading")), np.maximum(n_tf / max(n_cand, 1), floor),
                 np.array([name_u[lv] if lv in name_u else 1.0 for lv in lvl], dtype=float))
    m = np.array([name_m[lv] for lv in lvl], dtype=float)
    weight = math.log2(model["prior_in_population"] / max(n_cand, 1)) + np.log2(m / u)
    parts = [[_name_text(lv, int(n), n_cand) for lv, n in zip(lvl, n_tf)]]
    days = levels["dereg_days"].to_numpy(dtype=object)
    for comp in COMPARISONS:
        spec = model["comparisons"].get(comp)
        if spec is None:
            continue
        vals = levels[comp].to_numpy(dtype=object)
        bf = {lv: math.log2(spec["m"][lv] / spec["u"][lv]) for lv in spec["m"]}
        weight = weight + np.array([bf.get(lv, 0.0) for lv in vals])      # 'missing': no evidence either way
        texts = _TEXTS.get(comp, {})
        parts.append([texts.get(lv, "").replace("{d}", str(d)) for lv, d in zip(vals, days)])
    return pd.Series(weight, index=df.index), [", ".join(t for t in row if t) for row in zip(*parts)]


def _name_text(level: str, n: int, n_cand: int) -> str:
    if level == "exact":
        return f"name exact ({'rare' if n <= 3 else 'common' if n >= 20 else 'tf'} name, tf {n}/{n_cand})"
    if level == "reading":
        return f"name reads the same (pinyin tf {n}/{n_cand})"
    return "name fuzzy (one position differs)" if level == "fuzzy" else ""


def _taken(con, table: str, df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    if not spec.get("one_per_person"):
        return df
    taken = {r[0] for r in con.execute(
        f"SELECT DISTINCT id_norm FROM staging.{table} WHERE id_norm IS NOT NULL").fetchall()}
    df = df.copy()
    # in training the record's own ID must not count: only another record with the same ID does
    if df["true_id"].notna().any():
        counts = Counter(r[0] for r in con.execute(
            f"SELECT id_norm FROM staging.{table} WHERE id_norm IS NOT NULL").fetchall())
        df["taken"] = [counts.get(p, 0) > (1 if p == t else 0) for p, t in zip(df.person_id, df.true_id)]
    else:
        df["taken"] = df.person_id.isin(taken)
    return df


# ---------------------------------------------------------------- training
def train_fuzzy_model(con: duckdb.DuckDBPyConnection, table: str = "cremation", settings: dict | None = None,
                      path: Path | str | None = MODEL_PATH, seed: int = 42) -> dict:
    """Estimate m and u from a warehouse's ID-linked records (IDs blanked) and random pairs; save to JSON."""
    settings = json.loads(json.dumps(settings or DEFAULT_SETTINGS))
    spec = _table_spec(settings, table)
    n_cand = _build_candidates(con)
    n_valid = con.execute(f"SELECT count(*) FROM staging.{table} WHERE id_status = 'valid'").fetchone()[0]
    n_rec = _build_records(con, table, spec, training=True)
    model = {"format": "crosscheck-fuzzy-fs/1", "trained_on": {"table": table, "records": n_rec,
             "candidates": n_cand, "date": date.today().isoformat()},
             "settings": settings, "prior_in_population": n_rec / max(n_valid, 1)}
    # funeral home → districts of its ID-linked dead (share ≥ 5 %)
    homes = {}
    if spec.get("district_map"):
        rows = con.execute("""SELECT r.rec_home, c.district, count(*) FROM fz_rec r JOIN fz_cand2 c
                              ON c.person_id = r.true_id WHERE r.rec_home IS NOT NULL AND c.district IS NOT NULL
                              GROUP BY ALL""").fetchall()
        tot = Counter()
        for h, _d, n in rows:
            tot[h] += n
        for h, d, n in rows:
            if n >= 0.05 * tot[h]:
                homes.setdefault(h, []).append(d)
        homes = {h: sorted(v) for h, v in homes.items()}
    model["funeral_home_districts"] = homes

    # m: the true pair of every ID-linked record (its ID blanked)
    pos = con.execute("""SELECT r._file, r._row, c.person_id, r.canon AS rec_canon, c.canon AS cand_canon,
               r.rec_district, r.rec_home, c.district AS cand_district, r.death_date, c.birth_date,
               c.person_status, c.deregistration_date, CAST(NULL AS VARCHAR) AS raw_id, r.true_id
        FROM fz_rec r JOIN fz_cand2 c ON c.person_id = r.true_id""").df()
    pos = _taken(con, table, pos, spec)
    # u: random record × candidate pairs
    k = settings["sample_pairs"]
    rng = np.random.default_rng(seed)
    rec = con.execute("SELECT _file, _row, canon AS rec_canon, rec_district, rec_home, death_date, true_id "
                      "FROM fz_rec").df()
    cand = con.execute("SELECT person_id, canon AS cand_canon, district AS cand_district, birth_date, "
                       "person_status, deregistration_date FROM fz_cand2").df()
    ri, ci = rng.integers(0, len(rec), k), rng.integers(0, len(cand), k)
    rnd = pd.concat([rec.iloc[ri].reset_index(drop=True), cand.iloc[ci].reset_index(drop=True)], axis=1)
    rnd["raw_id"] = None
    rnd = rnd[rnd.person_id != rnd.true_id].reset_index(drop=True)
    rnd = _taken(con, table, rnd, spec)
    lp, lr = _levels(con, pos, model), _levels(con, rnd, model)

    def probs(series: pd.Series, levels: list[str]) -> dict:
        counts = series.value_counts()
        total = sum(counts.get(lv, 0) + 1 for lv in levels)
        return {lv: (counts.get(lv, 0) + 1) / total for lv in levels}

    comps = {}
    # name u: exact / reading are TF-adjusted at run time; fuzzy u counted exactly over the blocked pairs
    blocked = _pairs(con, settings)
    blocked = blocked[blocked.person_id != blocked.true_id]
    nb = blocked.assign(lvl=[name_level(a, b) for a, b in zip(blocked.rec_canon, blocked.cand_canon)])
    total_pairs = n_rec * n_cand
    u_name = {lv: max((nb.lvl == lv).sum(), 1) / total_pairs for lv in ("exact", "reading", "fuzzy")}
    for lv in ("reading", "fuzzy"):        # never rarer than an exact name of average frequency
        u_name[lv] = max(u_name[lv], u_name["exact"])
    u_name = {lv: float(v) for lv, v in u_name.items()}
    u_name["none"] = 1 - sum(u_name.values())
    comps["name"] = {"m": probs(lp["name"], list(NAME_LEVELS)), "u": u_name}
    level_sets = {"district": ["agree", "disagree"], "death": ["dereg_near", "dereg_later", "dereg_far",
                  "alive", "dereg_other"], "age": ["unborn", "lt40", "40_60", "60_75", "75plus"],
                  "taken": ["yes", "no"]}
    for comp, lvls in level_sets.items():
        if (lp[comp] == "missing").all():
            continue
        comps[comp] = {"m": probs(lp[comp][lp[comp] != "missing"], lvls),
                       "u": probs(lr[comp][lr[comp] != "missing"], lvls)}
    # id_part cannot be learned from valid IDs: fixed by construction (an agreeing 14-digit prefix is one
    # person in ~10^5 of a birth cohort; an area code one in ~10)
    comps["id_part"] = {"m": {"agree14": 0.98, "agree6": 0.98, "disagree": 0.02},
                        "u": {"agree14": 2e-5, "agree6": 0.1, "disagree": 0.9}}
    model["comparisons"] = comps
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(model, ensure_ascii=False, indent=1), encoding="utf-8")
    return model


def load_model(path: Path | str = MODEL_PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the night
def create_fuzzy_review(con: duckdb.DuckDBPyConnection, *, replace: bool = False) -> None:
    """linked.fuzzy_review: candidates of records without an ID whose posterior fell below acceptance."""
    con.execute(f"CREATE {'OR REPLACE TABLE' if replace else 'TABLE IF NOT EXISTS'} linked.fuzzy_review ("
                "record_table VARCHAR, _file VARCHAR, _row BIGINT, household_id VARCHAR, person_id VARCHAR, "
                "kin VARCHAR, match_probability DOUBLE, match_weight DOUBLE, link_method VARCHAR, "
                "link_agreed VARCHAR, reason VARCHAR)")


def fuzzy_link(con: duckdb.DuckDBPyConnection, table: str, model: dict | None = None,
               candidate_key: str | None = None) -> dict:
    """Link the table's records without a usable ID: linked.fuzzy_<table> (accepted) and
    linked.fuzzy_review (the band below). Returns counts. With ``candidate_key`` (``candidate_cache_key``)
    the hukou candidates are kept in the warehouse and used again while the key holds."""
    model = model or load_model()
    settings = model["settings"]
    spec = _table_spec(settings, table)
    create_fuzzy_review(con)
    con.execute("DELETE FROM linked.fuzzy_review WHERE record_table = ?", [table])
    out_cols = ("_file VARCHAR, _row BIGINT, household_id VARCHAR, person_id VARCHAR, kin VARCHAR, "
                "match_probability DOUBLE, match_weight DOUBLE, link_method VARCHAR, link_agreed VARCHAR")
    con.execute(f"CREATE OR REPLACE TABLE linked.fuzzy_{table} ({out_cols})")
    counts = {"records": 0, "pairs": 0, "linked": 0, "review": 0}
    if not table_exists(con, "staging", table) or not table_exists(con, "staging", "hukou"):
        return counts
    counts["records"] = _build_records(con, table, spec, training=False)
    if not counts["records"]:
        return counts                  # nothing without an ID tonight: the candidates are not even built
    n_cand = _build_candidates(con, candidate_key)
    if not n_cand:
        return counts
    df = _pairs(con, settings)
    counts["pairs"] = len(df)
    if df.empty:
        return counts
    # A fixed order: the posterior's denominator is a float sum over the record's candidates, and DuckDB
    # returns the pairs in any order (two links of one warehouse differed in the last bit otherwise).
    df = df.sort_values(["_file", "_row", "person_id"], kind="stable", ignore_index=True)
    df = _taken(con, table, df, spec)
    tf = con.execute("""SELECT t.kind, t.key, t.n FROM fz_tf t JOIN (
                            SELECT DISTINCT k.kind, k.key FROM fz_keys k
                            WHERE k.kind IN ('exact', 'pinyin') AND k.canon IN (
                                SELECT c.canon FROM fz_pairs p JOIN fz_cand2 c USING (person_id))) USING (kind, key)
                         """).fetchall()          # only the candidates' own keys: not all 290k names
    tf_exact = {k: n for kind, k, n in tf if kind == "exact"}
    tf_pinyin = {k: n for kind, k, n in tf if kind == "pinyin"}
    levels = _levels(con, df, model)
    df["match_weight"], df["link_agreed"] = _weights(df, levels, model, n_cand, tf_exact, tf_pinyin)
    # posterior over the record's candidates (at most one is the person; none is possible)
    df["bf"] = np.exp2(np.minimum(df.match_weight.to_numpy(dtype=float), 1000.0))
    denom = df.groupby(["_file", "_row"])["bf"].transform("sum") + 1.0
    df["match_probability"] = df.bf / denom
    keep = df[df.match_probability >= settings["review"]][
        ["_file", "_row", "person_id", "match_probability", "match_weight", "link_agreed"]]
    con.register("fz_scored", keep)
    try:
        con.execute(f"""
            INSERT INTO linked.fuzzy_{table}
            SELECT s._file, s._row, hp.household_id, s.person_id, hp.kin, s.match_probability, s.match_weight,
                   'fuzzy', s.link_agreed
            FROM fz_scored s JOIN linked.household_person hp USING (person_id)
            WHERE s.match_probability >= {settings['accept']}""")
        con.execute(f"""
            INSERT INTO linked.fuzzy_review
            SELECT '{table}', s._file, s._row, hp.household_id, s.person_id, hp.kin, s.match_probability,
                   s.match_weight, 'fuzzy', s.link_agreed, 'below accept threshold'
            FROM fz_scored s JOIN linked.household_person hp USING (person_id)
            WHERE s.match_probability < {settings['accept']}""")
    finally:
        con.unregister("fz_scored")
    counts["linked"] = con.execute(f"SELECT count(*) FROM linked.fuzzy_{table}").fetchone()[0]
    counts["review"] = con.execute("SELECT count(*) FROM linked.fuzzy_review WHERE record_table = ?",
                                   [table]).fetchone()[0]
    return counts


def main(argv: list[str] | None = None) -> None:
    """Train the model once on a loaded warehouse and save it (the night only loads it):

        python3 -m uv run python -m linkage.fuzzy --warehouse <loaded warehouse.duckdb> [--table cremation]

    The warehouse needs staging.hukou, staging.roster and the table, loaded and validated (for instance
    bench/linkage.py's prepared_warehouse.duckdb of a generated night). Training is read-only on it."""
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", default="cremation")
    parser.add_argument("--out", default=str(MODEL_PATH))
    parser.add_argument("--seed", type=int, default=42, help="seed of the random pairs that estimate u")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "train.duckdb"          # temp tables only, but never write to the given file
        shutil.copy(args.warehouse, copy)
        with duckdb.connect(str(copy)) as con:
            model = train_fuzzy_model(con, args.table, path=args.out, seed=args.seed)
    print(f"trained on {model['trained_on']['records']:,} {args.table} records against "
          f"{model['trained_on']['candidates']:,} candidates; saved to {args.out}")


if __name__ == "__main__":
    main()
