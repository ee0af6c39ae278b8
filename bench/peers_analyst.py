"""The analyst's version of the link and flag stages: pandas merges, a rapidfuzz loop, rules R01–R09.

Written the way a data analyst would write it, following ../shared/POLICY.md and config/policy.yaml (per
district), without looking at how rules/sql/*.sql does it line by line:

* read: only the columns the rules need, from the warehouse's ``staging`` tables, into pandas
  (``con.execute(...).df()``); timed apart from the rest;
* link: household persons = roster members (by ``id_norm``) plus the people sharing a member's 户号 in hukou;
  every source record joins them with ``DataFrame.merge`` on ``id_norm``; an ID-matched pair whose names
  differ is kept only when ``rapidfuzz.fuzz.ratio`` (characters) of the two names (spaces removed) is at least
  ``NAME_MIN_RATIO``, checked in a Python loop over the distinct differing pairs. No ID repair, no fuzzy
  fallback for records without an ID (an analyst's first version has neither);
* flag: each rule as a few pandas filters and group-bys; a rule whose source is not usable tonight (the same
  verdicts ``rules.engine`` got) is skipped, as ours does.

``run_analyst(con, policy, as_of, usable)`` returns the flagged households per rule and the timings.
"""
from __future__ import annotations

import time
from datetime import date

import pandas as pd
from rapidfuzz import fuzz

from crosscheck.settings import PolicyConfig

NAME_MIN_RATIO = 50.0   # keep an ID match when at least half the name's characters agree

KEY = ["id_norm", "name"]
COLUMNS = {
    "roster": ["household_id", "category", "district", "household_size", "id_norm", "name"],
    "hukou": [*KEY, "hukou_no", "person_status", "deregistration_date"],
    "cremation": [*KEY, "death_date"],
    "vehicle": [*KEY, "plate_type", "owner_doc_type", "status", "first_registration"],
    "property_owner": [*KEY, "unit_no", "planned_use", "title_status", "registration_date"],
    "business_person": [*KEY, "uscc", "role"],
    "business_entity": ["uscc", "entity_type", "registered_capital_wan", "registration_status", "established_date"],
    "payroll": [*KEY, "staff_status"],
    "tax": [*KEY, "income_item", "period_start", "period_end", "income_amount"],
    "si_contribution": [*KEY, "scheme", "month", "contribution_base", "payer_type"],
    "si_benefit": [*KEY, "month", "amount"],
    "housing_fund": [*KEY, "contribution_base", "account_status", "last_paid_month"],
    "bank": [*KEY, "balance"],
}
PERSON_TABLES = [t for t in COLUMNS if t not in ("roster", "business_entity")]
RULE_SOURCES = {"R01": ["hukou", "cremation"], "R02": ["vehicle"], "R03": ["property"], "R04": ["business"],
                "R05": ["payroll", "hukou"], "R06": ["tax", "social_insurance", "housing_fund"], "R07": ["bank"],
                "R08": [], "R09": ["hukou"]}


# ---------------------------------------------------------------- read
def read_tables(con, tables: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The staging tables the rules need, as DataFrames (only the needed columns)."""
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'").fetchall()}
    frames = {}
    for table in tables or list(COLUMNS):
        if table in existing:
            frames[table] = con.execute(f"SELECT {', '.join(COLUMNS[table])} FROM staging.{table}").df()
        else:
            frames[table] = pd.DataFrame(columns=COLUMNS[table])
    return frames


# ---------------------------------------------------------------- link
def household_persons(roster: pd.DataFrame, hukou: pd.DataFrame) -> pd.DataFrame:
    """Members (roster) and relatives (same 户号 as a member in hukou): household_id, id_norm, person_name, kin."""
    members = (roster.dropna(subset=["id_norm"])[["household_id", "id_norm", "name"]]
               .drop_duplicates(["household_id", "id_norm"]).assign(kin="member"))
    people = hukou.dropna(subset=["id_norm"])
    people = people[people["hukou_no"].fillna("") != ""]
    member_hukou = members.merge(people[["id_norm", "hukou_no"]], on="id_norm")[["household_id", "hukou_no"]]
    relatives = member_hukou.drop_duplicates().merge(people[["hukou_no", "id_norm", "name"]], on="hukou_no")
    relatives = relatives.merge(members[["household_id", "id_norm"]], on=["household_id", "id_norm"],
                                how="left", indicator=True)
    relatives = (relatives[relatives["_merge"] == "left_only"]
                 .drop_duplicates(["household_id", "id_norm"]).assign(kin="relative"))
    cols = ["household_id", "id_norm", "name", "kin"]
    return pd.concat([members[cols], relatives[cols]]).rename(columns={"name": "person_name"})


def names_agree_ratio(pairs: pd.DataFrame) -> dict[tuple[str, str], float]:
    """rapidfuzz.fuzz.ratio of each distinct (source name, person name) pair, in a Python loop."""
    scores = {}
    for a, b in pairs.itertuples(index=False):
        scores[(a, b)] = fuzz.ratio(a.replace(" ", ""), b.replace(" ", ""))
    return scores


def name_guard(linked: pd.DataFrame) -> pd.DataFrame:
    """Drop ID-matched rows whose names differ and score below NAME_MIN_RATIO (an empty name passes)."""
    named = linked["name"].fillna("") != ""
    differ = named & (linked["name"] != linked["person_name"].fillna(""))
    pairs = linked.loc[differ, ["name", "person_name"]].fillna("").drop_duplicates()
    scores = names_agree_ratio(pairs)
    bad = {pair for pair, score in scores.items() if score < NAME_MIN_RATIO}
    if not bad:
        return linked
    keys = pd.Series(list(zip(linked["name"].fillna(""), linked["person_name"].fillna(""))), index=linked.index)
    return linked[~(differ & keys.isin(bad))]


def link_table(records: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """Records tied to household persons by exact normalised ID, name-checked."""
    linked = records.dropna(subset=["id_norm"]).merge(persons, on="id_norm")
    return name_guard(linked)


def link_everything(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """linked[table] for every person table, plus linked['household_person']."""
    persons = household_persons(frames["roster"], frames["hukou"])
    linked = {"household_person": persons}
    for table in PERSON_TABLES:
        linked[table] = link_table(frames[table], persons)
    return linked


# ---------------------------------------------------------------- households and parameters
def households(roster: pd.DataFrame, policy: PolicyConfig) -> pd.DataFrame:
    """One row per household: district, category, size and its monthly standard per person."""
    h = roster.groupby("household_id").agg(district=("district", "first"), category=("category", "first"),
                                          household_size=("household_size", "max")).reset_index()
    params = {d: policy.for_district(d) for d in h["district"].dropna().unique()}
    h["standard"] = [params[d].standards.get(c) if d in params else None
                     for d, c in zip(h["district"], h["category"])]
    return h


def with_district(df: pd.DataFrame, house: pd.DataFrame) -> pd.DataFrame:
    return df.merge(house[["household_id", "district"]], on="household_id")


def param_map(df: pd.DataFrame, policy: PolicyConfig, field: str) -> pd.Series:
    """A scalar policy parameter for each row, by its district."""
    values = {d: getattr(policy.for_district(d), field) for d in df["district"].dropna().unique()}
    return df["district"].map(values)


def in_param(df: pd.DataFrame, values: pd.Series, policy: PolicyConfig, field: str) -> pd.Series:
    """values[i] in the district's list parameter ``field`` (row by row, per district)."""
    mask = pd.Series(False, index=df.index)
    for district in df["district"].dropna().unique():
        allowed = getattr(policy.for_district(district), field)
        mask |= (df["district"] == district) & values.isin(allowed)
    return mask


def members(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["kin"] == "member"]


def stripped(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str).str.strip()


def ids(df: pd.DataFrame) -> set[str]:
    return set(df["household_id"].dropna().unique())


def to_ts(d: date) -> pd.Timestamp:
    return pd.Timestamp(d)


# ---------------------------------------------------------------- rules
def r01_deceased(linked, house, policy, as_of) -> set[str]:
    hk = with_district(members(linked["hukou"]), house)
    hk = hk[in_param(hk, stripped(hk["person_status"]), policy, "deceased_status")]
    cr = with_district(members(linked["cremation"]), house)
    deaths = pd.concat([hk.assign(died=hk["deregistration_date"]), cr.assign(died=cr["death_date"])])
    cutoff = to_ts(as_of) - pd.to_timedelta(param_map(deaths, policy, "deceased_grace_days"), unit="D")
    return ids(deaths[deaths["died"].isna() | (pd.to_datetime(deaths["died"]) <= cutoff)])


def plate_code(s: pd.Series) -> pd.Series:
    return stripped(s).str.zfill(2)


def held_status(status: pd.Series, df, policy) -> pd.Series:
    """True when ZT has none of the district's not-held letters."""
    letters = status.fillna("").str.upper().str.replace(r"[^A-Z]", "", regex=True)
    not_held = param_map(df, policy, "vehicle_not_held_status")
    return pd.Series([not (set(z) & set(bad)) for z, bad in zip(letters, not_held)], index=df.index, dtype=bool)


def r02_vehicle(linked, house, policy, as_of) -> set[str]:
    v = with_district(members(linked["vehicle"]), house)
    person = in_param(v, stripped(v["owner_doc_type"]).str.upper(), policy, "vehicle_person_doc_types")
    exempt = in_param(v, plate_code(v["plate_type"]), policy, "vehicle_exempt_plate_types")
    registered = pd.to_datetime(v["first_registration"]) <= to_ts(as_of)
    return ids(v[person & ~exempt & held_status(v["status"], v, policy) & registered])


def r03_property(linked, house, policy, as_of) -> set[str]:
    p = with_district(members(linked["property_owner"]), house)
    p = p[in_param(p, stripped(p["title_status"]), policy, "property_current_status")
          & (pd.to_datetime(p["registration_date"]) <= to_ts(as_of))]
    use = stripped(p["planned_use"])
    homes = p[use == param_map(p, policy, "property_residential_use")].groupby("household_id")["unit_no"].nunique()
    commercial = p[in_param(p, use, policy, "property_commercial_uses")].groupby("household_id")["unit_no"].nunique()
    limit = house.set_index("household_id")["district"].map(
        {d: policy.for_district(d).property_max_residential_units for d in house["district"].dropna().unique()})
    too_many = homes[homes > limit.reindex(homes.index)]
    return set(too_many.index) | set(commercial[commercial > 0].index)


def r04_business(linked, entities, house, policy, as_of) -> set[str]:
    b = with_district(members(linked["business_person"]), house).merge(entities, on="uscc")
    counting = in_param(b, stripped(b["role"]), policy, "business_counting_roles")
    active = in_param(b, stripped(b["registration_status"]), policy, "business_active_status")
    established = b["established_date"].isna() | (pd.to_datetime(b["established_date"]) <= to_ts(as_of))
    small = (in_param(b, stripped(b["entity_type"]), policy, "business_small_exempt_types")
             & (b["registered_capital_wan"].fillna(0) <= param_map(b, policy, "business_small_capital_wan")))
    return ids(b[counting & active & established & ~small])


def r05_payroll_relative(linked, house, policy, as_of) -> set[str]:
    p = with_district(linked["payroll"], house)
    return ids(p[in_param(p, stripped(p["staff_status"]), policy, "payroll_counting_status")])


def income_window(as_of: date, months: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The whole months before the as-of month: [first, end)."""
    end = to_ts(as_of).to_period("M").to_timestamp()
    return end - pd.DateOffset(months=months), end


def tax_income(linked, house, policy, as_of) -> pd.DataFrame:
    """Per member: earning tax items / 12 and the other items / 12, in the 12-month window."""
    t = with_district(members(linked["tax"]), house)
    first, end = income_window(as_of, 12)
    t = t[(pd.to_datetime(t["period_end"]) >= first) & (pd.to_datetime(t["period_start"]) < end)]
    earning = in_param(t, stripped(t["income_item"]), policy, "income_earning_tax_items")
    t = t.assign(tax_earnings=t["income_amount"].where(earning, 0) / 12,
                 other_income=t["income_amount"].where(~earning, 0) / 12)
    return t.groupby(["household_id", "id_norm"])[["tax_earnings", "other_income"]].sum()


def contribution_income(linked, house, policy, as_of) -> pd.Series:
    """Per member: employee-scheme contribution base, once per month, summed over the window / 12."""
    c = with_district(members(linked["si_contribution"]), house)
    month = pd.to_datetime(c["month"])
    first, end = income_window(as_of, 12)
    c = c[in_param(c, stripped(c["scheme"]), policy, "income_employee_schemes")
          & ~in_param(c, stripped(c["payer_type"]), policy, "income_non_earning_payer_types")
          & (month >= first) & (month < end)]
    per_month = c.groupby(["household_id", "id_norm", "month"])["contribution_base"].max()
    return (per_month.groupby(level=["household_id", "id_norm"]).sum() / 12).rename("si_earnings")


def housing_fund_income(linked, house, policy, as_of) -> pd.Series:
    f = with_district(members(linked["housing_fund"]), house)
    month_start = to_ts(as_of).to_period("M").to_timestamp()
    recent = pd.Series([month_start - pd.DateOffset(months=int(m)) for m in
                        param_map(f, policy, "income_housing_fund_recent_months")], index=f.index, dtype="datetime64[ns]")
    f = f[in_param(f, stripped(f["account_status"]), policy, "income_housing_fund_active_status")
          & (pd.to_datetime(f["last_paid_month"]) >= recent)]
    return f.groupby(["household_id", "id_norm"])["contribution_base"].max().rename("hf_earnings")


def benefit_income(linked, as_of) -> pd.Series:
    b = members(linked["si_benefit"])
    month = pd.to_datetime(b["month"])
    first, end = income_window(as_of, 12)
    b = b[(month >= first) & (month < end)]
    return (b.groupby(["household_id", "id_norm"])["amount"].sum() / 12).rename("benefits")


def r06_income(linked, house, policy, as_of) -> set[str]:
    people = members(linked["household_person"])[["household_id", "id_norm"]].drop_duplicates()
    people = with_district(people, house).set_index(["household_id", "id_norm"])
    income = people.join([tax_income(linked, house, policy, as_of), contribution_income(linked, house, policy, as_of),
                          housing_fund_income(linked, house, policy, as_of), benefit_income(linked, as_of)]).fillna(
        {"tax_earnings": 0, "other_income": 0, "si_earnings": 0, "hf_earnings": 0, "benefits": 0})
    income = income.reset_index()
    earnings = income[["tax_earnings", "si_earnings", "hf_earnings"]].max(axis=1)
    deduction = param_map(income, policy, "income_employment_cost_deduction")
    income["monthly"] = earnings * (1 - deduction) + income["benefits"] + income["other_income"]
    total = income.groupby("household_id")["monthly"].sum()
    h = house.set_index("household_id").join(total.rename("total"), how="inner")
    per_person = h["total"] / h["household_size"].where(h["household_size"] > 0)
    return set(h.index[per_person > h["standard"]])


def r07_financial_assets(linked, house, policy, as_of) -> set[str]:
    total = members(linked["bank"]).groupby("household_id")["balance"].sum()
    h = house.set_index("household_id").join(total.rename("total"), how="inner").reset_index()
    limit = param_map(h, policy, "financial_asset_months") * h["standard"] * h["household_size"]
    return ids(h[h["total"] > limit])


def r08_duplicate(roster: pd.DataFrame) -> set[str]:
    r = roster.dropna(subset=["id_norm"])
    r = r.assign(tekun=r["category"] == "特困供养", dibao=r["category"].isin(["城市低保", "农村低保"]))
    per = r.groupby("id_norm").agg(households=("household_id", "nunique"), listings=("household_id", "size"),
                                   tekun=("tekun", "any"), dibao=("dibao", "any"))
    pairs = r.drop_duplicates(["household_id", "id_norm"]).groupby("id_norm").size()
    dup = per[(per["households"] > 1) | (per["listings"] > pairs) | (per["tekun"] & per["dibao"])]
    return ids(r[r["id_norm"].isin(dup.index)])


def r09_left_jurisdiction(linked, house, policy, as_of) -> set[str]:
    hk = with_district(members(linked["hukou"]), house)
    hk = hk[in_param(hk, stripped(hk["person_status"]), policy, "left_jurisdiction_status")]
    cutoff = to_ts(as_of) - pd.to_timedelta(param_map(hk, policy, "left_jurisdiction_grace_days"), unit="D")
    return ids(hk[pd.to_datetime(hk["deregistration_date"]) <= cutoff])


def evaluate(frames, linked, policy: PolicyConfig, as_of: date, usable: set[str]) -> dict[str, list[str] | None]:
    """Flagged household IDs per rule (None when a source of the rule is not usable tonight)."""
    house = households(frames["roster"], policy)
    rules = {
        "R01": lambda: r01_deceased(linked, house, policy, as_of),
        "R02": lambda: r02_vehicle(linked, house, policy, as_of),
        "R03": lambda: r03_property(linked, house, policy, as_of),
        "R04": lambda: r04_business(linked, frames["business_entity"], house, policy, as_of),
        "R05": lambda: r05_payroll_relative(linked, house, policy, as_of),
        "R06": lambda: r06_income(linked, house, policy, as_of),
        "R07": lambda: r07_financial_assets(linked, house, policy, as_of),
        "R08": lambda: r08_duplicate(frames["roster"]),
        "R09": lambda: r09_left_jurisdiction(linked, house, policy, as_of),
    }
    out = {}
    for code, rule in rules.items():
        needed = ["roster", *RULE_SOURCES[code]]
        out[code] = sorted(rule()) if all(s in usable for s in needed) else None
    return out


def run_analyst(con, policy: PolicyConfig, as_of: date, usable: set[str]) -> dict:
    """Read, link and flag; the flagged households per rule with the seconds of each step."""
    started = time.perf_counter()
    frames = read_tables(con)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    linked = link_everything(frames)
    link_s = time.perf_counter() - started
    started = time.perf_counter()
    flagged = evaluate(frames, linked, policy, as_of, usable)
    flag_s = time.perf_counter() - started
    links = {t: int(len(df)) for t, df in linked.items()}
    rows = {t: int(len(df)) for t, df in frames.items()}
    return {"read_s": read_s, "link_s": link_s, "flag_s": flag_s, "rows_read": rows, "links": links,
            "flagged": flagged}
