"""Score a night's cases against the generator's ground truth: precision, recall and leads per rule.

A lead is one exported case (household, rule). A true case is one row of the truth's cases.csv.
False positives that hit a planted look-alike are counted by kind, to show which trap caught the run.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(df["household_id"].astype(str), df["rule"].astype(str)))


def score(cases_csv: Path, truth_dir: Path) -> pd.DataFrame:
    cases = pd.read_csv(cases_csv, dtype=str, encoding="utf-8-sig")
    truth = pd.read_csv(truth_dir / "cases.csv", dtype=str)
    lookalikes_path = truth_dir / "lookalikes.csv"
    lookalikes = pd.read_csv(lookalikes_path, dtype=str) if lookalikes_path.exists() else None
    rules = sorted(set(truth["rule"]) | set(cases["rule"]))
    rows = []
    for rule in rules + ["all"]:
        lead = _pairs(cases if rule == "all" else cases[cases["rule"] == rule])
        real = _pairs(truth if rule == "all" else truth[truth["rule"] == rule])
        tp, fp, fn = len(lead & real), len(lead - real), len(real - lead)
        trapped = ""
        if lookalikes is not None and fp:
            la = lookalikes if rule == "all" else lookalikes[lookalikes["rule"] == rule]
            kinds = {(h, r): k for h, r, k in zip(la["household_id"], la["rule"], la["kind"])}
            counts = pd.Series([kinds[p] for p in lead - real if p in kinds]).value_counts()
            trapped = ", ".join(f"{k} {v}" for k, v in counts.items())
        rows.append(dict(rule=rule, true_cases=len(real), leads=len(lead), true_positive=tp, false_positive=fp,
                         missed=fn, precision=round(tp / len(lead), 4) if lead else float("nan"),
                         recall=round(tp / len(real), 4) if real else float("nan"), lookalikes_flagged=trapped))
    return pd.DataFrame(rows)


def format_score(df: pd.DataFrame) -> str:
    head = "| rule | true cases | leads | precision | recall | missed | false leads | look-alikes flagged |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in df.itertuples():
        lines.append(f"| {r.rule} | {r.true_cases} | {r.leads} | {r.precision:.4f} | {r.recall:.4f} | {r.missed} | "
                     f"{r.false_positive} | {r.lookalikes_flagged} |")
    return "\n".join(lines)
