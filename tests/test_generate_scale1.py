"""Scale 1 (Jingmen-sized) generates, with true cases and about ten times as many look-alikes per rule."""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from synthetic.generate import generate


@pytest.mark.slow
def test_scale_one_truth_covers_every_rule(tmp_path):
    landing = tmp_path / "landing"
    generate(landing, date(2026, 11, 20), 1.0, 1, None)
    truth = pd.read_csv(tmp_path / "landing.truth" / "cases.csv", dtype=str)
    lookalikes = pd.read_csv(tmp_path / "landing.truth" / "lookalikes.csv", dtype=str)
    roster = pd.concat(pd.read_csv(p, dtype=str, encoding="utf-8-sig", usecols=["救助类别"])
                       for p in sorted((landing / "roster").glob("*/*.csv"))[-1:])
    assert len(roster) == 444_646
    assert roster["救助类别"].value_counts().to_dict() == {"农村低保": 218_580, "城市低保": 183_028, "特困供养": 43_038}
    for rule in [f"R0{i}" for i in range(1, 10)]:
        real = truth[truth["rule"] == rule]
        alike = lookalikes[lookalikes["rule"] == rule]
        assert len(real) > 0, rule
        assert len(alike) >= 5 * len(real.drop_duplicates(["household_id"])) * 0.5, rule
