"""An audit of the rendered report against the results document it was rendered from, as a
migrating engineer reads it: every internal link resolves, nothing is remote, every page has
its Content-Security-Policy, the numbers of every cell on its case page and in the matrix's data
block are the document's (as :func:`fmt_num` formats them), the overview cards count what the
document holds, and the mapping page's evidence ("Shown by N cells", largest errors, "declared
but not shown") is what the document shows. Plus regressions of what the audit of a full run
(torch, MindSpore, Paddle on CPU; 14,834 cells) found wrong on the mapping page.

``CONFORMANCE_AUDIT_RESULTS=path/results.json`` also audits the report of a real run.
"""

from __future__ import annotations

import html as htmlmod
import json
import math
import os
import re
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance import registry, results
from conformance.report import render
from conformance.report.cases import backend_page
from conformance.report.fmt import fmt_int, fmt_num
from conformance.spec.load import load_paths

GLOBAL = "torch.nn.utils.clip_grad_norm_"


# --------------------------------------------------------------------------- the audit


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links, self.ids, self.scripts, self.csp = [], set(), 0, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("href", "src", "action", "srcset", "xlink:href", "poster", "data"):
            if key in a:
                self.links.append(a[key])
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = a.get("content")
        if tag == "script":
            self.scripts += 1


def _plain(fragment: str) -> str:
    return " ".join(htmlmod.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _max(values, finite_only=False):
    keep = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)
            and not (finite_only and math.isinf(v))]
    return max(keep) if keep else None


def _where(r: dict) -> str:
    """A cell's device as the report's columns and cards read it: a compiled cell's is
    "cpu compiled" (render.where)."""
    return r["device"] + (" " + r["mode"] if r.get("mode") not in (None, "", "eager") else "")


def _audit_row(r: dict, row: dict) -> list:
    """A cell shown as a row: its group's status and difference, its numbers."""
    bad = []
    if (row["status"], row["difference"]) != (r["status"], r.get("difference") or ""):
        bad.append(f"{r['id']}: row under {row['status']}/{row['difference']!r}, want {r['status']}/{r.get('difference')!r}")
    tol = r.get("tolerance")
    want = [fmt_num(r.get("max_abs_err")), fmt_num(r.get("max_rel_err")), fmt_int(r.get("mismatched")),
            "%s / %s" % (fmt_num(tol.get("rtol")), fmt_num(tol.get("atol"))) if isinstance(tol, dict) else ""]
    for key in ("total_norm", "factor"):
        v = r.get(key)
        shown = isinstance(v, dict) and (key == "factor" or v.get("got") is not None or v.get("want") is not None)
        got_, want_ = (fmt_num(v.get("got"), 8), fmt_num(v.get("want"), 8)) if shown else ("", "")
        want += [got_, "=" if shown and want_ == got_ else want_]  # "=": the oracle's reads the same
    if len(row["tds"]) == 5:  # a table of rows none of which has a norm or a factor
        want = want[:4] if want[4:] == ["", "", "", ""] else want
    if row["tds"][1:] != want:
        bad.append(f"{r['id']}: row {row['tds'][1:]}, want {want}")
    return bad


def _mapping_pages(out: Path) -> str:
    """mapping.html and its pages per source API, one after the other."""
    return "".join(f.read_text(encoding="utf-8") for f in [out / "mapping.html"] + sorted((out / "mapping").glob("*.html")))


def _fold(r: dict, entries: list, counted: dict, placed: dict) -> list:
    """A cell that ran nothing is counted, on its case page, in the entry of its status whose
    reason is its message, on the line of its backend and API, with its dtype: the cell is
    counted there (``counted``), and each line's count is checked against the document after."""
    message = r.get("message") or ""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    for e in entries:
        line = e["lines"].get((r["backend"], r["api"]))
        # the reason in full: the entry's <pre> when the message is long, else its summary
        if e["status"] == r["status"] and line and e["message"] in (message, message.strip() or "(no message)"):
            if line["dtypes"] is not None and r["dtype"] not in line["dtypes"]:
                return [f"{r['id']}: dtype {r['dtype']} not among {line['dtypes']}"]
            counted[id(line)] = counted.get(id(line), 0) + 1
            placed[r["id"]] = {"file": e["file"], "anchor": e["anchor"]}
            return []
    return [f"{r['id']}: no {r['status']} entry on its case page has its message {first[:80]!r} "
            f"and a line for {r['backend']} {r['api']}"]


def audit(doc: dict, out: Path) -> list:
    """Every disagreement between the report in ``out`` and ``doc``, as text (empty: none)."""
    bad = []
    res = doc["results"]
    pages = {}
    for f in ([out / "index.html", out / "matrix.html", out / "mapping.html"] + sorted((out / "mapping").glob("*.html"))
              + sorted((out / "matrix").glob("*.html")) + sorted((out / "cases").rglob("*.html"))
              + sorted((out / "reasons").glob("*.html"))):
        text = f.read_text(encoding="utf-8")
        parsed = _Page()
        parsed.feed(text)
        pages[f.resolve()] = (parsed, text)

    # 1. links resolve to files and anchors of the output directory; nothing is remote
    for f, (p, text) in pages.items():
        if not p.csp or "default-src 'none'" not in p.csp:
            bad.append(f"{f.name}: no Content-Security-Policy")
        if len(re.findall(r"<script\b", text, re.I)) != p.scripts:
            bad.append(f"{f.name}: a <script in text that is not one of the page's scripts")
        for link in p.links:
            if (link or "").startswith("data:image/png;base64,"):  # a plot's rasterized points
                continue
            if re.match(r"^[a-z][a-z0-9+.-]*:", link or "", re.I):
                bad.append(f"{f.name}: remote or scheme URL {link[:80]!r}")
                continue
            path, _, frag = (link or "").partition("#")
            target = (f.parent / path).resolve() if path else f
            if not target.is_file():
                bad.append(f"{f.name}: broken link {link!r}")
            elif frag and (target not in pages or frag not in pages[target][0].ids):
                bad.append(f"{f.name}: broken anchor {link!r}")

    # 2. every cell on its case page, in one of three forms (docs/report.md, "Case pages"): in
    # full (an article: status, errors, returned norm, factor, difference, params), as a row under
    # its status and difference, or folded under its status and reason (nothing was compared)
    shown, rows, folded = {}, {}, {}
    by_id = {r["id"]: r for r in res}
    for f in (out / "cases").rglob("*.html"):
        html = f.read_text(encoding="utf-8")
        case = htmlmod.unescape(re.search(r"<dt>Case id</dt><dd><code>(.*?)</code>", html, re.S).group(1))

        def cell_id(text: str) -> str:
            return case + text if text.startswith("[") else text

        for head, body in re.findall(r'<tbody data-status="[^"]*" data-difference="[^"]*"><tr class="grp"><th[^>]*>(.*?)</th></tr>(.*?)</tbody>',
                                     html, re.S):
            status = _plain(head).split(" ")[0]
            diff = (re.search(r'<a href="#d-[^"]*">(.*?)</a>', head) or [None, ""])[1]
            # rows under an API heading: a row names its cell without the case and the API
            for api, part in re.findall(r'<tr class="api"><th[^>]*><code>(.*?)</code>.*?</th></tr>(.*?)(?=<tr class="api"|$)',
                                        body, re.S):
                api = _plain(api)
                # a row without its end tags: a <td> ends at the next <td> or the row's end; a
                # run of rows under a heading of their dtype-device and tolerance names its point only
                point, tol, left = None, None, 0  # the heading over the next ``left`` rows
                for kind, attr, tr in re.findall(r'<tr (id|class)="([^"]+)">(.*?)(?=<tr[ >]|$)', part, re.S):
                    if kind == "class":  # class="pt": "<th>float32-cpu <span>(tolerance T; n)</span></th>"
                        point, tol, left = re.match(r"<th[^>]*>(.*?) <span class=\"muted\">\(tolerance (.*?); (\d+)\)</span></th></tr>",
                                                    tr.strip(), re.S).groups()
                        point, tol, left = _plain(point), _plain(tol).replace("none", ""), int(left)
                        continue
                    anchor = attr
                    # "= compiled": the compiled twin of this (eager) row, every number the same
                    twins = re.findall(r'<i id="([^"]+)"></i>', tr)  # (style.css writes "= compiled" after each)
                    tr = re.sub(r'<i id="[^"]+"></i>', "", tr)
                    tds = [_plain(td) for td in re.findall(r"<td[^>]*>(.*?)(?=<td[ >]|</td>|$)", tr.strip(), re.S)]
                    if left:  # under its heading: the row's own tolerance cell is empty
                        tds[0], tds[4], left = point + "-" + tds[0], tol if tds[4] == "" else "(in the row too)", left - 1
                    label = tds[0].split(" on ")[0]
                    full = (label if label.startswith(case) else case + label if label.startswith("[")
                            else "%s[%s-%s]" % (case, api, label))
                    rows[full] = dict(status=status, difference=_plain(diff), tds=tds, file=f.relative_to(out / "cases").as_posix(), anchor=anchor)
                    for twin in twins:  # the compiled cell's id: "-compiled" after the eager one's device
                        e = by_id.get(full)
                        if e is None:
                            bad.append(f"{full}: a compiled twin {twin} on a row of no cell")
                            continue
                        head_ = "%s[%s-%s-%s" % (case, e["api"], e["dtype"], e["device"])
                        rows[head_ + "-compiled" + full[len(head_):]] = dict(rows[full], anchor=twin)
        entries = folded.setdefault(case, [])
        # one line per (status, reason): "<badge> N cells: <reason> [whole text] — backend: <api> n
        # (dtypes; devices), ...; backend: ..." (the whole text of a long reason on a reasons page)
        for anchor, status, line_ in re.findall(r'<div class="folded" id="([^"]+)" data-status="([^"]*)">(.*?)</div>', html, re.S):
            reason = _plain(re.search(r'<span class="reason">(.*?)</span>', line_, re.S).group(1))
            link = re.search(r'<span class="reason">.*?</span> <a href="([^"]+)">whole text</a>', line_, re.S)
            pre = re.search(r"<pre>(.*?)</pre>", line_, re.S)
            if link:
                path, _, frag = htmlmod.unescape(link.group(1)).partition("#")
                target = (f.parent / path).read_text(encoding="utf-8")
                pre = re.search(r'<section class="reason" id="%s">.*?<pre>(.*?)</pre>' % re.escape(frag), target, re.S)
            lines = {}
            for chunk in line_.split('<span class="fb">')[1:]:
                backend = _plain(chunk.split(":</span>", 1)[0])
                for api, n, detail in re.findall(r"<code>(.*?)</code> (\d+)(?: \(([^)]*)\))?", chunk, re.S):
                    dtypes = _plain(detail).split("; ")[0].split(", ") if detail else None
                    lines[(backend, _plain(api))] = {"n": int(n), "dtypes": dtypes}
            entries.append(dict(status=status, body=line_, file=f.relative_to(out / "cases").as_posix(), anchor=anchor,
                                lines=lines, message=htmlmod.unescape(pre.group(1)) if pre else reason))
        for anchor, body in re.findall(r'<article class="cell[^"]*" id="([^"]+)">(.*?)</article>', html, re.S):
            dts = {_plain(a): _plain(b) for a, b in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", body, re.S)}
            tables = {}
            for cls, tb in re.findall(r'<table class="(params[^"]*)">(.*?)</table>', body, re.S):
                rows_ = [[_plain(td) for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
                         for tr in re.findall(r"<tr>(.*?)</tr>", tb, re.S)]
                tables["before" if "raw" in cls.split() else "after"] = [r for r in rows_ if r]
            h3 = re.search(r"<h3>(.*?)</h3>", body, re.S).group(1)  # "<badge> <code>cell id</code>"
            status = _plain(h3).split(" ")[0]
            shown[htmlmod.unescape(re.search(r"<code>(.*?)</code>", h3, re.S).group(1))] = dict(dts=dts, tables=tables, status=status, file=f.relative_to(out / "cases").as_posix(), anchor=anchor)
    counted: dict = {}
    placed: dict = {}  # a folded cell -> its entry (file, anchor)
    for r in res:
        s = shown.get(r["id"])
        if s is None and r["id"] in rows:
            bad.extend(_audit_row(r, rows[r["id"]]))
            continue
        if s is None and r["status"] in ("unsupported", "skipped"):
            bad.extend(_fold(r, folded.get(r["case"], []), counted, placed))
            continue
        if s is None:
            bad.append(f"{r['id']}: on no case page")
            continue
        d = s["dts"]
        want = "max abs %s · max rel %s · mismatched %s" % (
            fmt_num(r.get("max_abs_err")), fmt_num(r.get("max_rel_err")), fmt_int(r.get("mismatched")))
        tol = r.get("tolerance")
        if isinstance(tol, dict):  # every compared cell says what tolerance judged it
            want += " (tolerance rtol %s, atol %s)" % (fmt_num(tol.get("rtol")), fmt_num(tol.get("atol")))
        if d.get("Errors vs oracle") != want:
            bad.append(f"{r['id']}: errors {d.get('Errors vs oracle')!r}, want {want!r}")
        if s["status"] != r["status"]:
            bad.append(f"{r['id']}: status {s['status']!r}, want {r['status']!r}")
        for key, label, tail in (("total_norm", "Returned norm", ""), ("factor", "Clipping factor", " (")):
            v = r.get(key)
            got = d.get(label)
            if isinstance(v, dict) and (key == "factor" or v.get("got") is not None or v.get("want") is not None):
                want = "got %s · oracle %s" % (fmt_num(v.get("got"), 8), fmt_num(v.get("want"), 8))
                if got is None or not (got == want or got.startswith(want + tail)):
                    bad.append(f"{r['id']}: {label} {got!r}, want {want!r}")
            elif got is not None:
                bad.append(f"{r['id']}: {label} shown, but the document has none")
        if (d.get("Difference") or "").split(" ")[0].rstrip(":") != (r.get("difference") or ""):
            bad.append(f"{r['id']}: difference {d.get('Difference')!r}, want {r.get('difference')!r}")
        params = r.get("params") or {}
        want_rows = ([(n, m) for n, m in params.items() if not n.startswith("before clipping: ")]
                     + [(n[len("before clipping: "):], m) for n, m in params.items() if n.startswith("before clipping: ")])
        got_rows = s["tables"].get("after", []) + s["tables"].get("before", [])
        if len(got_rows) != len(want_rows):
            bad.append(f"{r['id']}: {len(got_rows)} parameter rows, want {len(want_rows)}")
            continue
        for row, (name, m) in zip(got_rows, want_rows):
            want = [name, fmt_num(m.get("max_abs_err")), fmt_num(m.get("max_rel_err")),
                    "%s/%s" % (fmt_int(m.get("mismatched")), fmt_int(m.get("size")))]
            if [row[0]] + row[2:5] != want:
                bad.append(f"{r['id']}: parameter row {row}, want {want}")
            f_ = m.get("factor")
            if len(row) > 5 and isinstance(f_, dict) and row[5:7] != [fmt_num(f_.get("got"), 8), fmt_num(f_.get("want"), 8)]:
                bad.append(f"{r['id']}: parameter factor {row[5:7]}, want {f_}")

    for entries in folded.values():  # each line counts exactly the cells it stands for
        for e in entries:
            for (backend, api), line in e["lines"].items():
                if counted.get(id(line), 0) != line["n"]:
                    bad.append(f"{e['file']}: {e['status']} {backend} {api} says {line['n']} cells, "
                               f"the document has {counted.get(id(line), 0)}")

    # 2b. the matrix's grids: per backend, the cells of each (case, API, dtype, device) counted by
    # status exactly as the document has them, and each grid cell's link lands where its case
    # page shows a cell of that case and API, the worst of them
    want_counts = Counter((r["backend"], r["case"], r["api"], r["dtype"], _where(r), r["status"]) for r in res)
    got_counts: Counter = Counter()
    severity = ("error", "mismatch", "unstable", "known", "match", "unsupported", "skipped")
    for grid in sorted((out / "matrix").glob("*.html")):
        blob = json.loads(re.search(r'<script type="application/json" id="g-data">(.*?)</script>',
                                    grid.read_text(encoding="utf-8"), re.S).group(1))
        backend = blob["backend"]
        if grid.name != backend_page(backend):
            bad.append(f"matrix/{grid.name} holds {backend}")
        for ci, ai, di, vi, si, n in blob["counts"]:
            got_counts[(backend, blob["cases"][ci][0], blob["apis"][ai], blob["dtypes"][di], blob["devices"][vi],
                        blob["statuses"][si])] += n
        for ci, ai, anchor in blob["links"]:
            case, api = blob["cases"][ci][0], blob["apis"][ai]
            mine = [r for r in res if (r["backend"], r["case"], r["api"]) == (backend, case, api)]
            worst = min(severity.index(r["status"]) if r["status"] in severity else 0 for r in mine)
            landing = [r for r in mine if (severity.index(r["status"]) if r["status"] in severity else 0) == worst]
            where = [shown.get(r["id"]) or rows.get(r["id"]) or placed.get(r["id"]) for r in landing]
            page = "../cases/%s.html" % blob["cases"][ci][2]  # (grid.js builds it so)
            if not any(w and "../cases/" + w["file"] == page and w["anchor"] == anchor for w in where):
                bad.append(f"matrix/{grid.name}: {case} x {api} links {page}#{anchor}, not a worst cell of it")
    if got_counts != want_counts:
        bad.append(f"matrix: counts differ from the document: {sorted((got_counts - want_counts).items())[:5]} "
                   f"{sorted((want_counts - got_counts).items())[:5]}")

    # 3. overview cards: counts per status and the shares
    index = (out / "index.html").read_text(encoding="utf-8")
    cards = re.findall(r'<div class="card" data-backend="([^"]+)" data-device="([^"]*)">(.*?)</div>\s*</td>', index, re.S)
    if len(cards) != len({(r["backend"], _where(r)) for r in res}):
        bad.append(f"{len(cards)} cards for {len({(r['backend'], _where(r)) for r in res})} backend/device pairs")
    for backend, device, body in cards:
        counts = Counter(r["status"] for r in res if r["backend"] == htmlmod.unescape(backend) and _where(r) == device)
        got = {s: int(n) for s, n in re.findall(r'<span class="b s-\w+">(\w+) (\d+)</span>', body)}
        if got != dict(counts):
            bad.append(f"card {backend}/{device}: {got}, want {dict(counts)}")
        non_skipped = sum(counts.values()) - counts["skipped"]
        text = _plain(body)
        for share, what in ((counts["match"] + counts["known"], "match or known"), (counts["match"], "match without")):
            want = "%.1f%% %s" % (100.0 * share / non_skipped, what) if non_skipped else "n/a " + what
            if want not in text:
                bad.append(f"card {backend}/{device}: no {want!r} in {text!r}")

    # 3b. the mapping page's evidence and flags
    mapping = _mapping_pages(out)
    known = defaultdict(list)
    for r in res:
        if r["status"] == "known":
            known[(r.get("source_api"), r["api"], r.get("difference"))].append(r)
    declared = [(m["source"], m["target"], d["id"]) for m in doc["registry"]["mappings"]
                for d in (m.get("differences") or []) + (m.get("numerics") or [])]
    unshown = [d for d in declared if not known.get(d)]
    summary = re.search(r'<strong class="flag">(\d+)</strong> declared differences shown by no cell', mapping)
    if not summary or int(summary.group(1)) != len(unshown):
        bad.append(f"mapping summary: {summary and summary.group(1)} unshown, want {len(unshown)}")
    if mapping.count("Declared, but no cell of these results showed it.") != len(unshown):
        bad.append(f"mapping: {mapping.count('Declared, but no cell')} unshown flags, want {len(unshown)}")
    bodies = re.findall(r'<tbody class="mp[^"]*" id="map-\d+-([^"]+)" data-target="([^"]+)">(.*?)</tbody>', mapping, re.S)
    if len(bodies) != len(doc["registry"]["mappings"]):
        bad.append(f"mapping: {len(bodies)} mappings, want {len(doc['registry']['mappings'])}")
    for src, tgt, body in bodies:
        src, tgt = htmlmod.unescape(src), htmlmod.unescape(tgt)
        for did, tail in re.findall(r'<tr class="diff[^"]*"><th>[^<]*</th><td><code>([^<]+)</code></td>(.*?)</tr>', body, re.S):
            cells = known.get((src, tgt, htmlmod.unescape(did)), [])
            text = _plain(tail)
            if not cells:
                if "Declared, but no cell" not in text:
                    bad.append(f"{did}: shown by no cell, not flagged")
                continue
            m = re.search(r"Shown by (\d+) cells? \(max rel err (\S+?)(?:, largest finite (\S+))?, max abs err (\S+) against", text)
            want = (str(len(cells)), fmt_num(_max([c.get("max_rel_err") for c in cells])),
                    fmt_num(_max([c.get("max_abs_err") for c in cells])))
            if not m or (m.group(1), m.group(2), m.group(4)) != want:
                bad.append(f"{did} on {src} -> {tgt}: {m and m.groups()}, want {want}")
            linked = [htmlmod.unescape(x) for x in re.findall(r'<a href="[^"]+"><code>([^<]+)</code></a>', tail)]
            cases = sorted({c["case"] for c in cells})
            more = re.search(r" and (\d+) more cases?\.", _plain(tail))
            if linked != cases[:len(linked)] or len(linked) + (int(more.group(1)) if more else 0) != len(cases):
                bad.append(f"{did}: links {linked}, {more and more.group(0)}, want the first of {len(cases)} cases")
        mcells = [r for r in res if r.get("source_api") == src and r["api"] == tgt]
        m = re.search(r'<div class="muted">(\d+) cells(.*?)</div>', body, re.S)
        got = {s: int(n) for s, n in re.findall(r">(\w+) (\d+)</span>", m.group(2))}
        if int(m.group(1)) != len(mcells) or got != dict(Counter(r["status"] for r in mcells)):
            bad.append(f"{src} -> {tgt}: counts {m.group(1)} {got}")
    return bad


# --------------------------------------------------------------------------- documents


def _known_cells(snap: dict) -> list:
    """One known cell per declared difference of the real registry (some with NaN/inf errors),
    matches, one unsupported cell per mapping with gaps, and a model cell with raw gradients."""
    out = []
    for i, m in enumerate(snap["mappings"]):
        backend = m["target"].split(".", 1)[0]
        case = "audit-%d" % (i % 7)
        for j, d in enumerate(m.get("differences") or []):
            if (i + j) % 9 == 0:
                continue  # left unshown: the page must flag it
            rel = [0.5, float("inf"), float("nan"), None, 3e-7][(i + j) % 5]
            out.append({"id": f"{case}[{m['target']}-float32-cpu-{i}-{j}]", "case": case, "title": f"audit {case}",
                        "tags": ["audit"], "source_api": m["source"], "api": m["target"], "backend": backend,
                        "device": "cpu", "dtype": "float32", "sweep": {"m": i, "k": j}, "status": "known",
                        "difference": d["id"], "max_rel_err": rel, "max_abs_err": None if rel is None else 0.125 * j,
                        "mismatched": None if rel is None else j, "message": "", "total_norm": {"got": 1.0 + j, "want": 2.0},
                        "factor": {"got": 0.25, "want": 1 / 3}})
        out.append({"id": f"{case}[{m['target']}-float64-cpu-{i}]", "case": case, "title": f"audit {case}", "tags": ["audit"],
                    "source_api": m["source"], "api": m["target"], "backend": backend, "device": "cpu",
                    "dtype": "float64", "sweep": {"m": i}, "status": "match", "difference": None, "max_rel_err": 1.2345e-9,
                    "max_abs_err": 0.0, "mismatched": 0, "message": "",
                    "params": {"w": {"size": 6, "shape": [2, 3], "mismatched": 0, "max_abs_err": 1e-12,
                                     "max_rel_err": 2.5e-11, "factor": {"got": 0.5, "want": 0.5}},
                               "before clipping: w": {"size": 6, "shape": [2, 3], "mismatched": 1,
                                                      "max_abs_err": 3e-5, "max_rel_err": float("inf")}}})
        if m.get("unsupported"):
            out.append({"id": f"{case}[{m['target']}-bfloat16-cpu-{i}]", "case": case, "title": f"audit {case}",
                        "tags": ["audit"], "source_api": m["source"], "api": m["target"], "backend": backend,
                        "device": "cpu", "dtype": "bfloat16", "sweep": {"m": i}, "status": "unsupported",
                        "difference": None, "max_rel_err": None, "max_abs_err": None, "mismatched": None,
                        "message": m["unsupported"][0]["reason"]})
    return out


def audit_doc() -> dict:
    snap = registry.load().snapshot()
    doc = results.header({"torch": {"version": "2.13.0", "devices": ["cpu"]}}, registry=snap)
    doc["results"] = _known_cells(snap)
    doc["cases"] = {}
    return doc


def _roundtrip(doc: dict, tmp_path: Path) -> dict:
    """Through a results file, as `conformance report` reads it (NaN/inf as JSON reads them)."""
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return results.load(path)


# --------------------------------------------------------------------------- tests


def test_report_agrees_with_its_results_document(tmp_path):
    doc = _roundtrip(audit_doc(), tmp_path)
    assert len(doc["results"]) > 150 and {r["status"] for r in doc["results"]} == {"known", "match", "unsupported"}
    render(doc, tmp_path / "out")
    assert audit(doc, tmp_path / "out") == []


def test_split_case_pages_agree_with_the_document(tmp_path, monkeypatch):
    """A case of more than ``CASE_SPLIT`` compared cells gets a page per backend (cases/<slug>/<backend>.html)
    and a case page that links them with their counts: every cell is still on exactly one page,
    and the matrix, the problems and the pairs link the page that shows it."""
    from conformance.report import cases as case_pages
    monkeypatch.setattr(case_pages, "CASE_SPLIT", 20)
    doc = _roundtrip(audit_doc(), tmp_path)
    render(doc, tmp_path / "out")
    parts = sorted((tmp_path / "out" / "cases").glob("*/*.html"))
    assert len(parts) >= 2, "no case was split"
    assert audit(doc, tmp_path / "out") == []
    main = parts[0].parent.with_suffix(".html").read_text(encoding="utf-8")
    counts = re.findall(r'<td><a href="([^"]+)">([^<]+)</a></td><td class="n">(\d+)</td>', main)
    case = parts[0].parent.name
    want = Counter(r["backend"] for r in doc["results"] if r["case"] == case)
    assert {b: int(n) for _, b, n in counts} == dict(want)
    assert all(href.startswith(case + "/") for href, _, _ in counts)


def test_compiled_cells_that_read_as_their_eager_twins_share_its_row(tmp_path):
    """A compiled cell whose every number shown is its eager twin's is an anchor on the twin's
    row ("= compiled"); one that differs is a row of its own. The audit checks both against the
    document, and catches a twin whose numbers differ."""
    doc = audit_doc()
    twins = []
    for i, r in enumerate([r for r in doc["results"] if r["status"] in ("match", "known")]):
        head = "%s[%s-%s-%s" % (r["case"], r["api"], r["dtype"], r["device"])
        t = dict(r, id=head + "-compiled" + r["id"][len(head):], mode="compiled")
        if i % 2:
            t["max_rel_err"] = (r.get("max_rel_err") or 0.0) * 2 + 1e-3
        twins.append(t)
    doc["results"] += twins
    doc = _roundtrip(doc, tmp_path)
    render(doc, tmp_path / "out")
    pages = "".join(f.read_text(encoding="utf-8") for f in (tmp_path / "out" / "cases").rglob("*.html"))
    shared = len(re.findall(r'<i id="c\d+"></i>', pages))
    assert shared and len(re.findall(r'<tr id="c\d+"><td>[^<]*compiled', pages)) >= 1
    assert audit(doc, tmp_path / "out") == []
    # a twin's numbers changed after the fact: its row (the eager one's) no longer shows them
    eager = {r["id"]: r for r in doc["results"] if r.get("mode") != "compiled"}
    e = next(t for t in doc["results"] if t.get("mode") == "compiled" and t["status"] in ("match", "known")
             and eager[t["id"].replace("-compiled", "", 1)].get("max_rel_err") == t.get("max_rel_err"))
    e["max_rel_err"] = 0.123
    assert any("compiled" in b and "row" in b for b in audit(doc, tmp_path / "out"))


def test_evidence_links_a_few_cases_and_counts_the_rest(tmp_path, monkeypatch):
    """A difference shown by many cases links the first CASES_LINKED and says how many more;
    the audit checks both (here with no link at all)."""
    from conformance.report import mapping
    monkeypatch.setattr(mapping, "CASES_LINKED", 0)  # (each difference of this doc has one case)
    doc = _roundtrip(audit_doc(), tmp_path)
    render(doc, tmp_path / "out")
    assert re.search(r" and \d+ more cases?\.", _mapping_pages(tmp_path / "out"))
    assert audit(doc, tmp_path / "out") == []


def test_audit_catches_a_wrong_number_a_broken_link_and_a_remote_url(tmp_path):
    """The audit is not vacuous: each kind of damage to a rendered report is reported."""
    doc = _roundtrip(audit_doc(), tmp_path)
    out = tmp_path / "out"
    render(doc, out)
    case = sorted((out / "cases").rglob("*.html"))[0]
    text = case.read_text(encoding="utf-8")
    first = re.search(r"max abs (\S+) &middot;", text)
    case.write_text(text.replace(first.group(0), "max abs 42 &middot;", 1)
                    .replace("</main>", '<a href="nowhere.html">x</a><img src="https://example.org/x.png"></main>'),
                    encoding="utf-8")
    index = out / "index.html"
    index.write_text(re.sub(r"(<span class=\"b s-match\">match )(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 1),
                            index.read_text(encoding="utf-8"), count=1), encoding="utf-8")
    problems = "\n".join(audit(doc, out))
    assert "want 'max abs" in problems and "broken link 'nowhere.html'" in problems
    assert "remote or scheme URL 'https://example.org/x.png'" in problems and "card torch/cpu" in problems


@pytest.mark.skipif(not os.environ.get("CONFORMANCE_AUDIT_RESULTS"), reason="CONFORMANCE_AUDIT_RESULTS not set")
def test_report_of_a_real_run_agrees_with_it(tmp_path):
    doc = results.load(Path(os.environ["CONFORMANCE_AUDIT_RESULTS"]))
    render(doc, tmp_path)
    problems = audit(doc, tmp_path)
    assert problems == [], "\n".join(problems[:40])


# ---- regressions of the mapping page (found by the audit of a full run) ----------------------


@pytest.fixture(scope="module")
def mapping_html(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit-report")
    render(audit_doc(), out)
    return _mapping_pages(out)


def _body(html: str, source: str, target: str) -> str:
    hits = re.findall(r'<tbody class="mp[^"]*" id="map-\d+-%s" data-target="%s">(.*?)</tbody>'
                      % (re.escape(source), re.escape(target)), html, re.S)
    assert len(hits) == 1, (source, target)
    return hits[0]


def test_snapshot_keeps_infinite_condition_values():
    """`args.norm_type: [.inf]` reached the results document as [null] (pydantic's JSON mode),
    and the mapping page said "when args.norm_type in None"."""
    snap = registry.load().snapshot()
    json.dumps(snap, allow_nan=False)  # still strict JSON
    diffs = {d["id"]: d for m in snap["mappings"] for d in m["differences"]}
    assert diffs["ms-clip-by-norm-inf-norm-ignores-nan"]["when"] == {"args.norm_type": ["inf"]}
    assert diffs["torch-clip-grad-norm-empty-inf-norm-raises"]["when"]["args.norm_type"] == ["inf", "-inf"]
    composite = next(m for m in snap["mappings"]
                     if (m["source"], m["target"]) == ("torch.nn.utils.get_total_norm", "paddle.nn.utils.clip_grad_norm_"))
    assert composite["args"]["max_norm"] == {"value": "inf"}


def test_mapping_page_spells_infinite_values(mapping_html):
    row = _plain(_body(mapping_html, GLOBAL, "mindspore.ops.clip_by_norm").split("<code>ms-clip-by-norm-inf-norm-ignores-nan</code>", 1)[1])
    assert row.startswith("when args.norm_type in inf ")
    assert "args.norm_type in None" not in _plain(mapping_html)
    # a fixed argument reads as the value (not str.capitalize()'s "Fixed to none")
    composite = _plain(_body(mapping_html, "torch.nn.utils.get_total_norm", "paddle.nn.utils.clip_grad_norm_"))
    assert "max_norm Fixed to inf." in composite


def test_derivation_arguments_are_translated_not_dropped(mapping_html):
    """torch.autograd.grad -> mindspore.grad translates inputs into grad_position/weights
    (derive_args): the page said "No counterpart: dropped" and "Only on the target side"."""
    text = _plain(_body(mapping_html, "torch.autograd.grad", "mindspore.grad"))
    assert "dropped by this mapping" not in text and "Only on the target side" not in text
    assert "inputs - No one-to-one counterpart: translated together with the other arguments" in text
    assert "- grad_position Set from the source call's arguments" in text
    # a clipping mapping without a counterpart still says it plainly
    assert "norm_type - No counterpart: dropped by this mapping." in _plain(
        _body(mapping_html, GLOBAL, "paddle.nn.ClipGradByNorm"))


def test_unsupported_entries_sharing_a_reason_are_one_row_counted_once(mapping_html):
    """paddle.nn.utils.clip_grad_value_ -> torch's has one reason under four conditions: one
    row with the conditions joined by "or", its cells counted once (was four rows, each
    counting every cell of the reason)."""
    body = _body(mapping_html, "paddle.nn.utils.clip_grad_value_", "torch.nn.utils.clip_grad_value_")
    rows = re.findall(r'<tr class="unsup">(.*?)</tr>', body, re.S)
    clamp = [r for r in rows if "torch.clamp converts each bound" in r]
    assert len(clamp) == 1
    assert _plain(clamp[0]).count(" or when dtype in ") == 3
    assert "above 65504, below inf" in _plain(clamp[0])


def test_sweep_points_that_differ_are_shown_apart(tmp_path):
    """mx-threshold-with-norm sweeps total_norm over 1.0 and 1.0000001: at 3 digits both read
    "total_norm=1", so two cells of one case, API and dtype looked identical in the matrix and
    on the case page (their ids and results differ). The grid counts both."""
    base = {"case": "sweep-case", "title": "t", "tags": [], "source_api": GLOBAL, "api": GLOBAL, "backend": "torch",
            "device": "cpu", "dtype": "float32", "status": "match", "difference": None, "max_rel_err": 0.0,
            "max_abs_err": 0.0, "mismatched": 0, "message": ""}
    cells = [dict(base, id="sweep-case[%s-float32-cpu-total_norm=%r]" % (GLOBAL, v), sweep={"total_norm": v, "eps": 1e-06})
             for v in (1.0, 1.0000001)]
    doc = results.header({"torch": {"version": "2.13.0"}}, registry=registry.load().snapshot())
    doc.update(results=cells, cases={})
    render(doc, tmp_path)
    grid = json.loads(re.search(r'id="g-data">(.*?)</script>', (tmp_path / "matrix" / "torch.html").read_text(), re.S).group(1))
    assert [row[-1] for row in grid["counts"]] == [2]  # both sweep points counted in their grid cell
    case = (tmp_path / "cases" / "sweep-case.html").read_text(encoding="utf-8")
    # matched cells are rows under their API, labelled by the rest of their ids, which spell
    # the sweep point exactly
    assert "<code>%s</code>" % GLOBAL in case
    assert "<td>float32-cpu-total_norm=1.0000001<td>" in case
    assert "<td>float32-cpu-total_norm=1.0<td>" in case
    assert audit(doc, tmp_path) == []


# ---- case pages of derivation and training cases ---------------------------------------------


def _derivation_doc(with_info: bool) -> dict:
    base = {"case": "drv", "title": "t", "tags": ["derivation"], "path": "cases/derivation/x.yaml:7",
            "source_api": "mindspore.grad", "device": "cpu", "dtype": "float32", "difference": None,
            "max_rel_err": 0.0, "max_abs_err": 0.0, "mismatched": 0, "message": "",
            "params": {"x": {"size": 3, "shape": [3], "mismatched": 0, "max_abs_err": 0.0, "max_rel_err": 0.0}}}
    cells = [dict(base, id="drv[torch.autograd.grad-float32-cpu]", api="torch.autograd.grad", backend="torch",
                  status="known", difference="torch-grad-nonscalar-raises", params={},
                  reproduce="import torch\n# drv-torch-repro"),
             dict(base, id="drv[paddle.grad-float32-cpu]", api="paddle.grad", backend="paddle", status="match",
                  total_norm={"got": None, "want": None})]
    doc = results.header({"torch": {"version": "2.13.0"}}, registry=registry.load().snapshot())
    doc["results"] = cells
    doc["cases"] = {"drv": {"title": "t", "path": "cases/derivation/x.yaml:7", "source": "seed 003", "kind": "derivation",
                            "snippets": {"paddle.grad": {"backend": "paddle", "cell": cells[1]["id"],
                                                         "text": "import paddle\n# drv-paddle-snippet"}}}} if with_info else {}
    return doc


def test_derivation_case_page_labels_gradients_not_clipping(tmp_path):
    """A derivation cell compares gradients: its table said "After clipping", with two empty
    factor columns, and an API that returns no norm got a "Returned norm: got - oracle -" row."""
    doc = _derivation_doc(True)
    doc["results"][1]["status"] = "mismatch"  # shown in full, with its table of outputs
    render(doc, tmp_path)
    page = (tmp_path / "cases" / "drv.html").read_text(encoding="utf-8")
    assert "<th>Gradient or returned value<th>" in page and "After clipping" not in page
    render(_derivation_doc(True), tmp_path)  # matched: a row, without norm or factor columns
    page = (tmp_path / "cases" / "drv.html").read_text(encoding="utf-8")
    assert "<th>Factor<th>" not in page and "Returned norm" not in page
    assert "drv-paddle-snippet" in page and "recorded no snippet per API" not in page


def test_case_page_without_case_info_falls_back_to_its_cells(tmp_path):
    """Derivation and training cases had no case-level facts in a full run (41 of 218 cases):
    the page said "No reproduction snippet" and blamed schema 1, though the cells carry a path
    and the non-matching ones a reproduction."""
    render(_derivation_doc(False), tmp_path)
    page = (tmp_path / "cases" / "drv.html").read_text(encoding="utf-8")
    assert "<code>cases/derivation/x.yaml:7</code>" in page
    assert "schema 1" not in page and "no case-level facts recorded for this case" in page
    snippets = page.split('<section id="snippets">', 1)[1]
    assert "drv-torch-repro" in snippets and "recorded no snippet per API" in snippets
    assert "No reproduction snippet in these results" not in snippets


@pytest.mark.framework
@pytest.mark.skipif(not __import__("conformance.frameworks", fromlist=["x"]).installed_here("torch"),
                    reason="torch is not installed here")
def test_derivation_and_training_cells_hand_over_case_info(pool):
    """The derivation and training runners attached no case_info: no path, source, kind or
    snippet per API reached the results' ``cases`` map."""
    from conformance.plan import plan
    from conformance.runner import Runner

    root = Path(__file__).resolve().parents[1]
    reg = registry.load()
    loaded = load_paths([root / "cases" / "derivation" / "ms-grad.yaml", root / "cases" / "training" / "train-accumulate-2.yaml"])
    assert not loaded.errors
    p = plan(loaded.cases, reg, backends={"torch"}, device="cpu")
    runner = Runner(reg, pool)
    infos = {}
    for cell in p.cells:
        rec = runner.run(cell)
        if rec.get("case_info"):
            results.merge_case_info(infos, rec["case"], rec["case_info"])
    assert {"derive-ms-grad-unused-input", "train-accumulate-2"} <= set(infos)
    drv, train = infos["derive-ms-grad-unused-input"], infos["train-accumulate-2"]
    assert drv["kind"] == "derivation" and drv["path"].endswith("cases/derivation/ms-grad.yaml:40") and drv["source"]
    assert "grads = torch.autograd.grad(" in drv["snippets"]["torch.autograd.grad"]["text"]
    assert train["kind"] == "training" and "import torch" in train["snippets"]["torch.optim.SGD"]["text"]


def test_mapping_table_starts_with_what_the_api_takes(mapping_html):
    """Seed 000's table opens with "Parameter 1: parameters | x: the gradient mechanism is
    different"; the registry lists only the other arguments, so that row was missing."""
    body = _body(mapping_html, GLOBAL, "mindspore.ops.clip_by_norm")
    first = _plain(re.search(r"<tr><th>Parameters</th>(.*?)</tr>", body, re.S).group(1))
    assert first.startswith("Parameter 1 parameters gradients The gradient mechanism differs")
    assert "e.g. with mindspore.grad" in first
    same = _plain(re.search(r"<tr><th>Parameters</th>(.*?)</tr>", _body(mapping_html, GLOBAL, "paddle.nn.utils.clip_grad_norm_"), re.S).group(1))
    assert same == "Parameter 1 parameters parameters Consistent."
    # not for derivation or training mappings, whose first argument is no gradient
    assert "gradient mechanism" not in _plain(_body(mapping_html, "torch.optim.SGD", "paddle.optimizer.SGD"))
