"""Render the HTML report from a results document (the design's "Results JSON").

The report is built from the document alone: no framework, no registry, no oracle. Rendering is
two steps:

1. :func:`build_context` turns the (possibly partial, possibly merged) document into a plain
   view model: every value a template reads exists, numbers are already formatted, and
   unknown or missing keys are tolerated. Strings taken from the document stay plain ``str``
   (never ``Markup``), so the template's autoescape escapes all of them.
2. Jinja2 (autoescape on, ``StrictUndefined``) renders ``index.html``, which extends
   ``base.html``. Later pages (the API-mapping report) extend the same base.

The output directory is self-contained and opens offline from disk (no remote script, font or
style; a Content-Security-Policy allows only the pages' own inline scripts, by hash):

- ``index.html``: overview (one card per backend x device x machine, the per-backend table),
  the plots (inline SVG, :mod:`.plots`), problems first, and every cell grouped by case;
- ``matrix.html``: the backends; ``matrix/<backend>.html``: a grid of cases x that backend's
  APIs, counts per status from a JSON data block, filtered and drawn by ``grid.js`` in the
  browser (no fetch: works from ``file://``; :mod:`.grid`);
- ``mapping.html``: the API-mapping tables (:mod:`.mapping`), from the registry snapshot;
- ``cases/<case>.html``: one detail page per case.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import jinja2
from markupsafe import Markup

from . import mapping as mapping_page
from . import modes as modes_mod
from . import pairs as pairs_mod
from . import plots as plot_mod
from . import reasons as reasons_mod
from .cases import case_page_context, case_slugs, cell_anchor, differences_index, split_pages
from .fmt import MISSING, fmt_kv, as_list, as_mapping, as_text, fmt_int, fmt_num
from . import grid as grid_mod
from .. import results as results_doc
from ..statuses import PROBLEMS as PROBLEM_STATUSES
from ..statuses import STATUSES

__all__ = ["STATUSES", "PROBLEM_STATUSES", "render", "render_html", "build_context", "fmt_num"]

#: Every cell status of the design, in display order.
#: Statuses listed in the "problems first" section.
#: Default cap on the cells detailed in the overview's problems section (each one is on its case
#: page and in its backend's grid): 1.5 KB each without a reproduction, 2-5 KB with a real one;
#: 1,000 made a 1.7 MB index.html for the synthetic 20,000-cell run of tests/test_report.py, 100
#: still 312 KB (2026-12-03).
DEFAULT_MAX_PROBLEMS = 40
#: Above this many cells the overview page leaves out its plain table of every cell (the grids
#: per backend, the case index and the case pages hold them all). About 470 bytes a row: 1,182
#: rows made a 644 KB index.html (2026-12-03), 300 keep it well under the report's 300 KB a page.
INDEX_TABLE_MAX = 300
#: Messages longer than this (or with several lines) are folded into a <details>.
SHORT_MESSAGE = 120

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"



#: a number of more than 8 significant digits in a worst-element text (numpy's repr of a float64:
#: ``got 0.34383249282836914``): shown to 8, as every other got/oracle number of the report
_WIDE_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d{9,}(?:e[-+]?\d+)?(?![\w.])")


def _status_class(status: str) -> str:
    """CSS class suffix of a status; unknown statuses share one neutral class."""
    return status if status in STATUSES else "other"


def _share(good: int, total: int) -> str:
    if total <= 0:
        return "n/a"
    return "%.1f%%" % (100.0 * good / total)


# --------------------------------------------------------------------------- view model


def _message_view(message: str) -> Dict[str, Any]:
    long = len(message) > SHORT_MESSAGE or "\n" in message
    first = message.strip().splitlines()[0] if message.strip() else ""
    if len(first) > SHORT_MESSAGE:
        first = first[: SHORT_MESSAGE - 1] + "\u2026"
    elif long and first != message.strip():
        first = first + " \u2026"
    return {"text": message, "long": long, "summary": first}


def _cell_view(raw: Any, index: int) -> Dict[str, Any]:
    cell = as_mapping(raw)
    status = as_text(cell.get("status")) or "unknown"
    cell_id = as_text(cell.get("id"))
    case = as_text(cell.get("case"))
    if not case:
        case = cell_id.split("[", 1)[0] if cell_id else "(no case)"
    if not cell_id:
        cell_id = "%s#%d" % (case, index)
    message = as_text(cell.get("message"))

    params = []
    for name, metrics in as_mapping(cell.get("params")).items():
        metrics = as_mapping(metrics)
        params.append(
            {
                "name": as_text(name),
                "size": fmt_int(metrics.get("size")),
                "max_abs_err": fmt_num(metrics.get("max_abs_err")),
                "max_rel_err": fmt_num(metrics.get("max_rel_err")),
                "mismatched": fmt_int(metrics.get("mismatched")),
                "share": ("%.3g%%" % (100.0 * metrics["mismatched"] / metrics["size"])
                          if isinstance(metrics.get("mismatched"), int) and isinstance(metrics.get("size"), int)
                          and metrics["size"] > 0 and metrics["mismatched"] else ""),
                "worst": _WIDE_NUMBER.sub(lambda m: fmt_num(float(m.group(0)), 8), as_text(metrics.get("worst"))),
                "shape": "\u00d7".join(fmt_int(n) for n in as_list(metrics.get("shape"))) or (
                    "scalar" if isinstance(metrics.get("shape"), list) else ""),
                "factor": _factor_view(metrics.get("factor")),
                "raw": as_text(name).startswith("before clipping: "),
            }
        )
    norm = cell.get("total_norm")
    total_norm = None
    if isinstance(norm, Mapping) and (norm.get("got") is not None or norm.get("want") is not None):
        # (an API that returns no norm, clip_grad_value_, records got = want = None: no row)
        total_norm = {"got": fmt_num(norm.get("got"), 8), "want": fmt_num(norm.get("want"), 8)}

    return {
        "id": cell_id,
        "case": case,
        "title": as_text(cell.get("title")),
        "tags": [as_text(t) for t in as_list(cell.get("tags"))],
        "source_api": as_text(cell.get("source_api")),
        "api": as_text(cell.get("api")),
        "backend": as_text(cell.get("backend")) or "(unknown)",
        "device": where(cell),
        "dtype": as_text(cell.get("dtype")),
        "status": status,
        "cls": _status_class(status),
        "difference": as_text(cell.get("difference")),
        "max_abs_err": fmt_num(cell.get("max_abs_err")),
        "max_rel_err": fmt_num(cell.get("max_rel_err")),
        "mismatched": fmt_int(cell.get("mismatched")),
        "tolerance": _tolerance_view(cell.get("tolerance")),
        "message": _message_view(message),
        "sweep": fmt_kv(cell.get("sweep")) if cell.get("sweep") else "",
        "params": params,
        "total_norm": total_norm,
        "reproduce": as_text(cell.get("reproduce")),
        "elapsed": fmt_num(cell.get("elapsed_ms")) if cell.get("elapsed_ms") is not None else "",
        "conflict": as_text(cell.get("conflict")),
        "host": as_text(cell.get("host")),
        "factor": _factor_view(cell.get("factor")),
        "raw": cell,
    }


def _factor_view(raw: Any) -> Optional[Dict[str, str]]:
    if not isinstance(raw, Mapping):
        return None
    return {"got": fmt_num(raw.get("got"), 8), "want": fmt_num(raw.get("want"), 8)}


def _tolerance_view(raw: Any) -> str:
    """``rtol R, atol A`` for a cell's recorded tolerance; empty when it has none (raised, or an
    older results file)."""
    if not isinstance(raw, Mapping):
        return ""
    return "rtol %s, atol %s" % (fmt_num(raw.get("rtol")), fmt_num(raw.get("atol")))


def _machine_view(raw: Any) -> Dict[str, str]:
    machine = as_mapping(raw)
    known = ("host", "python", "platform")
    extra = {k: v for k, v in machine.items() if k not in known}
    return {
        "host": as_text(machine.get("host")) or MISSING,
        "python": as_text(machine.get("python")) or MISSING,
        "platform": as_text(machine.get("platform")) or MISSING,
        "extra": fmt_kv(extra) if extra else "",
    }


def _unavailable(value: Any) -> List[Dict[str, str]]:
    if isinstance(value, Mapping):
        return [{"device": as_text(k), "reason": as_text(v)} for k, v in value.items()]
    return [{"device": "", "reason": as_text(v)} for v in as_list(value) if v not in (None, "")]


def _backend_view(name: str, raw: Any, counts: Counter) -> Dict[str, Any]:
    info = as_mapping(raw)
    total = sum(counts.values())
    non_skipped = total - counts.get("skipped", 0)
    good = counts.get("match", 0) + counts.get("known", 0)
    other = sum(n for s, n in counts.items() if s not in STATUSES)
    return {
        "name": name,
        "version": as_text(info.get("version")) or MISSING,
        "python": as_text(info.get("python")),
        "devices": [as_text(d) for d in as_list(info.get("devices"))],
        "unavailable": _unavailable(info.get("unavailable")),
        "counts": [{"status": s, "n": counts.get(s, 0)} for s in STATUSES],
        "other": other,
        "total": total,
        "share": _share(good, non_skipped),
        "share_match": _share(counts.get("match", 0), non_skipped),
    }


def _group_cells(cells: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Group sorted cells by case (cells arrive sorted by case)."""
    groups: List[Dict[str, Any]] = []
    current: Optional[Dict[str, Any]] = None
    for cell in cells:
        if current is None or current["case"] != cell["case"]:
            current = {
                "case": cell["case"],
                "title": cell["title"],
                "tags": cell["tags"],
                "source_api": cell["source_api"],
                "cells": [],
                "statuses": set(),
            }
            groups.append(current)
        if not current["title"] and cell["title"]:
            current["title"] = cell["title"]
        if not current["source_api"] and cell["source_api"]:
            current["source_api"] = cell["source_api"]
        current["cells"].append(cell)
        current["statuses"].add(cell["cls"])
    for number, group in enumerate(groups, 1):
        group["gid"] = "g%d" % number
        for cell in group["cells"]:
            cell["gid"] = group["gid"]
        sources = sorted({c["source_api"] for c in group["cells"] if c["source_api"]})
        group["source_api"] = ", ".join(sources)
        group["statuses"] = " ".join(s for s in STATUSES + ("other",) if s in group["statuses"])
        group["problems"] = sum(1 for c in group["cells"] if c["status"] in PROBLEM_STATUSES)
        for i, cell in enumerate(group["cells"]):
            cell["anchor"] = cell_anchor(i, cell["status"], cell["message"]["text"])
    return groups


def build_context(doc: Mapping[str, Any], *, max_problems: Optional[int] = DEFAULT_MAX_PROBLEMS) -> Dict[str, Any]:
    """The view model of ``index.html``: every key the templates read, values preformatted."""
    doc = as_mapping(doc)
    raw_results = doc.get("results")
    results: Iterable[Any] = raw_results if isinstance(raw_results, (list, tuple)) else []
    cells = [_cell_view(raw, i) for i, raw in enumerate(results)]
    if len({c["host"] for c in cells}) <= 1:  # one machine (merged files of one host too): no "on HOST" per cell
        for c in cells:
            c["host"] = ""
    cells.sort(
        key=lambda c: (
            c["case"],
            c["backend"],
            c["api"],
            c["dtype"],
            c["device"],
            c["sweep"],
            c["id"],
        )
    )

    # Per-backend summary: backends declared in the document first (their order), then any
    # backend that only appears in results.
    declared = as_mapping(doc.get("backends"))
    per_backend: Dict[str, Counter] = {}
    for name in declared:
        per_backend[as_text(name)] = Counter()
    for cell in cells:
        per_backend.setdefault(cell["backend"], Counter())[cell["status"]] += 1
    backends = [_backend_view(name, declared.get(name), counts) for name, counts in per_backend.items()]
    overall = Counter(c["status"] for c in cells)
    total_view = _backend_view("all", {}, overall)

    problems_all = [c for c in cells if c["status"] in PROBLEM_STATUSES]
    problems_all.sort(key=lambda c: (PROBLEM_STATUSES.index(c["status"]), c["case"], c["backend"], c["api"]))
    if max_problems is not None and max_problems >= 0:
        problems = problems_all[:max_problems]
    else:
        problems = problems_all

    machines = [_machine_view(m) for m in as_list(doc.get("machines")) if isinstance(m, Mapping)]
    machine = _machine_view(doc.get("machine")) if isinstance(doc.get("machine"), Mapping) else None
    if machine is None and machines:
        machine = machines[0]

    suite_version = as_text(doc.get("suite_version"))
    return {
        "title": "Gradient clipping conformance report",
        "created": as_text(doc.get("created")) or MISSING,
        "schema": as_text(doc.get("schema")) or MISSING,
        "suite_version": suite_version or MISSING,
        "incomplete": as_text(results_doc.incomplete(doc)) if results_doc.incomplete(doc) else "",
        "machine": machine,
        "machines": machines if len(machines) > 1 or (machines and machine is not machines[0]) else [],
        "statuses": list(STATUSES),
        "backends": backends,
        "total": total_view,
        "any_other": total_view["other"] > 0,
        "cells": cells,
        "groups": _group_cells(cells),
        "n_cells": len(cells),
        "cells_in_index": len(cells) <= INDEX_TABLE_MAX,
        "has_sweep": any(c["sweep"] for c in cells),
        "problems": problems,
        "n_problems": len(problems_all),
        "problems_left_out": len(problems_all) - len(problems),
    }


# --------------------------------------------------------------------------- overview cards

def _card(backend: str, device: str, host: str, version: str, counts: Counter) -> Dict[str, Any]:
    view = _backend_view(backend, {"version": version}, counts)
    view.update(device=device or MISSING, host=host or MISSING)
    return view


def where(cell: Mapping) -> str:
    """The device a cell ran on, with its mode when compiled (``cpu compiled``): the report sets
    eager and compiled cells of one framework side by side the way it does devices."""
    mode = as_text(cell.get("mode"))
    return as_text(cell.get("device")) + (f" {mode}" if mode and mode != "eager" else "")


def build_cards(doc: Mapping[str, Any], raw_results: List[Mapping]) -> Dict[str, Any]:
    """Overview cards: one per (backend, device), one column per (machine, device), so results
    merged from a GPU box and a CPU box sit side by side."""
    default_host = as_text(as_mapping(doc.get("machine")).get("host"))
    declared = as_mapping(doc.get("backends"))
    counts: Dict[tuple, Counter] = defaultdict(Counter)
    versions: Dict[str, str] = {}
    for r in raw_results:
        r = as_mapping(r)
        backend = as_text(r.get("backend")) or "(unknown)"
        hosts = r.get("hosts") if isinstance(r.get("hosts"), list) else [r.get("host") or default_host]
        for host in hosts:
            counts[(backend, where(r), as_text(host))][as_text(r.get("status")) or "unknown"] += 1
        if r.get("backend_version") and backend not in versions:
            versions[backend] = as_text(r.get("backend_version"))
    columns = sorted({(host, device) for (_, device, host) in counts})
    backends = list(dict.fromkeys([as_text(b) for b in declared] + sorted({b for (b, _, _) in counts})))
    rows = []
    for b in backends:
        version = as_text(as_mapping(declared.get(b)).get("version")) or versions.get(b, "")
        cards = [(_card(b, device, host, version, counts[(b, device, host)]) if (b, device, host) in counts else None)
                 for host, device in columns]
        rows.append({"backend": b, "version": version or MISSING, "cards": cards,
                     "unavailable": _unavailable(as_mapping(declared.get(b)).get("unavailable"))})
    return {"columns": [{"host": h or MISSING, "device": d or MISSING} for h, d in columns], "rows": rows}


# --------------------------------------------------------------------------- rendering


@lru_cache(maxsize=None)
def _environment(templates_dir: str = str(TEMPLATES_DIR)) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_num
    return env


@lru_cache(maxsize=None)
def _script(name: str) -> Tuple[Markup, str]:
    """A package script (trusted, inserted raw) and its CSP source expression."""
    text = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), Markup("'sha256-%s'") % digest


def _page_scripts(*names: str) -> Tuple[Dict[str, Markup], Markup]:
    scripts, hashes = {}, []
    for name in names:
        text, digest = _script(name)
        scripts[name.replace(".", "_")] = text
        hashes.append(digest)
    # Only these exact inline scripts may run (Content-Security-Policy hashes): even a string
    # that escaped escaping could not execute, and nothing remote can be loaded.
    return scripts, (Markup(" ").join(hashes) if hashes else Markup("'none'"))


def _common(context: Dict[str, Any], root: str, page: str) -> Dict[str, Any]:
    keys = ("created", "schema", "suite_version", "machine", "machines", "n_cells", "n_problems", "incomplete")
    out = {k: context[k] for k in keys}
    out.update(root=root, page=page, title=context["title"])
    return out


def render_pages(doc: Mapping[str, Any], *, max_problems: Optional[int] = DEFAULT_MAX_PROBLEMS,
                 plots: bool = True) -> Dict[str, str]:
    """Every page of the report: relative path -> HTML text."""
    doc = as_mapping(doc)
    context = build_context(doc, max_problems=max_problems)
    env = _environment()
    raw_results = [as_mapping(r) for r in as_list(doc.get("results"))]
    cases_info = as_mapping(doc.get("cases"))
    slugs = case_slugs(g["case"] for g in context["groups"])
    pages: Dict[str, str] = {"style.css": (TEMPLATES_DIR / "style.css").read_text(encoding="utf-8")}

    def case_href(cid: str, root: str = "") -> str:
        return "%scases/%s.html" % (root, slugs[cid]) if cid in slugs else ""

    for g in context["groups"]:
        g["href"] = case_href(g["case"])
        g["split"] = split_pages(g["cells"], slugs[g["case"]])
        for c in g["cells"]:
            c["href"] = "cases/" + g["split"][c["backend"]] if g["split"] else g["href"]

    # each long reason that cells ran nothing for, once for the whole report
    reasons = reasons_mod.build(context["cells"], case_href)
    _, hashes = _page_scripts()
    template = env.get_template("reasons.html")
    numbered = [(path, i + 1) for i, path in enumerate(reasons["pages"])]
    for path, n in numbered:
        others = [{"n": m, "href": "%d.html" % m, "here": m == n} for _, m in numbered]
        pages[path] = template.render(**_common(context, "../", "reasons"), script_hashes=hashes,
                                      reasons=reasons["pages"][path], n=n, total=len(numbered), others=others)

    # the API pairs: the index's front table and one page each
    diffs = differences_index(doc)
    registry = as_mapping(doc.get("registry"))
    pairs = pairs_mod.build_pairs(
        context["cells"], cases_info, as_list(registry.get("mappings")),
        lambda api: mapping_page.api_kind(as_mapping(as_mapping(registry.get("apis")).get(api))),
        lambda case, api: as_mapping(as_mapping(as_mapping(cases_info.get(case)).get("snippets")).get(api)))
    _, hashes = _page_scripts()
    for p in pairs:
        for d in p["differences"]:
            d["text"] = diffs.get(d["id"], {}).get("text", "")
        p["plot"] = plot_mod.pair_error_plot(p.pop("plot_rows")) if plots else None
        pages["pairs/%s.html" % p["slug"]] = env.get_template("pair.html").render(
            **_common(context, "../", "pair"), script_hashes=hashes, p=p)

    # index: the pairs, overview, plots, problems, all cells
    scripts, hashes = _page_scripts("filter.js")
    index = dict(context, **scripts, script_hashes=hashes, root="", page="index",
                 cards=build_cards(doc, raw_results),
                 plots=[dict(title="Relative error per API and dtype", **plot_mod.rel_error_plot(raw_results)),
                        dict(title="Clipping factor applied vs the oracle's", **plot_mod.factor_plot(raw_results))]
                 if plots else [])
    modes, pages_of_modes = modes_mod.compare(doc)
    groups: Dict[str, list] = {}
    for p in pairs:  # (Jinja's groupby would sort the sources by name again)
        groups.setdefault(p["source"], []).append(p)
    pages["index.html"] = env.get_template("index.html").render(**index, modes=modes, pairs=pairs,
                                                                pair_groups=list(groups.items()))
    pages.update(pages_of_modes)

    # matrix: the backends, and a grid per backend
    tags_by_case = {cid: [as_text(t) for t in as_list(as_mapping(info).get("tags"))] for cid, info in cases_info.items()}
    backends = grid_mod.backends_summary(context["cells"])
    _, hashes = _page_scripts()
    pages["matrix.html"] = env.get_template("matrix.html").render(
        **_common(context, "", "matrix"), script_hashes=hashes, backends=backends)
    scripts, hashes = _page_scripts("grid.js")
    for backend, data in grid_mod.grid_data(context["cells"], tags_by_case).items():
        pages[grid_mod.backend_file(backend)] = env.get_template("grid.html").render(
            **_common(context, "../", "matrix"), **scripts, script_hashes=hashes, backend=backend,
            others=[b for b in backends if b["backend"] != backend], grid_json=grid_mod.script_json(data))

    # case index: every case with its cells counted by status, problems first
    _, hashes = _page_scripts()
    index_rows = [dict(case=g["case"], title=g["title"], source_api=g["source_api"], href=g["href"],
                       problems=g["problems"], counts=Counter(c["status"] for c in g["cells"]))
                  for g in context["groups"]]
    index_rows.sort(key=lambda r: (-r["problems"], r["case"]))
    pages["cases.html"] = env.get_template("cases_index.html").render(
        **_common(context, "", "cases"), script_hashes=hashes, cases=index_rows, statuses=list(STATUSES))

    # API mapping
    mctx = mapping_page.build_mapping_context(doc, raw_results, case_href)
    api_slugs = case_slugs(s["api"] for s in mctx["sources"])
    for s in mctx["sources"]:
        s["page"] = "mapping/%s.html" % api_slugs[s["api"]]
        s["n_misleading"] = sum(1 for mp in s["mappings"] if mp.get("misleading"))
        s["n_unshown"] = sum(1 for mp in s["mappings"] for d in mp.get("differences", []) if d.get("unshown"))
    template = env.get_template("mapping.html")
    pages["mapping.html"] = template.render(**_common(context, "", "mapping"), script_hashes=hashes, m=mctx, one=None)
    for s in mctx["sources"]:  # one page per source API: clip_grad_norm_'s tables alone were 404 KB
        pages[s["page"]] = template.render(**_common(context, "../", "mapping"), script_hashes=hashes, m=mctx, one=s)
    shown = {d["id"] for s in mctx["sources"] for mp in s["mappings"] for d in mp.get("differences", [])}
    for did, d in diffs.items():  # where a case page's difference links its whole declaration
        if did in shown and d["source"] in api_slugs:
            d["href"] = "mapping/%s.html#d-%s" % (api_slugs[d["source"]], did)

    # one page per case
    apis = as_mapping(as_mapping(doc.get("registry")).get("apis"))
    template = env.get_template("case.html")
    files: Dict[str, str] = {}  # snippets too long for their page: cases/<slug>/<name>.py
    for g in context["groups"]:
        kind = mapping_page.api_kind(as_mapping(apis.get(g["source_api"])))
        slug, info = slugs[g["case"]], cases_info.get(g["case"])
        parts = []
        for backend, page in sorted(set(g["split"].items())):
            cells = [c for c in g["cells"] if c["backend"] == backend]
            parts.append({"backend": backend, "href": page,
                          "n": len(cells), "counts": Counter(c["status"] for c in cells),
                          "problems": sum(1 for c in cells if c["status"] in PROBLEM_STATUSES)})
            pages["cases/" + page] = template.render(
                **_common(context, "../../", "case"), script_hashes=hashes,
                c=case_page_context(dict(g, cells=cells), info, diffs, kind, files, slug, part=backend,
                                    reasons=reasons["href"], root="../../"))
        pages["cases/%s.html" % slug] = template.render(
            **_common(context, "../", "case"), script_hashes=hashes,
            c=case_page_context(dict(g, cells=[]) if parts else g, info, diffs, kind, files, slug, parts=parts,
                                reasons=reasons["href"], root="../"))
    pages.update(("cases/" + path, text) for path, text in files.items())
    return pages


def render_html(doc: Mapping[str, Any], *, max_problems: Optional[int] = DEFAULT_MAX_PROBLEMS) -> str:
    """The text of ``index.html`` for ``doc``."""
    return render_pages(doc, max_problems=max_problems)["index.html"]


def _written_by_a_report(path: Path) -> bool:
    """Whether ``path`` is a page of a report (base.html's generator tag in its head)."""
    try:
        with open(path, "rb") as fh:
            return b'<meta name="generator" content="gradclip-conformance' in fh.read(4096)
    except OSError:
        return False


def render(
    doc: Mapping[str, Any],
    out_dir: Union[str, Path],
    *,
    max_problems: Optional[int] = DEFAULT_MAX_PROBLEMS,
    plots: bool = True,
) -> Path:
    """Write the report for ``doc`` into ``out_dir`` (created if needed); return its index.html.

    ``max_problems`` caps the cells detailed in the "problems first" section (None: no cap);
    every cell is always in the full table and the matrix. Case pages of an earlier report in
    the same directory that this document does not have are removed; any other file there (one
    this report did not write: no generator tag) is left alone.
    """
    out = Path(out_dir)
    (out / "cases").mkdir(parents=True, exist_ok=True)
    pages = render_pages(doc, max_problems=max_problems, plots=plots)
    for folder in ("cases", "pairs", "reasons"):
        for old in (out / folder).glob("*.html"):
            if "%s/%s" % (folder, old.name) not in pages and _written_by_a_report(old):
                old.unlink()
    for rel, text in pages.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)  # modes/
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return out / "index.html"
