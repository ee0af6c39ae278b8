"""Shared context of one generation run: dates, configuration, random streams, helpers."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent

SOURCES = ["roster", "hukou", "cremation", "vehicle", "property", "business", "tax",
           "social_insurance", "housing_fund", "bank", "payroll"]


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def policy_config(path: Path | None = None) -> dict:
    return load_yaml(path or PROJECT / "config" / "policy.yaml")


def sources_config(path: Path | None = None) -> dict:
    return load_yaml(path or PROJECT / "config" / "sources.yaml")


class Policy:
    """The figures of config/policy.yaml (defaults, overridden per district)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.defaults = cfg["defaults"]
        self.districts = cfg.get("districts") or {}

    def get(self, key: str, district: str | None = None):
        if district is not None:
            over = self.districts.get(district) or {}
            if key in over:
                val = over[key]
                if isinstance(val, dict) and isinstance(self.defaults.get(key), dict):
                    merged = dict(self.defaults[key])
                    merged.update(val)
                    return merged
                return val
        return self.defaults[key]

    def standard(self, category: str, district: str) -> float:
        return float(self.get("standards", district)[category])


def d64(d: dt.date) -> np.datetime64:
    return np.datetime64(d.isoformat(), "D")


def month_index(d: dt.date) -> int:
    """Months since year 0: year * 12 + (month - 1)."""
    return d.year * 12 + d.month - 1


def yyyymm(mi: np.ndarray | int):
    return (np.asarray(mi) // 12) * 100 + np.asarray(mi) % 12 + 1


def month_start(mi: np.ndarray) -> np.ndarray:
    mi = np.asarray(mi)
    return (mi - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]")


def month_end(mi: np.ndarray) -> np.ndarray:
    mi = np.asarray(mi)
    return ((mi + 1 - 1970 * 12).astype("datetime64[M]")).astype("datetime64[D]") - np.timedelta64(1, "D")


@dataclass
class Ctx:
    as_of: dt.date
    scale: float
    seed: int
    rng: np.random.Generator
    policy: Policy
    geo: dict
    names: dict
    dates: dict = field(default_factory=dict)     # source -> current delivery date (<= as_of)
    extra_dates: dict = field(default_factory=dict)  # source -> {'older': date, 'future': date, 'same': date}
    shard: int = 0     # this world's part of a city generated in shards (generate.py, scale above 1)
    shards: int = 1

    @property
    def D(self) -> np.datetime64:
        return d64(self.as_of)

    @property
    def window(self) -> np.ndarray:
        """The 12 income months before the as-of month (month indices)."""
        m = month_index(self.as_of)
        n = int(self.policy.get("income_months"))
        return np.arange(m - n, m)

    def sub(self, name: str) -> np.random.Generator:
        """An independent random stream per purpose, so that changing one part keeps the others. Each
        shard of a sharded city has its own streams; shard 0's are those of an unsharded world."""
        key = [self.seed, _name_hash(name)]
        return np.random.default_rng(key + [self.shard] if self.shard else key)

    def shared(self, name: str) -> np.random.Generator:
        """The same stream in every shard: for what a city has once, such as its public bodies."""
        return np.random.default_rng([self.seed, _name_hash(name)])

    def shard_range(self, size: int) -> tuple[int, int]:
        """This shard's part [lo, hi) of a numbering space of ``size`` values, so that identifiers that
        shards draw by themselves never coincide (ID sequence numbers, unit numbers, household codes)."""
        return self.shard * size // self.shards, (self.shard + 1) * size // self.shards

    @property
    def plate_prefix(self) -> str:
        """Licence plates: 鄂H is Jingmen's; the other shards of a province-sized city take the other
        Hubei prefixes, so that plates drawn at random in different shards never coincide."""
        return "鄂" + HUBEI_PLATE_LETTERS[self.shard]


def _name_hash(name: str) -> int:
    h = 0
    for ch in name:
        h = (h * 131 + ord(ch)) % (2**31)
    return h


# 荆门 first, then the other prefixes of Hubei's cities and prefectures (GA 36-2018)
HUBEI_PLATE_LETTERS = "HABCDEFGJKLMNPQRS"
MAX_SHARDS = len(HUBEI_PLATE_LETTERS)


def delivery_dates(as_of: dt.date) -> tuple[dict, dict]:
    """Current delivery per source (all within their max age), plus older/same/future ones."""
    D = as_of
    td = dt.timedelta
    first = D.replace(day=1)
    cur = {
        "roster": D - td(days=1),
        "hukou": D - td(days=3),
        "cremation": D - td(days=2),
        "vehicle": D - td(days=6),
        "property": D - td(days=12),
        "business": D - td(days=14),
        "tax": first + td(days=min(D.day - 1, 6)),
        "social_insurance": first + td(days=min(D.day - 1, 8)),
        "housing_fund": D - td(days=10),
        "bank": D - td(days=25),
        "payroll": D - td(days=9),
    }
    extra = {
        "roster": {"older": D - td(days=8)},
        "cremation": {"older": D - td(days=32), "future": D + td(days=5)},
        "vehicle": {"older": D - td(days=37)},
        "bank": {"older": D - td(days=110)},
        "payroll": {"same": D - td(days=40)},
    }
    return cur, extra


def wchoice(rng: np.random.Generator, items: list, weights, size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    idx = rng.choice(len(items), size=size, p=w / w.sum())
    return np.asarray(items, dtype=object)[idx]


def cat_index(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=size, p=w / w.sum())
