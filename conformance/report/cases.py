"""The case pages (``cases/<slug>.html``): file names, and the view of one case: its inputs
summary, its cells with per-parameter metrics (after clipping and, for model cases, of the raw
gradients), the declared difference behind each ``known`` cell, and the reproduction snippets."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from types import SimpleNamespace
from typing import Any, Dict, Iterable, Mapping

from .fmt import fmt_kv, as_list, as_mapping, as_text, fmt_int, fmt_num


_SLUG_BAD = re.compile(r"[^a-z0-9._-]")


def case_slugs(case_ids: Iterable[str]) -> Dict[str, str]:
    """Case id -> file name stem under ``cases/``. Ids of the case contract (``[a-z0-9._-]+``)
    are kept; anything else (a hand-edited or hostile document) is reduced to that set and
    disambiguated by a hash, so a file name never carries a path separator or markup."""
    out: Dict[str, str] = {}
    taken: set = set()
    for cid in case_ids:
        if cid in out:
            continue
        base = _SLUG_BAD.sub("_", cid.lower())[:80].lstrip(".") or "case"
        slug = base
        if slug != cid or slug in taken:
            slug = "%s-%s" % (base, hashlib.sha1(cid.encode("utf-8", "replace")).hexdigest()[:10])
        while slug in taken:
            slug += "_"
        taken.add(slug)
        out[cid] = slug
    return out


def _inputs_view(raw: Any) -> Dict[str, Any]:
    info = as_mapping(raw)
    out = []
    for t in as_list(info.get("tensors")):
        t = as_mapping(t)
        shape = t.get("shape")
        out.append({"name": as_text(t.get("name")),
                    "shape": ("[" + ", ".join(fmt_int(n) for n in shape) + "]") if isinstance(shape, list) else "none (no gradient)",
                    "min": fmt_num(t.get("min"), 6), "max": fmt_num(t.get("max"), 6), "mean": fmt_num(t.get("mean"), 6),
                    "l2": fmt_num(t.get("l2"), 8), "nan": fmt_int(t.get("nan")), "inf": fmt_int(t.get("inf")),
                    "zeros": fmt_int(t.get("zeros")), "size": fmt_int(t.get("size"))})
    return {"dtype": as_text(info.get("dtype")), "tensors": out}


def differences_index(doc: Mapping) -> Dict[str, Dict[str, str]]:
    out: Dict[str, Dict[str, str]] = {}
    for m in as_list(as_mapping(doc.get("registry")).get("mappings")):
        m = as_mapping(m)
        for d in as_list(m.get("differences")) + as_list(m.get("numerics")):
            d = as_mapping(d)
            if d.get("id"):
                out.setdefault(as_text(d.get("id")), {
                    "text": as_text(d.get("text")), "docs_contradict": as_text(d.get("docs_contradict")),
                    "variant": fmt_kv(d.get("variant")), "mapping": "%s \u2192 %s" % (as_text(m.get("source")), as_text(m.get("target")))})
    return out


def _obj(value: Any) -> Any:
    """View dicts as attribute objects for the case pages' template: Jinja's ``x.name`` tries
    ``getattr`` before ``[]``, and the failing getattr on a dict is what made 20,000 cells'
    pages slow (measured: about half the rendering time)."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _obj(v) for k, v in value.items() if k != "raw"})
    if isinstance(value, list):
        return [_obj(v) for v in value]
    return value


#: heading of a cell's per-output table, by the oracle module of the case's source API (a
#: derivation cell compares gradients and returned values, no clipping happens in it)
_OUTPUTS_HEADING = {"derivation": "Gradient or returned value", "training": "After the training steps"}


#: a reproduction snippet longer than this (its inputs as numpy literals) is written to a file of
#: its own beside the case page, which shows its first ``SNIPPET_HEAD`` lines and links the file
SNIPPET_INLINE = 16 * 1024
SNIPPET_HEAD = 30


def _spill(text: str, name: str, files: Dict[str, str], folder: str) -> Dict[str, str]:
    """``{"text": ..., "file": ...}``: ``text`` itself, or its head and the file it went to
    (``files``: path under ``cases/`` -> text)."""
    if len(text) <= SNIPPET_INLINE:
        return {"text": text, "file": "", "size": ""}
    path = "%s/%s.py" % (folder, _SLUG_BAD.sub("_", name.lower())[:100])
    files[path] = text
    head = "\n".join(text.splitlines()[:SNIPPET_HEAD])
    return {"text": head + "\n# ...", "file": path, "size": "%d KB" % (len(text.encode("utf-8")) // 1024)}


def case_page_context(group: Dict[str, Any], info: Mapping, diffs: Mapping[str, Dict[str, str]],
                      source_kind: str = "", files: Dict[str, str] = None, slug: str = "") -> Dict[str, Any]:
    """``source_kind``: the kind of the case's source API in the registry snapshot
    (``clipping``, ``derivation``, ``training``; '' when unknown). ``files``: where snippets too
    long for the page go (path under ``cases/`` -> text), in the folder ``slug``."""
    files = {} if files is None else files
    info = as_mapping(info)
    snippets = []
    for api, snip in as_mapping(info.get("snippets")).items():
        snip = as_mapping(snip)
        snippets.append({"api": as_text(api), "backend": as_text(snip.get("backend")), "cell": as_text(snip.get("cell")),
                         "text": as_text(snip.get("text"))})
    # Without case-level snippets (a runner that hands over none, as the derivation and training
    # runners did), each target API's first cell that carries its own reproduction stands in.
    from_cells = not snippets
    if from_cells:
        seen = set()
        for c in group["cells"]:
            if c["reproduce"] and c["api"] not in seen:
                seen.add(c["api"])
                snippets.append({"api": c["api"], "backend": c["backend"], "cell": c["id"], "text": c["reproduce"]})
    snippets.sort(key=lambda x: (x["backend"], x["api"]))
    for snip in snippets:
        snip.update(_spill(snip["text"], snip["api"], files, slug or "snippets"))
    cells = []
    for c in group["cells"]:
        c = dict(c)
        c["diff"] = diffs.get(c["difference"]) if c["difference"] else None
        c["after"] = [p for p in c["params"] if not p["raw"]]
        c["before"] = [p for p in c["params"] if p["raw"]]
        c["factors"] = any(p["factor"] for p in c["after"])
        c["worsts"] = any(p.get("share") for p in c["after"])
        tol = as_mapping(as_mapping(c.get("raw")).get("tolerance"))
        c["tolerance_short"] = "%s / %s" % (fmt_num(tol.get("rtol")), fmt_num(tol.get("atol"))) if tol else ""
        c["repro"] = _spill(c["reproduce"], "cell-" + c["anchor"], files, slug or "snippets") if c["reproduce"] else None
        cells.append(_obj(c))
    layout = _layout(cells)
    path = as_text(info.get("path")) or next((as_text(c["raw"].get("path")) for c in group["cells"]
                                            if c.get("raw") and c["raw"].get("path")), "")
    return {"case": group["case"], "title": group["title"] or as_text(info.get("title")),
            "path": path, "source": as_text(info.get("source")),
            "tags": group["tags"] or [as_text(t) for t in as_list(info.get("tags"))],
            "kind": as_text(info.get("kind")), "source_api": group["source_api"],
            "outputs_heading": _OUTPUTS_HEADING.get(source_kind, "After clipping"),
            "has_info": bool(info), "snippets_from_cells": from_cells and bool(snippets),
            "inputs": _inputs_view(info.get("inputs")), "snippets": snippets, "cells": cells,
            "counts": Counter(c.status for c in cells), **layout}


#: statuses whose cells are shown in full (every field, per-parameter tables, the reproduction)
_FULL = ("mismatch", "error", "unstable")
#: statuses folded into one line per reason (the message): nothing was compared
_FOLDED = ("unsupported", "skipped")


def _layout(cells: list) -> Dict[str, Any]:
    """How a case page shows its cells, problems first and light (docs/report.md, "Case pages"):
    - ``full``: every mismatch, error or unstable cell, then the first ``known`` cell of each
      declared difference (its worked example), with every field;
    - ``rows``: every other compared cell (the rest of ``known``, then ``match``) as one table row
      (errors, tolerance, returned norm, clipping factor) under the heading of its status and
      difference (``row_groups``);
    - ``folded``: ``unsupported`` and ``skipped`` cells, one entry per (status, reason), listing
      its cells;
    - ``differences``: each declared difference shown once, with its sentence.
    Every cell keeps its anchor (``c<i>``) wherever it is shown."""
    full, rows, folded, differences = [], [], {}, {}
    example = set()
    for c in cells:
        if c.status in _FOLDED:
            key = (c.status, c.message.text)
            folded.setdefault(key, {"status": c.status, "cls": c.cls, "message": c.message, "cells": []})["cells"].append(c)
            continue
        if c.difference and c.difference not in differences:
            differences[c.difference] = c.diff
        if c.status in _FULL or c.status not in ("match", "known"):
            full.append(c)
        elif c.status == "known" and c.difference not in example:
            example.add(c.difference)
            full.append(c)
        else:
            rows.append(c)
    order = {s: i for i, s in enumerate(("mismatch", "error", "unstable", "known"))}
    full.sort(key=lambda c: order.get(c.status, -1))
    rows.sort(key=lambda c: c.status != "known")
    groups: Dict[tuple, Dict[str, Any]] = {}
    for c in rows:
        groups.setdefault((c.status, c.difference), {"status": c.status, "cls": c.cls, "difference": c.difference,
                                                     "cells": []})["cells"].append(c)
    return {"full": full, "rows": rows, "row_groups": list(groups.values()),
            "rows_have_norms": any(c.total_norm or c.factor for c in rows), "folded": sorted(folded.values(), key=lambda f: (f["status"], -len(f["cells"]))),
            "differences": [{"id": k, "diff": v} for k, v in differences.items()]}
