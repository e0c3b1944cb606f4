"""Display formatting shared by the report's pages: every value a template shows is made
here from a results document that may be partial, hand-written or hostile. Strings stay plain
``str`` (never ``Markup``), so the templates' autoescape escapes all of them."""

from __future__ import annotations

import math
from typing import Any, List, Mapping

MISSING = "\u2014"  # em dash: the value is absent (null or key missing)


def fmt_num(value: Any, digits: int = 3) -> str:
    """Format a metric for display: None -> em dash, NaN/inf spelled out, floats as %.{digits}g.

    Never raises: strings (``"NaN"``, ``"Infinity"`` from a hand-written document) are parsed,
    anything unparsable is shown as ``str(value)`` (and escaped by the template like any string).
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return MISSING
        try:
            value = float(text)
        except ValueError:
            return value
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return str(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return "%.*g" % (digits, number)


def fmt_int(value: Any) -> str:
    """Format a count (mismatched elements, size); tolerant like :func:`fmt_num`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return fmt_num(value)


def as_text(value: Any) -> str:
    """A document value as display text ('' for None); never Markup, so always escaped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return fmt_num(value)
    return str(value)


def as_mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def fmt_exact(value: Any) -> str:
    """A parameter value (a sweep point, an oracle knob) exactly: the shortest text that reads
    back as the same float (``1.0000001``, ``1e-06``), integral floats as integers. Not
    :func:`fmt_num`'s 3 digits, which showed the sweep points total_norm=1.0 and 1.0000001 of
    two different cells both as ``total_norm=1``."""
    if isinstance(value, float) and math.isfinite(value) and not (value.is_integer() and abs(value) < 1e15):
        return repr(value)
    return fmt_num(value)


def fmt_kv(mapping: Any) -> str:
    """``{"norm_type": 2.0, "foreach": True, "total_norm": 1.0000001}`` ->
    ``norm_type=2, foreach=true, total_norm=1.0000001`` (numbers exact: :func:`fmt_exact`)."""
    if not isinstance(mapping, Mapping):
        return as_text(mapping)
    parts = []
    for key, value in mapping.items():
        shown = fmt_exact(value) if isinstance(value, (int, float)) or value is None else as_text(value)
        parts.append("%s=%s" % (key, shown))
    return ", ".join(parts)
