"""The reasons pages (``reasons/<n>.html``): each long reason that cells ran nothing for
(``unsupported``, ``skipped``) written out once for the whole report, where case pages link it.

A long reason is mostly the framework's exception (a C++ call stack, a to_static trace) below
the suite's sentence; one such reason is shared by the cells of many cases, and written on
each of their case pages it made megabytes. A case page keeps the reason's first line."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Dict, List

from markupsafe import escape

from .cases import FOLDED

#: a reasons page holds reasons until their escaped texts pass this many bytes (pages stay well
#: under the report's 300 KB a page)
PAGE_BYTES = 120_000
#: cases linked from a reason; the rest are counted
MAX_CASES = 3


def anchor(text: str) -> str:
    return "r-" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]


def build(cells: List[Dict[str, Any]], case_href: Callable[[str], str]) -> Dict[str, Any]:
    """``{"pages": {path: [reason, ...]}, "href": {text: path#anchor}}`` for the long messages
    of the folded cells (``message.long``), sorted by status and text so that a reason stays on
    the same page from run to run while the set of reasons does. Each reason: ``anchor``,
    ``status``, ``cls``, ``message`` (the view), ``n`` cells, ``cases`` (the first
    ``MAX_CASES``: ``case``, ``href``), ``more`` (how many other cases)."""
    by_text: Dict[tuple, Dict[str, Any]] = {}
    for c in cells:
        m = c["message"]
        if c["status"] not in FOLDED or not m["long"]:
            continue
        r = by_text.setdefault((c["status"], m["text"]), {
            "anchor": anchor(m["text"]), "status": c["status"], "cls": c["cls"], "message": m,
            "n": 0, "case_ids": {}})
        r["n"] += 1
        r["case_ids"].setdefault(c["case"], None)
    pages: Dict[str, List[Dict[str, Any]]] = {}
    href: Dict[str, str] = {}
    page, used = 1, 0
    for (_, text), r in sorted(by_text.items()):
        size = len(str(escape(text)).encode("utf-8"))
        if used and used + size > PAGE_BYTES:
            page, used = page + 1, 0
        used += size
        ids = list(r.pop("case_ids"))
        r["cases"] = [{"case": cid, "href": case_href(cid)} for cid in ids[:MAX_CASES]]
        r["more"] = len(ids) - len(r["cases"])
        path = "reasons/%d.html" % page
        pages.setdefault(path, []).append(r)
        href.setdefault(text, "%s#%s" % (path, r["anchor"]))
    return {"pages": pages, "href": href}
