"""The case pages (``cases/<slug>.html``): file names, and the view of one case: its inputs
summary, its cells with per-parameter metrics (after clipping and, for model cases, of the raw
gradients), the declared difference behind each ``known`` cell, and the reproduction snippets."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections import Counter
from types import SimpleNamespace
from typing import Any, Callable, Dict, Iterable, Mapping

from .fmt import fmt_kv, as_list, as_mapping, as_text, fmt_int, fmt_num
from .setups import between, shared_ending, shared_setup


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


#: a declared difference's sentence on a case page: its first words, up to this many characters
#: (each sentence in full on every case page it explains was 1.6 MB of a make report; the
#: mapping page holds it whole, once)
DIFF_HEAD = 120


def _cut(text: str, size: int, slack: int = 0) -> str:
    """``text``, or its first words up to ``size`` characters and an ellipsis when it is longer
    than ``size + slack``."""
    if len(text) <= size + slack:
        return text
    return text[:size].rsplit(" ", 1)[0] + " \u2026"


def differences_index(doc: Mapping) -> Dict[str, Dict[str, str]]:
    out: Dict[str, Dict[str, str]] = {}
    for m in as_list(as_mapping(doc.get("registry")).get("mappings")):
        m = as_mapping(m)
        for d in as_list(m.get("differences")) + as_list(m.get("numerics")):
            d = as_mapping(d)
            if d.get("id"):
                text = as_text(d.get("text"))
                out.setdefault(as_text(d.get("id")), {
                    "text": text, "head": _cut(text, DIFF_HEAD, 20), "source": as_text(m.get("source")), "href": "",
                    "docs_contradict": as_text(d.get("docs_contradict")), "variant": fmt_kv(d.get("variant"))})
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


#: a case with more compared cells than this (the cells that are rows: unsupported and skipped
#: cells are a line per reason) gets one page per backend for its cells (cases/<slug>/
#: <backend>.html) and a case page that links them. 4,320 cells on one page made 887 KB when
#: each was an article; a row is about 110 bytes, so 600 rows and the rest stay near 150 KB,
#: and one page instead of six saved 2 MB of page heads, headings and repeated differences
#: over a make report (175 split cases, 15 at this bound)
CASE_SPLIT = 600


def backend_page(backend: str) -> str:
    """The file name of a backend's part of a split case, inside the case's folder."""
    return case_slugs([backend])[backend] + ".html"


def split_pages(cells: list, slug: str) -> Dict[str, str]:
    """backend -> its page under ``cases/`` for a case of more than ``CASE_SPLIT`` compared
    cells; empty for a case on one page."""
    if sum(1 for c in cells if c["status"] not in FOLDED) <= CASE_SPLIT:
        return {}
    return {c["backend"]: "%s/%s" % (slug, backend_page(c["backend"])) for c in cells}


def snippet_anchor(api: str) -> str:
    """The anchor of an API's reproduction snippet on its case page."""
    return "s-" + re.sub(r"[^A-Za-z0-9._-]", "_", api)


def _shared(snippets: list, home: str) -> Dict[str, Dict[str, Any]]:
    """backend -> the ``setup`` and ``ending`` its snippets share (``setups``; None where they
    share none): each ``lines``, ``text``, ``anchor`` and ``href`` (on the case page, from a
    backend page in ``home``'s folder); ``n``: how many snippets."""
    by_backend: Dict[str, list] = {}
    for snip in snippets:
        by_backend.setdefault(snip["backend"], []).append(snip["text"])
    out = {}
    for backend, texts in by_backend.items():
        parts = {}
        for part, lines in (("setup", shared_setup(texts)), ("ending", shared_ending(texts))):
            anchor = "%s-%s" % (part, _SLUG_BAD.sub("_", backend.lower()))
            parts[part] = {"lines": lines, "text": "\n".join(lines) + "\n", "anchor": anchor,
                           "href": home + "#" + anchor} if lines else None
        if parts["setup"] or parts["ending"]:
            out[backend] = dict(parts, n=len(texts))
    return out


def _between(item: Dict[str, Any], text: str, shared) -> str:
    """``text`` without the setup and ending of its backend it has (``setups.between``); sets
    ``item["setup"]`` and ``item["ending"]`` to those it had (else None)."""
    got = between(text, shared["setup"]["lines"] if shared and shared["setup"] else (),
                  shared["ending"]["lines"] if shared and shared["ending"] else ()) if shared else None
    item["setup"] = shared["setup"] if got and got[1] else None
    item["ending"] = shared["ending"] if got and got[2] else None
    return got[0] if got else text


def _code(snippet: str) -> str:
    """A snippet without its leading comment lines (the cell id it was written for, the case
    file): what two snippets must share to reproduce the same thing."""
    lines = snippet.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(lines)


#: a worked example's reproduction is shown as its API's snippet with other lines when at most
#: this many lines differ
MAX_EDITED_LINES = 6


def _edits(snippet: str, reproduce: str) -> list:
    """The lines that turn ``snippet`` into ``reproduce`` (leading comment lines aside), as
    ``[{"old": lines, "new": lines}, ...]`` in order; [] when they are the same or when more than
    ``MAX_EDITED_LINES`` lines differ (the reproduction is then shown whole)."""
    a, b = _code(snippet).splitlines(), _code(reproduce).splitlines()
    ops = [op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if not ops or sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in ops) > MAX_EDITED_LINES:
        return []
    return [{"old": a[i1:i2], "new": b[j1:j2], "after": a[i1 - 1] if i1 and not a[i1:i2] else ""}
            for _, i1, i2, j1, j2 in ops]


def _spill(text: str, name: str, files: Dict[str, str], folder: str, here: str = "") -> Dict[str, str]:
    """``{"text": ..., "file": ...}``: ``text`` itself, or its head and the file it went to
    (``files``: path under ``cases/`` -> text; ``file``: its link from a page in ``here``, a
    folder under ``cases/`` or '')."""
    if len(text) <= SNIPPET_INLINE:
        return {"text": text, "file": "", "size": ""}
    path = "%s/%s.py" % (folder, _SLUG_BAD.sub("_", name.lower())[:100])
    files[path] = text
    head = "\n".join(text.splitlines()[:SNIPPET_HEAD])
    link = path[len(here) + 1:] if here and path.startswith(here + "/") else path
    return {"text": head + "\n# ...", "file": link, "size": "%d KB" % (len(text.encode("utf-8")) // 1024)}


def case_page_context(group: Dict[str, Any], info: Mapping, diffs: Mapping[str, Dict[str, str]],
                      source_kind: str = "", files: Dict[str, str] = None, slug: str = "",
                      part: str = "", parts: list = (), reasons: Mapping[str, str] = None,
                      root: str = "") -> Dict[str, Any]:
    """``source_kind``: the kind of the case's source API in the registry snapshot
    (``clipping``, ``derivation``, ``training``; '' when unknown). ``files``: where snippets too
    long for the page go (path under ``cases/`` -> text), in the folder ``slug``.

    A split case (``split_pages``) has a page that shows no cells but ``parts`` (one row per
    backend: counts and link) and one page per backend (``part``: its name; ``group`` holds only
    that backend's cells), which lives in the folder ``slug``.

    ``reasons``: a long message -> its place on a reasons page (from the report's root, which
    is ``root`` from this page); a folded entry of such a message links it there."""
    files = {} if files is None else files
    info = as_mapping(info)
    here = slug if part else ""
    home = "../%s.html" % slug if part else ""  # the page that shows the case's snippets
    recorded = []
    for api, snip in as_mapping(info.get("snippets")).items():
        snip = as_mapping(snip)
        recorded.append({"api": as_text(api), "backend": as_text(snip.get("backend")), "cell": as_text(snip.get("cell")),
                         "text": as_text(snip.get("text")), "anchor": snippet_anchor(as_text(api))})
    by_api = {s["api"]: dict(s) for s in recorded}  # as recorded (the page shows them after their setup)
    # A split case's snippets are on its case page only; each backend's page links its own there
    # (showing them on both made them twice the bytes).
    elsewhere = [dict(s, href=home + "#" + s["anchor"]) for s in recorded if part and s["backend"] == part]
    snippets = [] if part and recorded else recorded
    # Without case-level snippets (a runner that hands over none, as the derivation and training
    # runners did), each target API's first cell that carries its own reproduction stands in.
    from_cells = not recorded
    if from_cells:
        seen = set()
        for c in group["cells"]:
            if c["reproduce"] and c["api"] not in seen:
                seen.add(c["api"])
                snippets.append({"api": c["api"], "backend": c["backend"], "cell": c["id"], "text": c["reproduce"],
                                 "anchor": snippet_anchor(c["api"])})
    snippets.sort(key=lambda x: (x["backend"], x["api"]))
    path = as_text(info.get("path")) or next((as_text(c["raw"].get("path")) for c in group["cells"]
                                            if c.get("raw") and c["raw"].get("path")), "")
    # each backend's setup once (the case page shows it; a backend page links it there)
    shared = _shared(recorded or snippets, home)
    groups = []
    for snip in snippets:
        text = _between(snip, snip["text"], shared.get(snip["backend"]))
        if path:  # the page says the case file once, above (a comment line of every snippet: 0.3 MB)
            text = text.replace("# case file: %s\n" % path, "", 1)
        snip.update(_spill(text, snip["api"], files, slug or "snippets", here))
        if not groups or groups[-1]["backend"] != snip["backend"]:
            groups.append(dict(shared.get(snip["backend"]) or {"setup": None, "ending": None, "n": 0},
                               backend=snip["backend"], snippets=[]))
        groups[-1]["snippets"].append(snip)
    cells = []
    for c in group["cells"]:
        c = dict(c)
        c["diff"] = diffs.get(c["difference"]) if c["difference"] else None
        text, dtext = c["message"]["text"], (c["diff"] or {}).get("text") or ""
        # a message that is some words, then the declared difference's sentence (shown above
        # the cells): those words only
        c["message_head"] = (text[:-len(dtext)].rstrip().rstrip(":") if dtext and len(text) > len(dtext)
                             and text.endswith(dtext) else "")
        c["after"] = [p for p in c["params"] if not p["raw"]]
        c["before"] = [p for p in c["params"] if p["raw"]]
        c["factors"] = any(p["factor"] for p in c["after"])
        c["worsts"] = any(p.get("share") for p in c["after"])
        tol = as_mapping(as_mapping(c.get("raw")).get("tolerance"))
        c["tolerance_short"] = "%s / %s" % (fmt_num(tol.get("rtol")), fmt_num(tol.get("atol"))) if tol else ""
        same = by_api.get(c["api"])
        worked = c["reproduce"] and c["status"] == "known" and same
        identical = worked and _code(same["text"]) == _code(c["reproduce"])
        edits = _edits(same["text"], c["reproduce"]) if worked and not identical else []
        if identical or edits:
            # a worked example whose reproduction is the API's snippet but for its first comment
            # (a link, not the same code twice) or but for a few lines, another dtype or argument
            # (the link and those lines: its reproduction whole was 1.9 MB of a make report's case
            # pages); failures keep theirs inline
            c["repro_same"] = {"href": home + "#" + same["anchor"], "api": same["api"], "cell": same["cell"], "edits": edits}
            c["setup"] = c["ending"] = None
            c["repro"] = None
        else:
            c["repro_same"] = None
            c["setup"] = c["ending"] = None
            # a worked example's reproduction goes between its backend's setup and ending; a
            # failure's stays whole, to paste as it is (the cell a reader is here for)
            whole = c["status"] not in _AGREED
            text = (c["reproduce"] if whole else _between(c, c["reproduce"], shared.get(c["backend"]))) if c["reproduce"] else ""
            c["repro"] = _spill(text, "cell-" + c["anchor"], files, slug or "snippets", here) if text else None
        cells.append(_obj(c))
    reasons = reasons or {}
    layout = _layout(cells, lambda text: root + reasons[text] if text in reasons else "")
    return {"case": group["case"], "title": group["title"] or as_text(info.get("title")),
            "path": path, "source": as_text(info.get("source")),
            "tags": group["tags"] or [as_text(t) for t in as_list(info.get("tags"))],
            "kind": as_text(info.get("kind")), "source_api": group["source_api"],
            "outputs_heading": _OUTPUTS_HEADING.get(source_kind, "After clipping"),
            "has_info": bool(info), "snippets_from_cells": from_cells and bool(snippets),
            "inputs": _inputs_view(info.get("inputs")), "snippets": snippets, "snippet_groups": groups,
            "snippets_elsewhere": elsewhere,
            "cells": cells,
            "counts": Counter(c.status for c in cells) if not parts else
            sum((p["counts"] for p in parts), Counter()),
            "part": part, "part_of": slug, "parts": list(parts), "root": root, **layout}


#: statuses whose cells are rows (but the first ``known`` cell of each difference); a compared
#: cell of any other status (mismatch, error, unstable) is shown in full, with its reproduction whole
_AGREED = ("match", "known")
#: statuses folded into one entry per reason (the message): nothing was compared
FOLDED = ("unsupported", "skipped")


def cell_anchor(index: int, status: str, message: str) -> str:
    """A cell's anchor on its case page: ``c<index>``, or for a folded cell the anchor of its
    (status, reason) entry, which lists counts per API instead of every cell (1,448 listed cells
    made 424 KB of one page)."""
    if status in FOLDED:
        return "f-" + hashlib.sha1(("%s\0%s" % (status, message)).encode("utf-8", "replace")).hexdigest()[:10]
    return "c%d" % index


def _row_label(c) -> str:
    """A row's cell id without what its group headings already say (case, API)."""
    head = "%s[%s-" % (c.case, c.api)
    if c.id.startswith(head) and c.id.endswith("]"):
        return c.id[len(head):-1]
    return c.id[len(c.case):] if c.id.startswith(c.case + "[") else c.id


def _shown(c) -> tuple:
    """What a row shows of a cell besides its label."""
    return (c.status, c.difference, c.max_abs_err, c.max_rel_err, c.mismatched, c.tolerance_short,
            (c.total_norm.got, c.total_norm.want) if c.total_norm else None,
            (c.factor.got, c.factor.want) if c.factor else None, c.conflict)


def _compiled_twins(rows: list) -> Dict[int, list]:
    """id(eager cell) -> the compiled cells whose rows would read as its own (same API, dtype,
    device, sweep point and host; every number shown the same): its row carries their anchors
    instead (23,429 of the 24,352 compiled rows of a make report, about 1.6 MB)."""
    def twin_key(c):
        device, _, mode = c.device.partition(" ")
        return (c.api, c.dtype, device, c.sweep, c.host), mode or "eager"
    eager = {}
    for c in rows:
        key, mode = twin_key(c)
        if mode == "eager":
            eager[key] = c
    out: Dict[int, list] = {}
    for c in rows:
        key, mode = twin_key(c)
        e = eager.get(key)
        if mode == "compiled" and e is not None and _shown(e) == _shown(c):
            out.setdefault(id(e), []).append(c)
    return out


#: an API's rows of one dtype, device and tolerance get a heading that says those once when
#: there are at least this many (a sweep's points; each row then names its point only)
POINT_ROWS = 3


def _points(rows: list) -> list:
    """An API's rows in runs: ``{"head": "float32-cpu-compiled", "tolerance": ..., "rows": [...]}``
    for the rows of one dtype, device (and mode) and tolerance when they are ``POINT_ROWS`` or more
    (each row's ``label`` then its sweep point only, ``rest``), else ``{"head": "", "rows": [one
    row]}``: the single rows first, then the runs, each in the order its rows came. Saves a row
    its dtype-device prefix and tolerance cell, about 40 of its ~160 bytes."""
    runs: Dict[tuple, list] = {}
    for r in rows:
        c = r.cell
        head = "%s-%s" % (c.dtype, c.device.replace(" ", "-"))
        rest = r.label[len(head) + 1:] if r.label.startswith(head + "-") else None
        key = (head, c.tolerance_short) if rest else (None, id(r))
        runs.setdefault(key, []).append(SimpleNamespace(cell=c, label=r.label, rest=rest, also=r.also))
    out, single = [], []
    for (head, tol), rs in runs.items():
        if head is not None and len(rs) >= POINT_ROWS:
            out.append({"head": head, "tolerance": tol, "rows": rs})
        else:
            single.extend({"head": "", "tolerance": "", "rows": [r]} for r in rs)
    return single + out  # a row of its own after a run would read as one of it


#: a folded line's reason, when its whole text is on a reasons page: its first this many characters
FOLDED_HEAD = 80


def _folded_entry(status: str, cls: str, message, cells: list, reason: str = "") -> Dict[str, Any]:
    """One (status, reason) entry, one line: per backend, its APIs with their number of cells
    and, for ``unsupported``, the dtypes, devices and parameter sets they span (a ``skipped``
    reason is the device's absence: every dtype of the API, on that device). ``reason``: the
    link to the message in full on a reasons page ('' for a message the line holds whole)."""
    per: Dict[tuple, Dict[str, Any]] = {}
    for c in cells:
        e = per.setdefault((c.backend, c.api), {"backend": c.backend, "api": c.api, "n": 0,
                                                "dtypes": set(), "devices": set(), "sweeps": set()})
        e["n"] += 1
        e["dtypes"].add(c.dtype)
        e["devices"].add(c.device)
        if c.sweep:
            e["sweeps"].add(c.sweep)
    backends: Dict[str, list] = {}
    for (backend, api), e in sorted(per.items()):
        detail = ""
        if status != "skipped":
            detail = "; ".join(x for x in (", ".join(sorted(d for d in e["dtypes"] if d)),
                                           ", ".join(sorted(d for d in e["devices"] if d)),
                                           "%d parameter sets" % len(e["sweeps"]) if len(e["sweeps"]) > 1 else "") if x)
        backends.setdefault(backend, []).append({"api": api, "n": e["n"], "detail": detail})
    summary = message.summary or "(no message)"
    if reason:  # the whole text is a click away
        summary = _cut(summary, FOLDED_HEAD)
    return {"status": status, "cls": cls, "message": message, "summary": summary, "anchor": cells[0].anchor, "reason": reason,
            "n": len(cells), "backends": [{"backend": b, "apis": a} for b, a in backends.items()]}


def _layout(cells: list, reason_href: Callable[[str], str] = lambda text: "") -> Dict[str, Any]:
    """How a case page shows its cells, problems first and light (docs/report.md, "Case pages"):
    - ``full``: every mismatch, error or unstable cell, then the first ``known`` cell of each
      declared difference (its worked example), with every field;
    - ``rows``: every other compared cell (the rest of ``known``, then ``match``) as one table row
      (errors, tolerance, returned norm, clipping factor) under the heading of its status and
      difference (``row_groups``);
    - ``folded``: ``unsupported`` and ``skipped`` cells, one line per (status, reason): per
      backend and API, how many cells (and which dtypes and devices); a long reason's whole
      text is on a reasons page (``reason_href``), the line keeps its first line;
    - ``differences``: each declared difference shown once, with its sentence.
    Every compared cell keeps its anchor (``c<i>``) wherever it is shown; a folded cell's anchor
    is its entry's (``cell_anchor``)."""
    full, rows, folded, differences = [], [], {}, {}
    example = set()
    for c in cells:
        if c.status in FOLDED:
            folded.setdefault((c.status, c.message.text), []).append(c)
            continue
        if c.difference and c.difference not in differences:
            differences[c.difference] = c.diff
        if c.status not in _AGREED:
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
    twins = _compiled_twins(rows)
    hidden = {id(t) for ts in twins.values() for t in ts}
    for c in rows:
        g = groups.setdefault((c.status, c.difference), {"status": c.status, "cls": c.cls, "difference": c.difference,
                                                         "n": 0, "apis": {}, "cells": {}})
        g["n"] += 1
        g["cells"][c.api] = g["cells"].get(c.api, 0) + 1
        if id(c) not in hidden:  # a compiled cell that reads as its eager twin is on the twin's row
            g["apis"].setdefault(c.api, []).append(SimpleNamespace(cell=c, label=_row_label(c), also=twins.get(id(c), [])))
    row_groups = [dict(g, apis=[{"api": api, "rows": r, "n": g["cells"][api], "points": _points(r)}
                                for api, r in g["apis"].items()]) for g in groups.values()]
    entries = [_folded_entry(st, cs[0].cls, cs[0].message, cs, reason_href(text) if cs[0].message.long else "")
               for (st, text), cs in folded.items()]
    return {"full": full, "rows": rows, "row_groups": row_groups,
            "rows_have_norms": any(c.total_norm or c.factor for c in rows),
            "folded": sorted(entries, key=lambda f: (f["status"], -f["n"])),
            "differences": [{"id": k, "diff": v} for k, v in differences.items()]}
