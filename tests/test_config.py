"""Configuration is validated on load: a wrong file is refused with its path and the reason."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crosscheck.settings import ConfigError, _load, PolicyConfig, config_dir, load_policy, load_sources


def test_shipped_config_is_valid():
    assert set(load_sources().sources) >= {"roster", "hukou", "cremation", "vehicle", "property", "business", "tax",
                                           "social_insurance", "housing_fund", "bank", "payroll"}
    assert sorted(load_policy().rules) == [f"R0{i}" for i in range(1, 10)]


def test_district_overrides_merge():
    policy = load_policy()
    assert policy.for_district("京山市").standards == {"城市低保": 500, "农村低保": 375, "特困供养": 626}
    assert policy.for_district("东宝区").standards["城市低保"] == 575
    assert policy.for_district("未知区").standards == policy.defaults.standards


def _write_policy(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((config_dir() / "policy.yaml").read_text(encoding="utf-8"))
    mutate(data)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["defaults"].pop("deceased_grace_days"), "deceased_grace_days"),
    (lambda d: d["defaults"].update(income_employment_cost_deduction=1.5), "income_employment_cost_deduction"),
    (lambda d: d["districts"].update({"东宝区": {"standardz": {}}}), "standardz"),
    (lambda d: d["rules"]["R01"].update(priority=7), "priority"),
], ids=["missing", "out-of-range", "unknown-override", "bad-priority"])
def test_bad_policy_refused(tmp_path, mutate, needle):
    directory = _write_policy(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        _load(PolicyConfig, "policy.yaml", directory)
    assert needle in str(err.value) and "policy.yaml" in str(err.value)
