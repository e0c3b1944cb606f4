"""Render the HTML report from a results document (the design's "Results JSON").

The report is built from the document alone: no framework, no registry, no oracle. Rendering is
two steps:

1. :func:`build_context` turns the (possibly partial, possibly merged) document into a plain
   view model: every value a template reads exists, numbers are already formatted, and
   unknown or missing keys are tolerated. Strings taken from the document stay plain ``str``
   (never ``Markup``), so the template's autoescape escapes all of them.
2. Jinja2 (autoescape on, ``StrictUndefined``) renders ``index.html``, which extends
   ``base.html``. Later pages (the API-mapping report) extend the same base.

The output directory is self-contained: one ``index.html`` with inline CSS and a small inline
script (a status filter that only enhances a CSS-only filter), no remote resources.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import jinja2
from markupsafe import Markup

__all__ = ["STATUSES", "PROBLEM_STATUSES", "render", "render_html", "build_context", "fmt_num"]

#: Every cell status of the design, in display order.
STATUSES: Tuple[str, ...] = ("match", "known", "mismatch", "error", "unsupported", "skipped")
#: Statuses listed in the "problems first" section.
PROBLEM_STATUSES: Tuple[str, ...] = ("mismatch", "error")
#: Default cap on the cells detailed in the problems section (all of them stay in the table).
DEFAULT_MAX_PROBLEMS = 1000
#: Messages longer than this (or with several lines) are folded into a <details>.
SHORT_MESSAGE = 120

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_MISSING = "\u2014"  # em dash: the value is absent (null or key missing)


# --------------------------------------------------------------------------- formatting helpers


def fmt_num(value: Any, digits: int = 3) -> str:
    """Format a metric for display: None -> em dash, NaN/inf spelled out, floats as %.{digits}g.

    Never raises: strings (``"NaN"``, ``"Infinity"`` from a hand-written document) are parsed,
    anything unparsable is shown as ``str(value)`` (and escaped by the template like any string).
    """
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return _MISSING
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


def _text(value: Any) -> str:
    """A document value as display text ('' for None); never Markup, so always escaped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return fmt_num(value)
    return str(value)


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _listish(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _fmt_kv(mapping: Any) -> str:
    """``{"norm_type": 2.0, "foreach": True}`` -> ``norm_type=2, foreach=true``."""
    if not isinstance(mapping, Mapping):
        return _text(mapping)
    parts = []
    for key, value in mapping.items():
        shown = fmt_num(value) if isinstance(value, (int, float)) or value is None else _text(value)
        parts.append("%s=%s" % (key, shown))
    return ", ".join(parts)


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
    cell = _mapping(raw)
    status = _text(cell.get("status")) or "unknown"
    cell_id = _text(cell.get("id"))
    case = _text(cell.get("case"))
    if not case:
        case = cell_id.split("[", 1)[0] if cell_id else "(no case)"
    if not cell_id:
        cell_id = "%s#%d" % (case, index)
    message = _text(cell.get("message"))

    params = []
    for name, metrics in _mapping(cell.get("params")).items():
        metrics = _mapping(metrics)
        params.append(
            {
                "name": _text(name),
                "size": fmt_int(metrics.get("size")),
                "max_abs_err": fmt_num(metrics.get("max_abs_err")),
                "max_rel_err": fmt_num(metrics.get("max_rel_err")),
                "mismatched": fmt_int(metrics.get("mismatched")),
            }
        )
    norm = cell.get("total_norm")
    total_norm = None
    if isinstance(norm, Mapping):
        total_norm = {"got": fmt_num(norm.get("got"), 8), "want": fmt_num(norm.get("want"), 8)}

    return {
        "id": cell_id,
        "case": case,
        "title": _text(cell.get("title")),
        "tags": [_text(t) for t in _listish(cell.get("tags"))],
        "source_api": _text(cell.get("source_api")),
        "api": _text(cell.get("api")),
        "backend": _text(cell.get("backend")) or "(unknown)",
        "device": _text(cell.get("device")),
        "dtype": _text(cell.get("dtype")),
        "status": status,
        "cls": _status_class(status),
        "difference": _text(cell.get("difference")),
        "max_abs_err": fmt_num(cell.get("max_abs_err")),
        "max_rel_err": fmt_num(cell.get("max_rel_err")),
        "mismatched": fmt_int(cell.get("mismatched")),
        "message": _message_view(message),
        "sweep": _fmt_kv(cell.get("sweep")) if cell.get("sweep") else "",
        "params": params,
        "total_norm": total_norm,
        "reproduce": _text(cell.get("reproduce")),
        "elapsed": fmt_num(cell.get("elapsed_ms")) if cell.get("elapsed_ms") is not None else "",
    }


def _machine_view(raw: Any) -> Dict[str, str]:
    machine = _mapping(raw)
    known = ("host", "python", "platform")
    extra = {k: v for k, v in machine.items() if k not in known}
    return {
        "host": _text(machine.get("host")) or _MISSING,
        "python": _text(machine.get("python")) or _MISSING,
        "platform": _text(machine.get("platform")) or _MISSING,
        "extra": _fmt_kv(extra) if extra else "",
    }


def _unavailable(value: Any) -> List[Dict[str, str]]:
    if isinstance(value, Mapping):
        return [{"device": _text(k), "reason": _text(v)} for k, v in value.items()]
    return [{"device": "", "reason": _text(v)} for v in _listish(value) if v not in (None, "")]


def _backend_view(name: str, raw: Any, counts: Counter) -> Dict[str, Any]:
    info = _mapping(raw)
    total = sum(counts.values())
    non_skipped = total - counts.get("skipped", 0)
    good = counts.get("match", 0) + counts.get("known", 0)
    other = sum(n for s, n in counts.items() if s not in STATUSES)
    return {
        "name": name,
        "version": _text(info.get("version")) or _MISSING,
        "python": _text(info.get("python")),
        "devices": [_text(d) for d in _listish(info.get("devices"))],
        "unavailable": _unavailable(info.get("unavailable")),
        "counts": [{"status": s, "n": counts.get(s, 0)} for s in STATUSES],
        "other": other,
        "total": total,
        "share": _share(good, non_skipped),
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
    return groups


def build_context(doc: Mapping[str, Any], *, max_problems: Optional[int] = DEFAULT_MAX_PROBLEMS) -> Dict[str, Any]:
    """The view model of ``index.html``: every key the templates read, values preformatted."""
    doc = _mapping(doc)
    raw_results = doc.get("results")
    results: Iterable[Any] = raw_results if isinstance(raw_results, (list, tuple)) else []
    cells = [_cell_view(raw, i) for i, raw in enumerate(results)]
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
    declared = _mapping(doc.get("backends"))
    per_backend: Dict[str, Counter] = {}
    for name in declared:
        per_backend[_text(name)] = Counter()
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

    machines = [_machine_view(m) for m in _listish(doc.get("machines")) if isinstance(m, Mapping)]
    machine = _machine_view(doc.get("machine")) if isinstance(doc.get("machine"), Mapping) else None
    if machine is None and machines:
        machine = machines[0]

    suite_version = _text(doc.get("suite_version"))
    return {
        "title": "Gradient clipping conformance report",
        "created": _text(doc.get("created")) or _MISSING,
        "schema": _text(doc.get("schema")) or _MISSING,
        "suite_version": suite_version or _MISSING,
        "machine": machine,
        "machines": machines if len(machines) > 1 or (machines and machine is not machines[0]) else [],
        "statuses": list(STATUSES),
        "backends": backends,
        "total": total_view,
        "any_other": total_view["other"] > 0,
        "cells": cells,
        "groups": _group_cells(cells),
        "n_cells": len(cells),
        "has_sweep": any(c["sweep"] for c in cells),
        "problems": problems,
        "n_problems": len(problems_all),
        "problems_left_out": len(problems_all) - len(problems),
    }


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


def render_html(doc: Mapping[str, Any], *, max_problems: Optional[int] = DEFAULT_MAX_PROBLEMS) -> str:
    """The text of ``index.html`` for ``doc``."""
    context = build_context(doc, max_problems=max_problems)
    filter_js, filter_hash = _script("filter.js")
    # Only this exact inline script may run (Content-Security-Policy hash): even a string
    # that escaped escaping could not execute, and nothing remote can be loaded.
    context.update(filter_js=filter_js, script_hashes=filter_hash)
    return _environment().get_template("index.html").render(**context)


def render(
    doc: Mapping[str, Any],
    out_dir: Union[str, Path],
    *,
    max_problems: Optional[int] = DEFAULT_MAX_PROBLEMS,
) -> Path:
    """Write the report for ``doc`` into ``out_dir`` (created if needed); return its index.html.

    ``max_problems`` caps the cells detailed in the "problems first" section (None: no cap);
    every cell is always in the full table.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    tmp = out / "index.html.tmp"
    tmp.write_text(render_html(doc, max_problems=max_problems), encoding="utf-8")
    tmp.replace(index)
    return index
