"""Reading a generated landing zone back, joined with its truth (for tests and spot checks).

Deliberately simple and independent of the pipeline's loader: it only needs to be right for files this
generator writes.
"""
from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from .common import SOURCES


def deliveries(out: Path, source: str) -> list[dt.date]:
    d = Path(out) / source
    return sorted(dt.date.fromisoformat(p.name) for p in d.iterdir() if p.is_dir())


def current_date(out: Path, source: str, as_of: dt.date) -> dt.date | None:
    ds = [d for d in deliveries(out, source) if d <= as_of]
    return ds[-1] if ds else None


def detect_encoding(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        data.decode("gbk")
        return "gbk"


def read_file(path: Path) -> pd.DataFrame:
    """Every value as text ('' for empty), in file order."""
    path = Path(path)
    if path.suffix == ".csv":
        data = path.read_bytes()
        text = data.decode(detect_encoding(data))
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return pd.DataFrame(rows).fillna("").astype(str)
    if path.suffix == ".xlsx":
        from python_calamine import CalamineWorkbook

        wb = CalamineWorkbook.from_path(str(path))
        data = wb.get_sheet_by_index(0).to_python(skip_empty_area=False)
        header = [str(h) for h in data[0]]

        def cell(v):
            if isinstance(v, float):
                return str(int(v)) if v.is_integer() and abs(v) >= 1e15 else repr(v)
            return "" if v is None else str(v)
        return pd.DataFrame([[cell(v) for v in r] for r in data[1:]], columns=header)
    raise ValueError(path)


def load_links(truth_dir: Path) -> pd.DataFrame:
    t = pq.read_table(Path(truth_dir) / "links.parquet").to_pandas()
    for c in ("source", "table", "delivery_date", "file", "defect"):
        t[c] = t[c].astype(str)
    t["true_id"] = t["true_id"].astype(str)
    return t


def read_delivery(out: Path, links: pd.DataFrame, source: str, date: dt.date, fname: str) -> pd.DataFrame:
    """A delivered file with the truth of each row: _row, _owner_seq, _true_id, _defect."""
    df = read_file(Path(out) / source / date.isoformat() / fname)
    df["_row"] = range(1, len(df) + 1)
    ln = links[(links["source"] == source) & (links["delivery_date"] == date.isoformat()) & (links["file"] == fname)]
    ln = ln[["row", "owner_seq", "true_id", "defect"]].rename(
        columns={"row": "_row", "owner_seq": "_owner_seq", "true_id": "_true_id", "defect": "_defect"})
    return df.merge(ln, on="_row", how="left")


def files_of(out: Path, source: str, date: dt.date) -> list[str]:
    d = Path(out) / source / date.isoformat()
    return sorted(p.name for p in d.iterdir() if p.name != "MANIFEST.csv")


def all_files(out: Path) -> list[tuple[str, dt.date, str]]:
    res = []
    for s in SOURCES:
        for d in deliveries(out, s):
            for f in files_of(out, s, d):
                res.append((s, d, f))
    return res
