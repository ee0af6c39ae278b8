"""A city generated in shards (how scale 10 fits in memory): every shard writes its own part of every
delivery, the identifiers the shards draw by themselves never coincide, each delivery keeps one manifest
that covers every part, the truth files describe the whole city, and a night over it finds every case."""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthetic.generate import generate, shards_for

AS_OF = date(2026, 11, 20)
PART = re.compile(r"^(?P<stem>.+)-(?P<k>\d\d)of(?P<n>\d\d)\.(?P<ext>csv|xlsx|jsonl)$")


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    landing = tmp_path_factory.mktemp("shards") / "landing"
    summary = generate(landing, AS_OF, 0.04, 5, shards=2, jobs=2)
    return landing, Path(str(landing) + ".truth"), summary


def _read(path: Path) -> pd.DataFrame:
    """A delivered part as text, whatever its encoding (the generator writes GBK, UTF-8 and UTF-8 with BOM)."""
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype=str, engine="calamine")
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=str)
    data = path.read_bytes()
    for enc in ("utf-8-sig", "gbk"):
        try:
            return pd.read_csv(io.StringIO(data.decode(enc)), dtype=str, keep_default_na=False)
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"{path}: neither UTF-8 nor GBK")


def _values_by_shard(landing: Path, source: str, column: str) -> dict[str, set[str]]:
    folder = sorted((landing / source).iterdir())[-1]          # the current delivery
    out: dict[str, set[str]] = defaultdict(set)
    for f in folder.iterdir():
        m = PART.match(f.name)
        if m and column in (df := _read(f)).columns:
            out[m["k"]] |= set(df[column].dropna()) - {""}
    return out


def test_scale_decides_the_shards():
    assert [shards_for(s) for s in (0.01, 0.1, 1, 1.0000001, 2, 10)] == [1, 1, 1, 1, 2, 10]


def test_every_delivery_is_split_into_one_part_per_shard(sharded):
    landing, _, summary = sharded
    assert summary["shards"] == 2
    for folder in (p for src in landing.iterdir() if src.is_dir() and not src.name.startswith(".")
                   for p in src.iterdir()):
        stems = defaultdict(set)
        for f in folder.iterdir():
            if f.name == "MANIFEST.csv":
                continue
            m = PART.match(f.name)
            assert m, f"{f}: not a shard's part"
            assert m["n"] == "02"
            stems[m["stem"]].add(m["k"])
        assert stems and all(ks == {"01", "02"} for ks in stems.values()), (folder, dict(stems))
    assert not list(landing.glob(".tmp*")), "a shard left its scratch folder behind"


@pytest.mark.parametrize("source, column", [
    ("hukou", "户号"), ("roster", "家庭编号"), ("business", "统一社会信用代码"), ("vehicle", "HPHM"),
    ("property", "不动产单元号"),
])
def test_identifiers_drawn_by_each_shard_never_coincide(sharded, source, column):
    by_shard = _values_by_shard(sharded[0], source, column)
    assert set(by_shard) == {"01", "02"} and all(by_shard.values())
    assert not by_shard["01"] & by_shard["02"], f"{source}.{column}: the same value in two shards"


def test_people_of_different_shards_have_different_ids(sharded):
    _, truth, _ = sharded
    links = pq.read_table(truth / "links.parquet", columns=["table", "file", "true_id"]).to_pandas()
    hukou = links[(links["table"] == "hukou") & (links["true_id"] != "")]
    shard = hukou["file"].astype(str).str.extract(PART)["k"]
    ids = hukou.groupby(shard)["true_id"].agg(set)
    assert len(ids) == 2 and ids.map(len).min() > 1000
    assert not ids.iloc[0] & ids.iloc[1]


def test_one_manifest_per_delivery_covers_every_part(sharded):
    landing, _, _ = sharded
    manifests = sorted(landing.glob("*/*/MANIFEST.csv"))
    assert {m.parent.parent.name for m in manifests} == {"business", "payroll"}
    for m in manifests:
        listed = pd.read_csv(m, dtype={"file": str, "rows": int, "sha256": str})
        parts = sorted(f.name for f in m.parent.iterdir() if f.name != "MANIFEST.csv")
        assert sorted(listed["file"]) == parts
        for f, rows, sha in listed.itertuples(index=False):
            data = (m.parent / f).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha and data.count(b"\n") - 1 == rows


def test_truth_files_describe_the_whole_city(sharded):
    landing, truth, summary = sharded
    manifest = json.loads((truth / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["shards"] == 2 and manifest["scale"] == 0.04
    cases = pd.read_csv(truth / "cases.csv", dtype=str)
    assert cases["household_id"].nunique() > 20
    assert cases.groupby("rule").size().to_dict() == {r: n for r, n in manifest["counts"]["cases"].items() if n}
    assert manifest["counts"]["cases"] == summary["cases"]
    links = pq.ParquetFile(truth / "links.parquet")
    assert links.metadata.num_rows == manifest["counts"]["links"]
    delivered = {str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file() and p.name != "MANIFEST.csv"}
    assert set(manifest["counts"]["rows"]) == delivered
    assert not (truth / "shards").exists()


@pytest.mark.slow
def test_a_night_over_a_sharded_city_finds_every_case(sharded, tmp_path):
    from crosscheck.cli import run_night
    from crosscheck.score import score

    landing, truth, _ = sharded
    run_night(landing, AS_OF, tmp_path / "out", tmp_path / "state")
    result = score(tmp_path / "out" / "cases.csv", truth).set_index("rule")
    assert result.loc["all", "precision"] == 1.0
    assert result.loc["all", "recall"] >= 0.99, result


def test_a_shard_numbers_ids_in_its_own_part_even_where_one_day_is_crowded():
    """Shard k of 10 keeps to its 50 sequence numbers per sex; a day with more people born in one county
    than that moves the surplus to another prefecture, and every ID stays unique."""
    import numpy as np

    from synthetic.ids import make_bodies

    rng = np.random.default_rng(1)
    n = 200_000
    area = np.where(rng.random(n) < 0.5, 420881, 420802)
    birth = 19_000_000 + rng.integers(0, 10_000, n)
    male = rng.random(n) < 0.5
    area[:120], birth[:120], male[:120] = 420881, 19990928, True          # 120 men on one day in 钟祥
    for k in (0, 9):
        body = make_bodies(area, birth, male, np.random.default_rng(k), seq_range=(50 * k, 50 * k + 50))
        seq = body % 1000
        assert len(set(body.tolist())) == n
        assert ((seq // 2 >= 50 * k) & (seq // 2 < 50 * k + 50)).all() and ((seq % 2 == 1) == male).all()
        assert ((body // 1000) % 10**8 == birth).all()
        moved = body // 10**11 != area
        assert moved[:120].sum() == 70 and not moved[120:].any()
