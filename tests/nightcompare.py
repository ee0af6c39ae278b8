"""What a night leaves behind, in a form two runs can be compared by: for issue 8's crash and rerun tests.

Compared: every file under ``out`` (bytes, except a PDF by its text, since Chromium stamps the print time;
the run summary without its timings; Great Expectations' Data Docs with the random UUIDs GX gives its
suite and expectation objects each time they are built, and the batch marker ``ge_load_time`` (the clock
time GX read the table), replaced by placeholders), and every table of the ledger, flags and linked layers with its
rows sorted (TIMESTAMP columns, which record when a row was written, left out).
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import duckdb

LAYERS = ("linked", "flags", "ledger")
VOLATILE_SUMMARY_KEYS = ("stages", "stage_peak_mib", "stage_cpu_s", "link_seconds", "already_complete")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_GX_CLOCK = re.compile(rb"\d{8}T\d{6}\.\d{6}Z")


def _data_docs(data: bytes) -> bytes:
    data = _UUID.sub(b"<uuid>", data)
    # ge_load_time: a time stamp in the form GX writes; the night's own run_time is midnight (T000000)
    return _GX_CLOCK.sub(lambda m: m.group(0) if m.group(0)[9:15] == b"000000" else b"<ge_load_time>", data)


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _summary_md(text: str) -> str:
    """run_summary.md without its "Time per stage" section."""
    return re.sub(r"## Time per stage.*?(?=\n## |\Z)", "", text, flags=re.S)


def out_files(out: Path, state: Path | None = None) -> dict[str, str]:
    """Every file under ``out``, as compared (module docstring); the run summary with the out and state
    folders written as <out> and <state>, so nights in different folders compare."""
    def folders(text: str) -> str:
        text = text.replace(str(out), "<out>")
        return text.replace(str(state), "<state>") if state is not None else text

    files = {}
    for path in sorted(p for p in Path(out).rglob("*") if p.is_file()):
        rel = str(path.relative_to(out))
        if path.suffix == ".pdf":
            files[rel] = "pdf-text:" + hashlib.sha256(_pdf_text(path).encode()).hexdigest()
        elif path.name == "run_summary.json":
            summary = json.loads(folders(path.read_text(encoding="utf-8")))
            for key in VOLATILE_SUMMARY_KEYS:
                summary.pop(key, None)
            files[rel] = json.dumps(summary, sort_keys=True, ensure_ascii=False)
        elif path.name == "run_summary.md":
            files[rel] = _summary_md(folders(path.read_text(encoding="utf-8")))
        elif rel.startswith("data_docs/"):
            files[rel] = hashlib.sha256(_data_docs(path.read_bytes())).hexdigest()
        else:
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def warehouse_tables(warehouse: Path, layers=LAYERS) -> dict[str, list[tuple]]:
    tables = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for schema, table in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
                f"({', '.join('?' for _ in layers)}) ORDER BY 1, 2", list(layers)).fetchall():
            cols = [c for c, t in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND "
                "table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
                if not t.startswith("TIMESTAMP")]
            select = ", ".join(f'"{c}"' for c in cols)
            rows = con.execute(f'SELECT {select} FROM "{schema}"."{table}"').fetchall()
            tables[f"{schema}.{table}"] = sorted(rows, key=repr)
    return tables


def night_result(out: Path, state: Path) -> dict:
    return {"files": out_files(out, state), "tables": warehouse_tables(Path(state) / "warehouse.duckdb")}


def differences(expected: dict, got: dict, limit: int = 12) -> list[str]:
    """Human-readable differences between two night_result()s (empty when equal)."""
    found = []
    for kind in ("files", "tables"):
        a, b = expected[kind], got[kind]
        for name in sorted(set(a) | set(b)):
            if name not in b:
                found.append(f"{kind}: {name} missing")
            elif name not in a:
                found.append(f"{kind}: {name} not expected")
            elif a[name] != b[name]:
                detail = ""
                if name.endswith("run_summary.json"):
                    x, y = json.loads(a[name]), json.loads(b[name])
                    detail = f" (keys {sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))})"
                if kind == "tables":
                    extra = [r for r in b[name] if r not in a[name]][:2]
                    gone = [r for r in a[name] if r not in b[name]][:2]
                    detail = f" (extra {extra}, missing {gone})"
                found.append(f"{kind}: {name} differs{detail}")
    return found[:limit]
