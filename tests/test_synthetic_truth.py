"""Truth files: every rule has cases with about ten times as many look-alikes; links cover every
person-bearing row; the special deliveries (older, repeated, future, split) are there."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pandas as pd
import pytest

from synthetic.common import SOURCES
from synthetic.generate import generate
from synthetic.ids import is_valid_id
from synthetic.inspect import current_date, deliveries, files_of, load_links, read_file

AS_OF = dt.date(2024, 3, 3)
RULES = [f"R0{i}" for i in range(1, 10)]


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    base = tmp_path_factory.mktemp("truth")
    out = base / "lz"
    truth = base / "truth_here"
    summary = generate(out, AS_OF, 0.02, 5, truth_dir=truth)
    return out, truth, summary


def test_truth_files_exist(zone):
    _, truth, _ = zone
    for f in ("cases.csv", "lookalikes.csv", "links.parquet", "manifest.json"):
        assert (truth / f).exists(), f
    assert not list(truth.glob("*links*.csv"))


def test_every_rule_has_cases_and_lookalikes(zone):
    _, truth, summary = zone
    cases = pd.read_csv(truth / "cases.csv", dtype=str)
    look = pd.read_csv(truth / "lookalikes.csv", dtype=str)
    assert list(cases.columns) == ["household_id", "rule", "member_id", "detail"]
    assert list(look.columns) == ["household_id", "rule", "member_id", "kind"]
    for r in RULES:
        n = (cases["rule"] == r).sum()
        m = (look["rule"] == r).sum()
        assert n >= 15, r
        assert 5 * n <= m <= 15 * n, (r, n, m)
    assert cases["member_id"].map(is_valid_id).all()
    assert look["member_id"].map(is_valid_id).all()
    assert not cases.duplicated(["household_id", "rule"]).any()
    # a look-alike is never a case of the same rule
    both = cases.merge(look, on=["household_id", "rule"])
    assert both.empty
    assert summary["planted_missing_from_truth"] == 0


def test_lookalike_kinds_cover_the_brief(zone):
    _, truth, _ = zone
    look = pd.read_csv(truth / "lookalikes.csv", dtype=str)
    kinds = set(zip(look["rule"], look["kind"]))
    expected = {("R01", "death_in_grace"), ("R01", "namesake"), ("R01", "wrong_person_id"),
                ("R01", "future_delivery"), ("R02", "namesake"), ("R02", "deregistered"),
                ("R02", "transferred"), ("R02", "scrapped"), ("R02", "stolen"), ("R02", "forced_cancel"),
                ("R02", "exempt_plate"), ("R02", "org_owned"), ("R02", "registered_after_as_of"),
                ("R03", "single_home"), ("R03", "parking_space"), ("R03", "superseded"), ("R03", "cancelled"),
                ("R03", "co_owned_one_unit"), ("R04", "small_getihu"), ("R04", "small_coop"),
                ("R04", "supervisor_only"), ("R04", "revoked"), ("R04", "cancelled"), ("R04", "namesake"),
                ("R05", "surname_village_payroll"), ("R05", "namesake"), ("R06", "residents_scheme"),
                ("R06", "flexible_employment"), ("R06", "just_under_limit"), ("R06", "hf_sealed"),
                ("R06", "hf_stale"), ("R07", "just_under_limit"), ("R08", "namesake"), ("R09", "military"),
                ("R09", "move_in_grace")}
    assert expected <= kinds, expected - kinds


def _data_rows(path) -> int:
    if path.suffix == ".xlsx":
        return len(read_file(path))
    lines = path.read_bytes().count(b"\n")
    return lines if path.suffix == ".jsonl" else lines - 1


def test_links_cover_every_person_bearing_row(zone):
    out, truth, _ = zone
    links = load_links(truth)
    assert list(links.columns) == ["source", "table", "delivery_date", "file", "row", "owner_seq", "true_id",
                                   "defect"]
    tables = {"roster", "hukou", "cremation", "vehicle", "property_owner", "business_person", "tax",
              "si_contribution", "si_benefit", "housing_fund", "bank", "payroll"}
    assert set(links["table"]) == tables
    for s in SOURCES:
        for d in deliveries(out, s):
            for f in files_of(out, s, d):
                if f.startswith("entities"):
                    continue
                n = _data_rows(out / s / d.isoformat() / f)
                ln = links[(links["source"] == s) & (links["delivery_date"] == d.isoformat()) & (links["file"] == f)]
                assert set(ln["row"]) == set(range(1, n + 1)), (s, d, f)
                people = ln[ln["true_id"] != ""]
                assert people["true_id"].map(is_valid_id).all()
    # property co-owners: one link per owner, numbered within the cell
    prop = links[links["table"] == "property_owner"]
    assert prop["owner_seq"].max() >= 2
    assert not prop.duplicated(["delivery_date", "file", "row", "owner_seq"]).any()


def test_defects_are_recorded(zone):
    _, truth, _ = zone
    links = load_links(truth)
    kinds = set()
    for d in links["defect"].unique():
        kinds.update(x for x in d.split("+") if x)
    for k in ("lower_x", "fullwidth", "space", "legacy15", "typo", "transposition", "wrong_person_id",
              "name_traditional", "name_homophone", "name_rare_qmark", "duplicate_row", "excel_number"):
        assert k in kinds, k
    share = (links["defect"] != "").mean()
    assert 0.003 < share < 0.08, share
    typo = links["defect"].str.contains("typo|transposition").mean()
    assert 0.0005 < typo < 0.01, typo


def test_special_deliveries(zone):
    out, truth, _ = zone
    manifest = json.loads((truth / "manifest.json").read_text(encoding="utf-8"))
    # a delivery after the as-of date, which a run as of it must ignore
    assert any(d > AS_OF for d in deliveries(out, "cremation"))
    assert current_date(out, "cremation", AS_OF) < max(deliveries(out, "cremation"))
    # the same bytes delivered on two dates
    pay = [out / "payroll" / d.isoformat() / "payroll.csv" for d in deliveries(out, "payroll")]
    assert len(pay) == 2
    assert hashlib.sha256(pay[0].read_bytes()).digest() == hashlib.sha256(pay[1].read_bytes()).digest()
    # older deliveries for a few sources
    for s in ("roster", "vehicle", "bank"):
        assert len(deliveries(out, s)) >= 2, s
    # a big delivery split over parts of one layout
    tax = files_of(out, "tax", current_date(out, "tax", AS_OF))
    assert tax == ["part1.csv", "part2.csv"]
    si = files_of(out, "social_insurance", current_date(out, "social_insurance", AS_OF))
    assert "contributions_part1.csv" in si and "contributions_part2.csv" in si
    # MANIFEST.csv where written is right
    for s in ("payroll", "business"):
        d = current_date(out, s, AS_OF)
        m = pd.read_csv(out / s / d.isoformat() / "MANIFEST.csv", dtype=str)
        for _, r in m.iterrows():
            data = (out / s / d.isoformat() / r["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == r["sha256"]
            assert data.count(b"\n") - 1 == int(r["rows"])
    assert manifest["deliveries"]["cremation"] == current_date(out, "cremation", AS_OF).isoformat()


def test_roster_counts_scale(zone):
    out, _, _ = zone
    r = read_file(out / "roster" / current_date(out, "roster", AS_OF).isoformat() / "roster.csv")
    counts = r["救助类别"].value_counts()
    assert counts["城市低保"] == round(183_028 * 0.02)
    assert counts["农村低保"] == round(218_580 * 0.02)
    assert counts["特困供养"] == round(43_038 * 0.02)


def test_identical_rows_are_only_the_planted_duplicates(zone):
    """A delivery cannot tell two identical rows from a duplicated one, so the generator must not write
    identical rows it means as separate records (two equal casual payments in one month are one declaration);
    every copy of an identical row is labelled duplicate_row in the truth."""
    out, truth, _ = zone
    links = load_links(truth)
    for source in ("tax", "social_insurance", "cremation", "vehicle", "housing_fund"):
        d = current_date(out, source, AS_OF).isoformat()
        frames = []
        for f in files_of(out, source, current_date(out, source, AS_OF)):
            if f.startswith("benefits") or not f.endswith(".csv") or f == "MANIFEST.csv":
                continue
            df = read_file(out / source / d / f)
            frames.append(df.assign(file=f, row=range(1, len(df) + 1)))
        rows = pd.concat(frames, ignore_index=True)
        later = rows[rows.duplicated([c for c in rows.columns if c not in ("file", "row")], keep="first")]
        labels = links[(links["source"] == source) & (links["delivery_date"] == d)]
        merged = later[["file", "row"]].merge(labels, on=["file", "row"], how="left")
        assert merged["defect"].fillna("").str.contains("duplicate_row").all(), \
            (source, merged[~merged["defect"].fillna("").str.contains("duplicate_row")].head())
