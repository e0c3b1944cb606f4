"""The matrix as grids: one page per backend (``matrix/<backend>.html``), rows the cases, columns
that backend's target APIs, each grid cell the cells of that case and API counted by status, in
the colour of the worst. ``matrix.html`` lists the backends. The data travels in a
``<script type="application/json">`` block read by ``grid.js`` (no fetch: the pages work from
``file://``); it holds counts per (case, API, dtype, device, status), not cells: one row per
cell made matrix.html 13 MB on a full run (157,173 cells), the counts make each backend's page
a few hundred rows of small integers per thousand cells.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any, Dict, List, Mapping

from markupsafe import Markup

from ..statuses import PROBLEMS, STATUSES
from .cases import backend_page

#: the worst status first: the colour of a grid cell and the cell its link lands on
SEVERITY = ("error", "mismatch", "unstable", "known", "match", "unsupported", "skipped")


def script_json(data: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>``, ``&`` (and the JS
    line separators) escaped as \\u sequences, so no string can close the element or open a
    comment; strict JSON (no NaN) so ``JSON.parse`` reads it."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return Markup(text)


def _rank(status: str) -> int:
    return SEVERITY.index(status) if status in SEVERITY else 0  # an unknown status is a problem


def backend_file(backend: str) -> str:
    """The grid page of a backend, relative to the report's root."""
    return "matrix/" + backend_page(backend)


def _stem(href: str) -> str:
    """A case page's path as the grid's data holds it: without the ``cases/`` and ``.html`` every
    one has (grid.js puts them back; 17 bytes a case of the largest page, 288 KB)."""
    return href[len("cases/"):-len(".html")] if href.startswith("cases/") and href.endswith(".html") else href


def grid_data(cells: List[Dict[str, Any]], tags_by_case: Mapping[str, List[str]]) -> Dict[str, Dict[str, Any]]:
    """backend -> the data block of its grid page:

    - ``cases``: ``[id, title, link from the page, tag indices, source API index]``;
    - ``apis``, ``dtypes``, ``devices``, ``statuses``, ``sources``, ``tags``: the value tables;
    - ``counts``: ``[case, api, dtype, device, status, n]`` (indices), one per non-empty group;
    - ``links``: ``[case, api, anchor]``: where a grid cell's link lands, its worst cell
      (problems first) on the page that shows it.
    """
    per: Dict[str, list] = defaultdict(list)
    for c in cells:
        per[c["backend"]].append(c)
    out = {}
    for backend, mine in sorted(per.items()):
        tables: Dict[str, Dict[str, int]] = {k: {} for k in ("apis", "dtypes", "devices", "statuses", "sources", "tags")}

        def idx(table: str, value: str) -> int:
            return tables[table].setdefault(value, len(tables[table]))

        case_index: Dict[str, int] = {}
        cases: list = []
        counts: Counter = Counter()
        worst: Dict[tuple, Dict[str, Any]] = {}
        for c in mine:
            cid = c["case"]
            if cid not in case_index:
                case_index[cid] = len(cases)
                cases.append([cid, c["title"], _stem(c["href"]),
                              [idx("tags", t) for t in tags_by_case.get(cid, c["tags"])], idx("sources", c["source_api"])])
            key = (case_index[cid], idx("apis", c["api"]))
            counts[key + (idx("dtypes", c["dtype"]), idx("devices", c["device"]), idx("statuses", c["status"]))] += 1
            if key not in worst or _rank(c["status"]) < _rank(worst[key]["status"]):
                worst[key] = c
        out[backend] = {
            "backend": backend, "cases": cases, **{k: list(t) for k, t in tables.items()},
            "counts": [list(k) + [n] for k, n in sorted(counts.items())],
            "links": [[k[0], k[1], c["anchor"]] for k, c in sorted(worst.items())],
        }
    return out


def backends_summary(cells: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per backend for ``matrix.html``: its cells counted by status, and its page."""
    per: Dict[str, Counter] = defaultdict(Counter)
    for c in cells:
        per[c["backend"]][c["status"]] += 1
    return [{"backend": b, "href": backend_file(b), "n": sum(n.values()),
             "problems": sum(v for s, v in n.items() if s in PROBLEMS or s not in STATUSES),
             "counts": [(s, n[s]) for s in STATUSES if n[s]] + [(s, v) for s, v in n.items() if s not in STATUSES]}
            for b, n in sorted(per.items())]
