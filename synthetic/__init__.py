"""Synthetic landing zone with planted ground truth (``crosscheck generate``).

Entry point: :func:`synthetic.generate.generate`; see synthetic/README.md for what it writes.
"""
from __future__ import annotations


def generate(*args, **kwargs):
    """See :func:`synthetic.generate.generate` (imported lazily: it pulls in duckdb and pyarrow)."""
    from .generate import generate as _generate

    return _generate(*args, **kwargs)


__all__ = ["generate"]
