"""Great Expectations engine (checks/gx_engine.py) and offline Data Docs (checks/datadocs.py).

Small literal staging tables with a known number of bad codes, out-of-range values, duplicate keys and a
missing column; every kind of expectation gives exactly the expected counts. The file context keeps each
night's results; neither they nor the Data Docs hold an ID number or a name, and the docs load nothing
from the network. Importing Great Expectations takes 10–15 s once per process; the rest of the file ~6 s.
"""
from __future__ import annotations

import json
import re
import stat
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from checks.expectations import PERSONAL_ID_WHERE, Expectation, Observation, q
from crosscheck.idnum import check_digit
from crosscheck.warehouse import connect


def pid(n: int) -> str:
    body = f"42080219850{n % 10}0{n % 10}12{n % 10}"[:17]
    return body + check_digit(body)


NAMES = ["张伟", "王芳", "李娜", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰"]
ORG_CODE = "91420800MA4A1B2C3X"        # an organisation code in an ID column: not a personal ID
# id_number, name, plate_type, reg_date, amount, household, id_status
ROWS = [
    (pid(1), NAMES[0], "02", date(2020, 1, 5), 100.0, "H1", "valid"),
    (pid(2), NAMES[1], "2", date(2020, 2, 1), 200.0, "H1", "valid"),          # "2" is code 02 once padded
    (pid(3), NAMES[2], " 01", date(2020, 3, 1), 300.0, "H2", "valid"),        # " 01" is 01 once trimmed
    (pid(3), NAMES[3], "99", date(2020, 4, 1), 5000.0, "H2", "valid"),        # same key as above; bad code; too much
    (pid(5), NAMES[4], "X9", date(1899, 1, 1), -1.0, "H3", "bad_check"),      # bad code; too early; negative
    (pid(6), NAMES[5], None, date(2030, 1, 1), None, "H4", "valid"),          # no code; too late; no amount
    (ORG_CODE, NAMES[6], "02", None, 50.0, "H5", "malformed"),
    (pid(8), NAMES[7], "01", date(2021, 6, 30), 4000.0, "H6", "upgraded15"),  # 4000 is the (inclusive) maximum
    (None, NAMES[8], "02", date(2021, 7, 1), 10.0, "H7", "empty"),
    (pid(10), NAMES[9], "02", date(2024, 4, 30), 0.0, "H8", "valid"),
]
DELIVERY = date(2024, 4, 30)
NIGHT1, NIGHT2 = date(2024, 5, 1), date(2024, 5, 2)


def make_staging(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute("""CREATE OR REPLACE TABLE staging.people (id_number VARCHAR, name VARCHAR, plate_type VARCHAR,
                   reg_date DATE, amount DOUBLE, household VARCHAR, id_status VARCHAR, _delivery_date DATE)""")
    con.executemany("INSERT INTO staging.people VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(*r, DELIVERY) for r in ROWS])
    con.execute("CREATE OR REPLACE TABLE staging.nothing (code VARCHAR, d DATE, k VARCHAR)")


E = Expectation
CODES = ("01", "02")
PAD = "lpad(trim(plate_type), 2, '0')"
PERSONAL = PERSONAL_ID_WHERE.format(status=q("id_status"), col=q("id_number"))

# (expectation, expected observation): the counts worked out by hand from ROWS
CASES: list[tuple[Expectation, Observation]] = [
    (E("required_columns_present", "people", "column_exists", column="plate_type", label="HPZL"),
     Observation(True, None, None, None)),
    (E("required_columns_present", "people", "column_exists", column="engine_no", label="FDJH"),
     Observation(False, None, None, "engine_no")),
    # 9 codes (one NULL); padded, "99" and "X9" are not codes: 7/9 = 78 %
    (E("codes_in_table", "people", "values_in_set", column="plate_type__code", derive=PAD, value_set=CODES,
       mostly=0.9, quarantine=True, label="HPZL", reason="「HPZL」的值不在代码表「plate_type」中"),
     Observation(False, 9, 2, None)),
    (E("codes_in_table", "people", "values_in_set", column="plate_type__code", derive=PAD, value_set=CODES,
       mostly=0.75, label="HPZL"),
     Observation(True, 9, 2, None)),
    # the same column not padded: "2" and " 01" fail as well
    (E("codes_in_table", "people", "values_in_set", column="plate_type", value_set=CODES, mostly=0.75, label="HPZL"),
     Observation(False, 9, 4, None)),
    # dates: 9 present, 1899 and 2030 out of range
    (E("values_in_range", "people", "values_between", column="reg_date", min_value=date(2000, 1, 1),
       max_value=date(2024, 5, 1), label="DJRQ"),
     Observation(False, 9, 2, None)),
    (E("values_in_range", "people", "values_between", column="reg_date", min_value=date(2000, 1, 1),
       max_value=date(2024, 5, 1), mostly=0.75, label="DJRQ"),
     Observation(True, 9, 2, None)),
    # amounts: 9 present, 5000 and -1 out of 0..4000 (bounds inclusive)
    (E("values_in_range", "people", "values_between", column="amount", min_value=0, max_value=4000, mostly=0.9,
       label="JE"),
     Observation(False, 9, 2, None)),
    # (household, id_number): 9 rows with the whole key, the two H2 rows share one
    (E("duplicate_keys", "people", "compound_unique", columns=("household", "id_number"), mostly=0.9,
       critical=False, label="HH、SFZH"),
     Observation(False, 9, 2, None)),
    (E("duplicate_keys", "people", "compound_unique", columns=("household", "id_number"), mostly=0.7,
       critical=False, label="HH、SFZH"),
     Observation(True, 9, 2, None)),
    (E("rows_staged", "people", "row_count_between", min_value=1), Observation(True, 10, None, 10)),
    (E("row_count_vs_previous", "people", "row_count_between", min_value=12, max_value=40, label="20"),
     Observation(False, 10, None, 10)),
    (E("freshness", "people", "max_between", column="_delivery_date", min_value=date(2024, 4, 1),
       max_value=NIGHT1, label="交付日期"),
     Observation(True, None, None, DELIVERY)),
    (E("freshness", "people", "max_between", column="_delivery_date", min_value=date(2024, 5, 1),
       max_value=date(2024, 5, 31), label="交付日期"),
     Observation(False, None, None, DELIVERY)),
    # personal IDs only (the macro-based WHERE of the real builder): the empty cell and the organisation code
    # are left out, 8 remain, one has a bad check digit
    (E("valid_id_share", "people", "values_in_set", column="id_status", value_set=("valid", "upgraded15"),
       mostly=0.95, where=PERSONAL, label="SFZH"),
     Observation(False, 8, 1, None)),
    (E("valid_id_share", "people", "values_in_set", column="id_status", value_set=("valid", "upgraded15"),
       mostly=0.8, where=PERSONAL, label="SFZH"),
     Observation(True, 8, 1, None)),
    # a WHERE together with a derived column in the same group
    (E("codes_in_table", "people", "values_in_set", column="plate_type__code", derive=PAD, value_set=CODES,
       where=PERSONAL, label="HPZL"),
     Observation(False, 7, 2, None)),
    # an empty table: nothing to check passes, nothing staged and no maximum fail
    (E("codes_in_table", "nothing", "values_in_set", column="code", value_set=CODES, label="C"),
     Observation(True, 0, 0, None)),
    (E("duplicate_keys", "nothing", "compound_unique", columns=("k",), critical=False, label="K"),
     Observation(True, 0, 0, None)),
    (E("rows_staged", "nothing", "row_count_between", min_value=1), Observation(False, 0, None, 0)),
    (E("freshness", "nothing", "max_between", column="d", min_value=date(2024, 1, 1), max_value=NIGHT1),
     Observation(False, None, None, None)),
    # a staging table that does not exist at all
    (E("required_columns_present", "absent", "column_exists", column="x", label="X"), Observation(False, None, None, "x")),
    (E("rows_staged", "absent", "row_count_between", min_value=1), Observation(False, 0, 0, None)),
]
EXPECTATIONS = [e for e, _ in CASES]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = connect(tmp_path_factory.mktemp("wh") / "w.duckdb")      # the pipeline's own connection, with macros
    make_staging(c)
    yield c
    c.close()


@pytest.fixture(scope="module")
def nights(con, tmp_path_factory):
    """Two nights validated into one file context (the first one twice: a re-run replaces its results)."""
    from checks.gx_engine import GxCheckEngine

    root = tmp_path_factory.mktemp("state") / "gx"
    engine = GxCheckEngine(root)
    first = engine.evaluate(con, EXPECTATIONS, "vehicles", NIGHT1)
    again = engine.evaluate(con, EXPECTATIONS, "vehicles", NIGHT1)
    second = engine.evaluate(con, EXPECTATIONS, "vehicles", NIGHT2)
    return {"root": root, "engine": engine, "first": first, "again": again, "second": second}


def test_every_kind_gives_the_expected_counts(nights):
    for (exp, want), got in zip(CASES, nights["first"]):
        assert got == want, f"{exp.check} {exp.table} {exp.column or exp.columns}: {got} != {want}"
    assert nights["again"] == nights["first"] == nights["second"]


def test_derive_and_where_are_honoured(con):
    from checks.gx_engine import evaluate_with_gx

    def case(check, column, where=None):
        return next(e for e in EXPECTATIONS if (e.check, e.column, e.where) == (check, column, where)
                    and e.mostly in (0.75, 0.8, 1.0))

    padded = case("codes_in_table", "plate_type__code")
    raw = case("codes_in_table", "plate_type")
    personal = case("valid_id_share", "id_status", PERSONAL)
    personal_padded = case("codes_in_table", "plate_type__code", PERSONAL)
    a, b, c, d = evaluate_with_gx(con, [padded, raw, personal, personal_padded], source="vehicles", run_date=NIGHT1)
    assert (a.unexpected_count, b.unexpected_count) == (2, 4)      # lpad(trim()) makes "2" and " 01" codes
    assert (a.element_count, b.element_count) == (9, 9)
    assert c.element_count == 8                                    # 10 rows - the empty cell - the organisation code
    assert d.element_count == 7                                    # those 8 rows, one without a plate code


def test_one_suite_per_table_and_one_per_where(nights):
    from checks.gx_engine import open_context

    context = open_context(nights["root"])
    names = sorted(s.name for s in context.suites.all())
    assert "vehicles.people" in names and "vehicles.nothing" in names
    assert "vehicles.absent" not in names                        # no staging table: no GX asset either
    where_suites = [n for n in names if n.startswith("vehicles.people.")]
    assert where_suites == ["vehicles.people.valid_id_share.id_status"]   # both PERSONAL-ID expectations
    suite = context.suites.get("vehicles.people")
    checks = {(e.meta["check"], e.meta.get("label")) for e in suite.expectations}
    assert ("codes_in_table", "HPZL") in checks
    for e in suite.expectations:
        assert e.description and e.notes                        # the steward's sentence and the details
    coded = next(e for e in suite.expectations if e.meta["check"] == "codes_in_table" and e.meta.get("quarantine"))
    assert "代码表「plate_type」" in coded.description


def test_results_kept_per_night_owner_only(nights):
    root: Path = nights["root"]
    results = sorted((root / "uncommitted" / "validations").rglob("*.json"))
    runs = {p.relative_to(root).parts for p in results}
    night_dirs = {part for parts in runs for part in parts if re.fullmatch(r"\d{4}-\d{2}-\d{2}", part)}
    assert night_dirs == {"2024-05-01", "2024-05-02"}
    # 3 suites x 2 nights: the re-run of the first night replaced its results instead of adding to them
    assert len(results) == 6
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def _id_like(text: str) -> list[str]:
    return re.findall(r"(?<![0-9A-Za-z.])\d{17}[\dXx](?![0-9A-Za-z.])|(?<![0-9A-Za-z.])\d{15}(?![0-9A-Za-z.])", text)


def _assert_no_personal_data(path: Path, text: str) -> None:
    assert not _id_like(text), f"{path}: ID-like {_id_like(text)[:3]}"
    for value in [r[0] for r in ROWS if r[0]] + NAMES:
        assert value not in text, f"{path} holds {value!r}"


def test_stored_results_hold_no_id_or_name(nights):
    files = list(nights["root"].rglob("*.json")) + list(nights["root"].rglob("*.yml"))
    assert files
    for path in files:
        raw = path.read_text(encoding="utf-8")
        _assert_no_personal_data(path, raw)
        if path.suffix == ".json":
            _assert_no_personal_data(path, json.dumps(json.loads(raw), ensure_ascii=False))
    one = json.loads(next((nights["root"] / "uncommitted" / "validations").rglob("*.json")).read_text())
    for r in one["results"]:
        assert not r["result"].get("partial_unexpected_list")     # no sample of failing values


@pytest.fixture(scope="module")
def docs(nights, tmp_path_factory):
    from checks.datadocs import build_data_docs

    out = tmp_path_factory.mktemp("out")
    start = time.perf_counter()
    index = build_data_docs(nights["root"], out, strict=True)
    return {"index": index, "out": out, "seconds": time.perf_counter() - start}


_REMOTE_LOAD = [
    re.compile(r"<(?!a[\s>])[a-z]+\b[^>]*\b(?:src|href|srcset|poster|data)\s*=\s*[\"']?\s*(?:https?:)?//", re.I),
    re.compile(r"url\(\s*[\"']?\s*(?:https?:)?//", re.I),
    re.compile(r"@import\s+(?:url\()?\s*[\"']?\s*(?:https?:)?//", re.I),
]


def test_data_docs_load_nothing_remote(docs):
    site = docs["index"].parent
    assert docs["index"].name == "index.html" and docs["index"].is_file()
    pages = list(site.rglob("*.html")) + list(site.rglob("*.css"))
    assert len([p for p in pages if p.suffix == ".html"]) >= 5
    for path in pages:
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in _REMOTE_LOAD:
            hit = pattern.search(text)
            assert hit is None, f"{path.relative_to(site)} loads {text[hit.start():hit.end() + 80]!r}"
    from checks.datadocs import external_references

    assert external_references(site) == []


def test_data_docs_local_references_resolve(docs):
    """Every script, stylesheet, image and font a page or stylesheet names exists in the site, the fonts
    Font Awesome's CSS asks for included."""
    site = docs["index"].parent
    ref = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*\"([^\"#?]+)", re.I)
    css_url = re.compile(r"url\(\s*['\"]?(?!data:)([^'\")?#]+)", re.I)
    seen = set()
    for page in site.rglob("*.html"):
        for target in ref.findall(page.read_text(encoding="utf-8")):
            assert (page.parent / target).resolve().is_file(), f"{page.relative_to(site)}: {target} missing"
            seen.add((page.parent / target).resolve())
    for css in site.rglob("*.css"):
        for target in css_url.findall(css.read_text(encoding="utf-8", errors="replace")):
            assert (css.parent / target).resolve().is_file(), f"{css.relative_to(site)}: {target} missing"
    names = {p.name for p in seen}
    assert {"bootstrap.min.css", "jquery.min.js", "all.min.css", "vega.min.js", "vega-embed.min.js"} <= names
    assert (site / "static/vendor/fontawesome-free-6.6.0/webfonts/fa-solid-900.woff2").is_file()


def test_data_docs_owner_only_and_no_personal_data(docs):
    site = docs["index"].parent
    for path in [site, *site.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"
    for page in site.rglob("*.html"):
        _assert_no_personal_data(page, page.read_text(encoding="utf-8"))
    index = docs["index"].read_text(encoding="utf-8")
    assert "2024-05-01" in index and "2024-05-02" in index            # one run per night
    assert "newsletter" not in index and "dataContextId" not in index


def test_data_docs_rebuild_replaces_the_site(docs, nights):
    from checks.datadocs import build_data_docs

    stale = docs["index"].parent / "stale.html"
    stale.write_text("old", encoding="utf-8")
    index = build_data_docs(nights["root"], docs["out"])
    assert index == docs["index"] and not stale.exists()
    assert sorted(p.name for p in docs["out"].iterdir()) == ["data_docs"]      # no temp folders left


def test_unknown_remote_resource_is_refused_or_blanked(tmp_path):
    """A page loading something no vendored asset covers (a later GX template): strict builds stop, others
    blank the reference; plain links stay."""
    from checks.datadocs import external_references, localise

    page = ('<html><head><script src="https://cdn.example.org/new-lib.js"></script>'
            '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/vega@5">'
            '<style>.x { background: url("//cdn.example.org/bg.png") }</style></head>'
            '<body><a href="https://greatexpectations.io">GX</a><img src="static/images/logo-long.png"></body></html>')
    for strict in (True, False):
        site = tmp_path / f"site{strict}"
        site.mkdir()
        (site / "index.html").write_text(page, encoding="utf-8")
        if strict:
            with pytest.raises(RuntimeError, match="new-lib.js"):
                localise(site, strict=True)
            continue
        localise(site)
        text = (site / "index.html").read_text(encoding="utf-8")
        assert external_references(site) == []
        assert 'src="about:blank"' in text and "static/vendor/vega-5.33.1/vega.min.js" in text
        assert 'href="https://greatexpectations.io"' in text


def test_duckdb_fixes_are_in_place(con, nights):
    """The spike's failure mode: on DuckDB, GX silently returns empty results. Our datasource uses the
    transaction-free dialect and DuckDB is a persisted-connection dialect; the counts above are real."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    from checks.gx_engine import DIALECT, duckdb_persisted, open_context

    assert duckdb_persisted() and "duckdb" in see._PERSISTED_CONNECTION_DIALECTS
    ds = open_context(nights["root"]).data_sources.get("warehouse")
    assert str(ds.connection_string).startswith(DIALECT + ":///")
    assert all(o.element_count for o, (e, _) in zip(nights["first"], CASES)
               if e.kind in ("values_in_set", "values_between") and e.table == "people")


def test_stock_duckdb_engine_shows_the_failure_mode(con, monkeypatch):
    """Without the fixes (stock duckdb-engine, connection pool) GX answers nothing: this is why they exist.
    Skipped if a later GX / duckdb-engine no longer loses the results."""
    import duckdb_engine
    import great_expectations as gx
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    from checks.gx_engine import gx_module, open_context

    gx_module()
    monkeypatch.setattr(see, "_PERSISTED_CONNECTION_DIALECTS",
                        tuple(d for d in see._PERSISTED_CONNECTION_DIALECTS if d != "duckdb"))
    context = gx.get_context(mode="ephemeral")
    try:
        ds = context.data_sources.add_sql("stock", connection_string="duckdb:///:memory:",
                                          kwargs={"creator": lambda: duckdb_engine.ConnectionWrapper(con.cursor())})
        asset = ds.add_query_asset("people", query="SELECT * FROM staging.people")
        batch = asset.add_batch_definition_whole_table("all")
        suite = gx.ExpectationSuite(name="stock", expectations=[gx.expectations.ExpectTableRowCountToBeBetween(min_value=1)])
        result = batch.get_batch().validate(suite)
    finally:
        gx.data_context.set_context(open_context(None))
    observed = result.results[0].result.get("observed_value")
    if observed == len(ROWS):
        pytest.skip("stock GX + duckdb-engine no longer lose results; the dialect fix may be dropped")
    assert observed is None and not result.results[0].success


def test_each_call_sees_the_latest_data_and_a_new_connection(tmp_path):
    """No snapshot is held between calls (rows added later are counted), and handing over another pipeline
    connection points GX at it."""
    from checks.gx_engine import GxCheckEngine

    engine = GxCheckEngine(tmp_path / "gx")
    rows = E("rows_staged", "people", "row_count_between", min_value=1)
    one = duckdb.connect()
    make_staging(one)
    assert engine.evaluate(one, [rows], "vehicles", NIGHT1)[0].observed == 10
    one.execute("INSERT INTO staging.people SELECT * FROM staging.people")
    assert engine.evaluate(one, [rows], "vehicles", NIGHT1)[0].observed == 20
    two = duckdb.connect()
    make_staging(two)
    two.execute("DELETE FROM staging.people WHERE household = 'H1'")
    assert engine.evaluate(two, [rows], "vehicles", NIGHT1)[0].observed == 8
    one.close()
    two.close()
    assert engine.name == "great_expectations"
    assert engine.context is engine.context                           # one context per root and process
    assert {"gx_import", "context", "prepare", "validate"} <= set(engine.timings)


def test_same_counts_as_the_sql_engine(con):
    from checks import suite

    if not hasattr(getattr(suite, "SqlCheckEngine", None), "evaluate"):
        pytest.skip("SqlCheckEngine has no evaluate() yet")
    from checks.gx_engine import evaluate_with_gx

    cases = [e for e in EXPECTATIONS if e.table != "absent"]
    sql = suite.SqlCheckEngine().evaluate(con, cases, source="vehicles", run_date=NIGHT1)
    gx = evaluate_with_gx(con, cases, source="vehicles", run_date=NIGHT1)
    for exp, a, b in zip(cases, sql, gx):
        assert (a.passed, a.element_count, a.unexpected_count) == (b.passed, b.element_count, b.unexpected_count), exp
        if exp.kind in ("row_count_between", "max_between"):
            assert a.observed == b.observed, exp


@pytest.mark.slow
def test_timing_one_million_rows(tmp_path):
    """Import, context and ~10 expectations on a 1M-row staging table (figures printed, none asserted
    beyond a generous bound)."""
    from checks import gx_engine

    start = time.perf_counter()
    gx_engine.gx_module()
    imported = time.perf_counter() - start
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("""CREATE TABLE staging.big AS SELECT i AS rid, lpad((i % 99991)::VARCHAR, 18, '0') AS id_number,
        CASE WHEN i % 50 = 0 THEN 'malformed' ELSE 'valid' END AS id_status, (i % 30)::VARCHAR AS plate_type,
        DATE '2020-01-01' + (i % 2000)::INT AS start_date, (i % 5000)::DOUBLE AS amount, 'n' || (i % 1000) AS name,
        (i % 200000)::VARCHAR AS household, DATE '2024-04-30' AS _delivery_date FROM range(1000000) r(i)""")
    exps = [
        E("freshness", "big", "max_between", column="_delivery_date", min_value=date(2024, 4, 1), max_value=NIGHT1),
        E("required_columns_present", "big", "column_exists", column="id_number", label="SFZH"),
        E("required_columns_present", "big", "column_exists", column="plate_type", label="HPZL"),
        E("rows_staged", "big", "row_count_between", min_value=1),
        E("row_count_vs_previous", "big", "row_count_between", min_value=500_000, max_value=2_000_000, label="1000000"),
        E("valid_id_share", "big", "values_in_set", column="id_status", value_set=("valid", "upgraded15"),
          mostly=0.9, where="id_status <> 'empty'", label="SFZH"),
        E("codes_in_table", "big", "values_in_set", column="plate_type__code", derive=PAD,
          value_set=tuple(f"{i:02d}" for i in range(25)), mostly=0.95, label="HPZL"),
        E("values_in_range", "big", "values_between", column="start_date", min_value=date(2000, 1, 1),
          max_value=date(2024, 5, 1), mostly=0.95, label="QSRQ"),
        E("values_in_range", "big", "values_between", column="amount", min_value=0, max_value=4000, mostly=0.95,
          label="JE"),
        E("duplicate_keys", "big", "compound_unique", columns=("household", "id_number"), mostly=0.9,
          critical=False, label="HH、SFZH"),
    ]
    engine = gx_engine.GxCheckEngine(tmp_path / "gx")
    start = time.perf_counter()
    engine.context
    context = time.perf_counter() - start
    calls = []
    for night in (NIGHT1, NIGHT2):
        start = time.perf_counter()
        obs = engine.evaluate(con, exps, "bench", night)
        calls.append(time.perf_counter() - start)
    assert obs[3].observed == 1_000_000 and obs[6].unexpected_count == 166_665
    print(f"\nGX import {imported:.1f} s (first import in this process: {gx_engine.TIMINGS['gx_import']:.1f} s); "
          f"context {context:.2f} s; 10 expectations on 1M rows: first {calls[0]:.2f} s, next {calls[1]:.2f} s "
          f"(validate {engine.timings['validate']:.2f} s)")
    assert calls[1] < 30
