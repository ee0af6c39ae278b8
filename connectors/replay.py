"""A connector that serves rows held in memory: for tests, and to replay a captured delivery.

Each batch is one "file": a name and a list of records (dicts, delivered column → value). Values become
text the way a CSV would carry them (None → empty), keys become column names the way a header does. A
record that is not a dict, or that cannot be stored as text, is quarantined with the reason, like a row
with the wrong number of fields.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa

from connectors.base import ROW, DeliveredFile, QuarantinedRow, mask_name
from connectors.files import _header


def _text(value: object) -> str:
    return "" if value is None else str(value)


class ReplayConnector:
    kind = "replay"

    def __init__(self, batches: Mapping[str, Sequence[object]] | Sequence[object], name: str = "replay"):
        """``batches``: {file name: records}, or a single list of records served as one file ``name``."""
        self.batches = dict(batches) if isinstance(batches, Mapping) else {name: list(batches)}

    def describe(self) -> str:
        return "replayed rows: " + ", ".join(f"{k} ({len(v)})" for k, v in self.batches.items())

    def read(self) -> Iterator[DeliveredFile]:
        for name, records in self.batches.items():
            out = DeliveredFile(name=name, sha256=None, size=None, table=None, encoding="utf-8")
            keys: list[str] = []
            good: list[tuple[int, dict[str, str]]] = []
            shown: list[object] = []
            for number, rec in enumerate(records, start=1):
                fields, reason = _fields(rec)
                shown.append(sorted(fields.items()) if fields is not None else _text(rec))
                if reason:   # the record as delivered, lone surrogates escaped so that it can be stored
                    raw = _text(rec).encode("utf-8", "backslashreplace").decode("utf-8")
                    out.quarantined.append(QuarantinedRow(number, reason, raw))
                    continue
                good.append((number, fields))
                for key in fields:
                    if key not in keys:
                        keys.append(key)
            payload = json.dumps(shown, ensure_ascii=False).encode("utf-8", "surrogatepass")
            out.sha256, out.size = hashlib.sha256(payload).hexdigest(), len(payload)
            # column names as a file's header gets them: unique for DuckDB, never a loader column ("_row")
            names, out.notes = _header(keys)
            data = {n: pa.array([rec.get(k, "") for _, rec in good], pa.string()) for k, n in zip(keys, names)}
            data[ROW] = pa.array([n for n, _ in good], pa.int64())
            out.table = pa.table(data)
            out.rows_read = len(good) + len(out.quarantined)
            yield out


def _fields(rec: object) -> tuple[dict[str, str] | None, str | None]:
    """A record's fields as text, or why it is set aside: not a set of fields, two fields whose names read
    the same (1 and "1"), or text that is not valid Unicode (a lone surrogate cannot be stored)."""
    if not isinstance(rec, Mapping):
        return None, "记录不是字段表 (record is not a set of fields)"
    fields: dict[str, str] = {}
    for key, value in rec.items():
        key_text = _text(key)
        if key_text in fields:
            return None, f"有两个字段都叫 {mask_name(key_text)} (two fields are called {mask_name(key_text)})"
        fields[key_text] = _text(value)
    try:
        json.dumps(fields, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return fields, "记录含有无效的 Unicode 字符（单独的代理项）(the record holds text that is not valid Unicode)"
    return fields, None
