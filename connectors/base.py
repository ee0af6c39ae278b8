"""One interface for every way a source reaches the warehouse (files today, the front database later).

A connector is configured for one table of one source and, when read, yields one ``DeliveredFile`` per
delivered unit (a file, a replayed batch, later a front-database table): its name, sha256 and size, and an
Arrow table holding the delivered columns exactly as text plus ``_row`` (1-based data row number: header
excluded for CSV and XLSX, the line number for JSON Lines). Records that could not even be split into
columns (wrong field count, malformed JSON) are not in the table but in ``quarantined``, with their row
number, so that ``rows_read == table.num_rows + len(quarantined)`` and nothing is lost silently.

The loader (``connectors/load.py``) only talks to this protocol, so a new kind of delivery is a new
connector, not a change to the loader. Like a Dagster resource, a connector holds configuration and does
its I/O only when ``read()`` is iterated.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pyarrow as pa

from crosscheck.safety import mask_ids

ROW = "_row"                 # 1-based data row number within the delivered file
EXCEL_DAMAGED = "_excel_damaged"  # "|col|col|": delivered columns whose cell was a number too long for Excel
# the columns the readers and the loader add to raw.<table>: a delivered column of the same name is renamed
RESERVED = (ROW, EXCEL_DAMAGED, "_file", "_delivery_date")


@dataclass
class QuarantinedRow:
    """A delivered record the connector could not turn into columns."""

    row: int | None          # data row / line number, None when unknown
    reason: str              # plain words for a data steward; never the record's content
    raw: str                 # the record as delivered (stored in audit.quarantine, never shown in messages)


@dataclass
class DeliveredFile:
    name: str                          # file name inside the delivery folder (or the replay/front-db name)
    sha256: str | None
    size: int | None                   # bytes
    table: pa.Table | None             # delivered columns as strings + _row (+ _excel_damaged); None if unreadable
    rows_read: int = 0                 # data records seen, including the quarantined ones
    encoding: str | None = None        # the encoding the file was actually read in
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # warnings that do not stop the load
    error: str | None = None           # the whole file could not be read: the reason (table is None)
    broken: str | None = None          # read, but not to be trusted as a whole (cut off): the reason; the
                                       # loader keeps its rows in raw and rejects its table

    @property
    def ok(self) -> bool:
        return self.error is None and self.table is not None


@runtime_checkable
class Connector(Protocol):
    """Yields the delivered units of one table. Implementations: files.py, replay.py (front DB later)."""

    kind: str

    def describe(self) -> str:
        """One line for logs: what is read from where (no data values)."""
        ...

    def read(self) -> Iterator[DeliveredFile]:
        ...


def column_key(name: str) -> str:
    """A column name as DuckDB tells names apart: ASCII letters regardless of case ("x" and "X" are one
    column; "ä" and "Ä" are two), so delivered names are made unique by this key."""
    return "".join(c.lower() if c.isascii() else c for c in name)


# --- message hygiene ------------------------------------------------------------------------------------
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f·•]+")


_DIGIT_RUN = re.compile(r"(\d{6})\d{8}(\d{1,3}[0-9Xx]?)")


def mask_name(text: str) -> str:
    """A delivered column name (a header cell, a JSON key) made safe to show: IDs masked as ``mask_ids``
    does, and also a run of 15–18 digits that letters touch ("ID420802…", a header cell that is data),
    which ``mask_ids`` leaves alone so as not to mask codes in free text."""
    return _DIGIT_RUN.sub(lambda m: m.group(1) + "*" * 8 + m.group(2), mask_ids(text))


def scrub_exception(exc: BaseException, limit: int = 300) -> str:
    """An exception's text made safe for a message: IDs masked, Chinese text (possibly names) removed."""
    text = f"{type(exc).__name__}: {exc}"
    text = _CJK_RUN.sub("…", mask_ids(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"
