"""A connector that serves rows held in memory: for tests, and to replay a captured delivery.

Each batch is one "file": a name and a list of records (dicts, delivered column → value). Values become
text the way a CSV would carry them (None → empty). A record that is not a dict is quarantined, like a
row with the wrong number of fields.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa

from connectors.base import ROW, DeliveredFile, QuarantinedRow


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
            payload = json.dumps(list(records), ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
            out = DeliveredFile(name=name, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload),
                                table=None, encoding="utf-8")
            columns: list[str] = []
            good: list[tuple[int, Mapping]] = []
            for number, rec in enumerate(records, start=1):
                if not isinstance(rec, Mapping):
                    out.quarantined.append(QuarantinedRow(number, "记录不是字段表 (record is not a set of fields)",
                                                          _text(rec)))
                    continue
                good.append((number, rec))
                for key in rec:
                    if str(key) not in columns:
                        columns.append(str(key))
            data = {c: pa.array([_text(rec.get(c)) for _, rec in good], pa.string()) for c in columns}
            data[ROW] = pa.array([n for n, _ in good], pa.int64())
            out.table = pa.table(data)
            out.rows_read = len(good) + len(out.quarantined)
            yield out
