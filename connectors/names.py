"""Person names as linkage compares them (staging ``name_norm`` / ``name_key``).

``name_norm``: NFKC (full-width letters, compatibility ideographs, odd spaces become ordinary ones);
leading, trailing and stray spaces removed; the separators of minority names (·, •, ., ・, ‧ and a space
between parts) unified to a single ``·``. A space counts as a separator when the name already has an
explicit separator or is longer than four characters; inside a short Han name (张 三) it is a typo and is
dropped. ``name_key`` is ``name_norm`` without the ``·``, for names delivered with nothing between parts.

Most names are plain Han characters and need none of this: the loader sends only the others to Python
(``SIMPLE_NAME_RE`` tells them apart in SQL), distinct values only.
"""
from __future__ import annotations

import re
import unicodedata

# A name already in normal form: Han characters / ASCII letters and digits, parts joined by single ·.
SIMPLE_NAME_RE = (r"[\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}A-Za-z0-9]+"
                  r"(·[\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}A-Za-z0-9]+)*")
_SIMPLE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9]+(·[\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9]+)*")
_SPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_SEP = re.compile(r"\s*[·•.・‧∙⋅●]\s*")
_SEPS = re.compile(r"·{2,}")


def name_norm(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", str(raw))
    if _SIMPLE.fullmatch(text):
        return text
    text = _SPACE.sub(" ", text).strip()
    had_sep = bool(_SEP.search(text))
    text = _SEP.sub("·", text)
    compact = text.replace(" ", "")
    if " " in text and (had_sep or len(compact) > 4):
        text = text.replace(" ", "·")
    else:
        text = compact
    text = _SEPS.sub("·", text).strip("·")
    return text or None


def name_key(raw: str | None) -> str | None:
    norm = name_norm(raw)
    return norm.replace("·", "") if norm is not None else None
