"""Output hygiene shared by every writer: owner-only files, spreadsheet-safe cells."""
from __future__ import annotations

import os
import re
from pathlib import Path

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# The same characters as an RE2 pattern (Arrow compute, reports/workbook.py): a text that begins with one
FORMULA_RE2 = "^[" + "".join(f"\\x{{{ord(p):x}}}" for p in FORMULA_PREFIXES) + "]"


def neutralise_sql(expr: str) -> str:
    """``neutralise_cell`` as a DuckDB expression over a text expression (NULL stays NULL)."""
    chars = ", ".join(f"chr({ord(p)})" for p in FORMULA_PREFIXES)
    return f"(CASE WHEN left({expr}, 1) IN ({chars}) THEN chr(39) || ({expr}) ELSE ({expr}) END)"


def neutralise_cell(value):
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(df):
    """A copy of the DataFrame with ``neutralise_cell`` applied to every text column, whatever its dtype:
    pandas 3 reads text as its string dtype, not object, and a check on ``dtype == object`` alone let
    formulas through to the CSV files."""
    import pandas as pd

    safe = df.copy()
    for column in safe.columns:
        values = safe[column]
        if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
            continue
        try:
            formula = values.str.startswith(FORMULA_PREFIXES, na=False).astype(bool)
        except (AttributeError, TypeError):      # an object column that is not all text
            safe[column] = values.map(neutralise_cell)
            continue
        if formula.any():
            safe[column] = values.mask(formula, "'" + values)
    return safe


def private_umask() -> None:
    """Everything the process writes from now on is readable by its owner only."""
    os.umask(0o077)


def make_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write atomically (temp file + rename) with mode 0600, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
        handle.write(text)
    publish(tmp, path)


def publish(tmp: Path, final: Path) -> Path:
    """Make a finished temp file owner-only and move it into place in one step: readers see the old
    file or the new one, never half of one."""
    os.chmod(tmp, 0o600)
    os.replace(tmp, final)
    return final


_ID_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{1,3}[0-9Xx]?)(?![0-9A-Za-z])")


def mask_ids(text: str) -> str:
    """Mask anything in free text that looks like a 15- or 18-character ID number (digits 7–14)."""
    return _ID_LIKE.sub(lambda m: m.group(1) + "*" * 8 + m.group(2), text)

