"""The matrix page's data: every cell as a compact row for ``matrix.js``, carried in a
``<script type="application/json">`` block (no fetch, so the page works from ``file://``).
Repeated strings go into per-column tables and rows hold indices, so 20,000 cells stay about
1.5 MB."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Mapping

from markupsafe import Markup

from .cases import backend_page


def _json_number(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def script_json(data: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>``, ``&`` (and the JS
    line separators) escaped as \\u sequences, so no string can close the element or open a
    comment; strict JSON (no NaN) so ``JSON.parse`` reads it."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return Markup(text)


def matrix_data(cells: List[Dict[str, Any]], slugs: Mapping[str, str],
                tags_by_case: Mapping[str, List[str]]) -> Dict[str, Any]:
    """Compact matrix rows: repeated strings go into per-column tables, rows hold indices."""
    tables: Dict[str, Dict[str, int]] = {k: {} for k in ("api", "backend", "dtype", "device", "status",
                                                           "difference", "message", "host", "source")}

    def idx(table: str, value: str) -> int:
        t = tables[table]
        if value not in t:
            t[value] = len(t)
        return t[value]

    case_index: Dict[str, int] = {}
    cases = []
    rows = []
    for c in cells:
        cid = c["case"]
        if cid not in case_index:
            case_index[cid] = len(cases)
            # [id, title, page stem, tags, 1 when the case has a page per backend (cases.split_pages)]
            cases.append([cid, c["title"], slugs.get(cid, ""), tags_by_case.get(cid, c["tags"]),
                          1 if c.get("href", "").count("/") > 1 else 0])
        raw = c["raw"]
        rows.append([case_index[cid], idx("api", c["api"]), idx("backend", c["backend"]), idx("dtype", c["dtype"]),
                     idx("device", c["device"]), idx("status", c["status"]), idx("difference", c["difference"]),
                     _json_number(raw.get("max_rel_err")), _json_number(raw.get("max_abs_err")),
                     _json_number(raw.get("mismatched")), c["sweep"], idx("message", c["message"]["summary"]),
                     c["anchor"], idx("host", c["host"]), 1 if c["conflict"] else 0,
                     idx("source", c["source_api"])])
    out = {k: list(t) for k, t in tables.items()}
    out["backend_page"] = [backend_page(b) for b in out["backend"]]  # a split case's page per backend
    return {"columns": ["case", "api", "backend", "dtype", "device", "status", "difference", "max_rel_err",
                        "max_abs_err", "mismatched", "sweep", "message", "anchor", "host", "conflict", "source"],
            "tables": out, "cases": cases, "rows": rows}
