"""Property splits over several workbooks when a sheet would exceed Excel's row limit; scale-1 run (slow)."""
from __future__ import annotations

import datetime as dt

import pytest

import synthetic.render as render
from synthetic.generate import generate
from synthetic.inspect import current_date, files_of, load_links, read_file


def test_property_splits_at_the_sheet_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "XLSX_MAX_ROWS", 1000)
    as_of = dt.date(2024, 9, 30)
    generate(tmp_path / "lz", as_of, 0.01, 4)
    d = current_date(tmp_path / "lz", "property", as_of)
    files = files_of(tmp_path / "lz", "property", d)
    assert len(files) >= 2 and files[0] == "property_part1.xlsx"
    links = load_links(tmp_path / "lz.truth")
    for f in files:
        df = read_file(tmp_path / "lz" / "property" / d.isoformat() / f)
        assert 0 < len(df) <= 1000
        ln = links[(links["file"] == f)]
        assert set(ln["row"]) == set(range(1, len(df) + 1))


@pytest.mark.slow
def test_scale_one_is_jingmen_sized(tmp_path):
    """Sizes and truth at scale 1; its speed is measured by bench/night.py, not asserted here."""
    s = generate(tmp_path / "lz", dt.date(2024, 6, 15), 1.0, 1)
    rows = s["rows"]
    roster = [v for k, v in rows.items() if k.startswith("roster/2024-06-14")]
    assert roster == [444_646]
    hukou = sum(v for k, v in rows.items() if k.startswith("hukou/"))
    assert 2_800_000 < hukou < 3_000_000
    tax = sum(v for k, v in rows.items() if k.startswith("tax/"))
    assert 2_000_000 < tax < 3_000_000
    si = sum(v for k, v in rows.items() if "contributions" in k)
    assert 4_000_000 < si < 6_500_000
    assert all(v >= 250 for v in s["cases"].values())
    assert sorted(s["cases"]) == [f"R0{i}" for i in range(1, 10)]
    # look-alikes beside the true cases, about ten times as many
    assert all(s["lookalikes"][rule] >= 5 * n for rule, n in s["cases"].items())
