"""Configuration: sources, policy and thresholds as YAML in ``config/``, validated on load.

Nothing about a source's columns or a district's standards is a constant in code; this module is the
only place that reads the YAML, and it refuses a file that does not match the models below.
"""
from __future__ import annotations

import copy
import os
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ColumnType = Literal["text", "int", "decimal", "date", "timestamp", "month"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeSpec(_Strict):
    """Plausible values of a number or date column; a value outside is quarantined by validation.
    ``max_days_after_delivery`` bounds a date by the delivery's own date (0: not later than the delivery).
    ``keep_rows``: a value outside is reported to the stewards with its file and row but the row is kept,
    for dates that POLICY.md expects to meet and the rules handle themselves (a registration dated after
    the as-of date does not count, yet it is the department's record and links to its owner)."""

    min: float | date | None = None
    max: float | date | None = None
    max_days_after_delivery: int | None = None
    keep_rows: bool = False

    def bounds(self, delivery_date: date) -> tuple:
        hi = self.max
        if self.max_days_after_delivery is not None:
            hi = delivery_date + timedelta(days=self.max_days_after_delivery)
        return self.min, hi


class ColumnSpec(_Strict):
    name: str
    type: ColumnType = "text"
    formats: list[str] | None = None
    role: Literal["id_number", "person_name"] | None = None
    required: bool = True
    codes: str | None = None          # name of a table in ``code_tables``: values must be among its codes
    range: RangeSpec | None = None    # plausible values (numbers, dates)


class CodeTable(_Strict):
    """A code list (GB/T 4761 relation codes, GA 24.7 plate types, ...). ``pad``: codes are compared after
    left-padding with zeros to this width (1 and 01 are the same code); ``letters``: a value may hold
    several one-letter codes at once (车辆状态 ZT = "AG")."""

    title: str
    codes: dict[str, str]             # code → meaning
    pad: int | None = None
    letters: bool = False


class UniqueKey(_Strict):
    """Columns that should identify a row; duplicates are reported (not quarantined: which copy is wrong
    cannot be told from the data)."""

    columns: list[str]
    max_share: float = Field(default=0.0, ge=0, le=1)


class ExplodeSpec(_Strict):
    """One delivered cell holding several owners (权利人 a、b) becomes one staging row per owner."""

    table: str
    separator: str
    columns: dict[str, str]
    roles: dict[str, Literal["id_number", "person_name"]] = Field(default_factory=dict)


class FrontDbSpec(_Strict):
    """Read this table from the exchange platform's front database (前置库) instead of files."""

    url: str  # e.g. postgresql://user@127.0.0.1:5432/test or mysql://root@127.0.0.1:3306/test; ${VAR} from env
    table: str
    delivery_date_column: str | None = None  # several snapshots in one table: newest on or before the night
    order_by: list[str] | None = None        # stable row numbering; default every delivered column


class TableSpec(_Strict):
    format: Literal["csv", "xlsx", "jsonl"]
    encoding: str = "utf-8"
    files: str
    columns: dict[str, ColumnSpec]
    explode: ExplodeSpec | None = None
    front_db: FrontDbSpec | None = None
    unique: list[UniqueKey] = Field(default_factory=list)
    # An exact copy of an earlier row is quarantined (it would count a balance or a payment twice), except
    # where the copy is itself the finding: a roster listing a member twice is POLICY.md's R08.
    keep_exact_duplicates: bool = False

    def canonical(self) -> dict[str, ColumnSpec]:
        return {spec.name: spec for spec in self.columns.values()}


class SourceSpec(_Strict):
    title: str
    department: str
    max_age_days: int = Field(gt=0)
    tables: dict[str, TableSpec]


class SourceDefaults(_Strict):
    date_formats: list[str]
    month_formats: list[str]


class SourcesConfig(_Strict):
    defaults: SourceDefaults
    code_tables: dict[str, CodeTable] = Field(default_factory=dict)
    sources: dict[str, SourceSpec]

    @model_validator(mode="after")
    def _roster_present(self) -> "SourcesConfig":
        if "roster" not in self.sources:
            raise ValueError("sources.yaml must define the roster source")
        return self

    @model_validator(mode="after")
    def _references_resolve(self) -> "SourcesConfig":
        for source, spec in self.sources.items():
            for table, tspec in spec.tables.items():
                names = {cs.name for cs in tspec.columns.values()}
                for delivered, cs in tspec.columns.items():
                    if cs.codes is not None and cs.codes not in self.code_tables:
                        raise ValueError(f"{source}.{table}.{delivered}: unknown code table {cs.codes!r}")
                for key in tspec.unique:
                    unknown = [c for c in key.columns if c not in names]
                    if unknown:
                        raise ValueError(f"{source}.{table}: unique key names unknown column(s) {unknown}")
        return self

    def table_source(self) -> dict[str, str]:
        """Canonical table name → source name (business_person → business)."""
        return {t: s for s, spec in self.sources.items() for t in spec.tables}


class RuleParams(_Strict):
    standards: dict[str, float]
    deceased_grace_days: int
    deceased_status: list[str]
    vehicle_not_held_status: list[str]
    vehicle_exempt_plate_types: list[str]
    vehicle_person_doc_types: list[str]
    property_current_status: list[str]
    property_commercial_uses: list[str]
    property_residential_use: str
    property_max_residential_units: int
    business_active_status: list[str]
    business_counting_roles: list[str]
    business_small_exempt_types: list[str]
    business_small_capital_wan: float
    payroll_counting_status: list[str]
    income_months: int
    income_earning_tax_items: list[str]
    income_employee_schemes: list[str]
    income_non_earning_payer_types: list[str]
    income_housing_fund_active_status: list[str]
    income_housing_fund_recent_months: int
    income_employment_cost_deduction: float = Field(ge=0, le=1)
    financial_asset_months: float
    left_jurisdiction_status: list[str]
    left_jurisdiction_grace_days: int
    # periodic review: 分类管理 → months between reviews (A 12, B 6), and the "due soon" window in days
    review_months: dict[str, int]
    review_due_soon_days: int = Field(ge=0)

    @model_validator(mode="after")
    def _review_months_positive(self) -> "RuleParams":
        bad = {k: v for k, v in self.review_months.items() if not k.strip() or v <= 0}
        if bad:
            raise ValueError(f"review_months: every 分类管理 needs a positive number of months, got {bad}")
        return self


class RuleSpec(_Strict):
    name: str
    source: list[str]
    priority: int = Field(ge=1, le=3)


class LedgerSpec(_Strict):
    deadline_days: int = 30
    responsible_unit: Literal["township", "district"] = "township"


class PolicyConfig(_Strict):
    defaults: RuleParams
    districts: dict[str, dict] = Field(default_factory=dict)
    rules: dict[str, RuleSpec]
    fuzzy_link_priority_drop: int = 1
    ledger: LedgerSpec

    @model_validator(mode="after")
    def _overrides_valid(self) -> "PolicyConfig":
        for district in self.districts:
            self.for_district(district)  # raises if an override names an unknown parameter
        return self

    def for_district(self, district: str) -> RuleParams:
        """The defaults with the district's overrides merged in (dicts merge key by key)."""
        merged = _deep_merge(self.defaults.model_dump(), self.districts.get(district, {}))
        return RuleParams.model_validate(merged)


class Thresholds(_Strict):
    min_valid_id_share: float = Field(ge=0, le=1)
    max_quarantine_share: float = Field(ge=0, le=1)
    min_row_ratio_vs_previous: float = Field(ge=0)
    max_row_ratio_vs_previous: float = Field(ge=0)
    max_row_failure_share: float = Field(ge=0, le=1)   # codes / ranges: above this the source is rejected
    check_engine: Literal["great_expectations", "sql"] = "great_expectations"
    # linkage/fuzzy.py: staging tables whose records without a usable ID are linked probabilistically
    fuzzy_link_tables: list[str] = Field(default_factory=lambda: ["cremation"])
    # DuckDB's buffer pool (crosscheck/warehouse.py connect); None keeps DuckDB's default, 80 % of the RAM
    warehouse_memory_limit: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?\s*(MB|GB|MiB|GiB)$")
    # connectors/readahead.py: the load stage reads the next delivered file while DuckDB stages the one before;
    # a file larger than this is read by the loader itself (0: no read-ahead)
    read_ahead_max_mib: int = Field(default=0, ge=0)


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class ConfigError(RuntimeError):
    """A configuration file is missing or does not match its model."""


def config_dir() -> Path:
    """``$CROSSCHECK_CONFIG`` or the repository's ``config/``."""
    env = os.environ.get("CROSSCHECK_CONFIG")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "config"


def _load(model: type[BaseModel], filename: str, directory: Path | None):
    path = (directory or config_dir()) / filename
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path} does not match its schema:\n{exc}") from exc


@lru_cache(maxsize=8)
def load_sources(directory: Path | None = None) -> SourcesConfig:
    return _load(SourcesConfig, "sources.yaml", directory)


@lru_cache(maxsize=8)
def load_policy(directory: Path | None = None) -> PolicyConfig:
    return _load(PolicyConfig, "policy.yaml", directory)


@lru_cache(maxsize=8)
def load_thresholds(directory: Path | None = None) -> Thresholds:
    return _load(Thresholds, "thresholds.yaml", directory)
