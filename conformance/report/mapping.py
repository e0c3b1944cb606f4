"""View model of the API-mapping page: one table per source API, in the seeds' form
(Categories | Subcategories | PyTorch | MindSpore | Paddle | Differences), built from the
registry snapshot a results document carries plus the cells that exercised each mapping.

For every mapping: its category and whether it misleads, the argument correspondences, every
declared difference with its evidence (the cases whose cells it explained, linked, and how large
the difference measured: the largest relative error against the source's oracle), a flag on a
declared difference no cell showed, the declared gaps (``unsupported``), and every mismatch
that no declaration explains.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Dict, List, Mapping, Optional

from .. import frameworks

#: the seeds' column order and titles, for results documents whose registry snapshot predates
#: its ``frameworks`` map (which the registry fills from the framework folders)
LEGACY_FRAMEWORKS = {"torch": "PyTorch", "mindspore": "MindSpore", "paddle": "Paddle"}


#: cases linked as a difference's evidence; the rest are counted (a difference shown by ~100
#: cases, each linked, made clip_grad_norm_'s tables 404 KB of mapping.html)
CASES_LINKED = 8


def _framework(api: str) -> str:
    return frameworks.api_framework(api)


#: non-finite floats as the registry snapshot carries them (strict JSON has no inf)
_NONFINITE = {"inf", "-inf", "nan"}


def _value_text(value: Any) -> str:
    """A registry value as Python would spell it, except the snapshot's ``"inf"`` strings (an
    ``.inf`` of the registry), shown as the number they stand for, not as a quoted string."""
    if isinstance(value, str) and value in _NONFINITE:
        return value
    return repr(value)


def _rule_text(rule: Any) -> tuple:
    """(source parameter or None, how) of one argument rule of the registry."""
    if isinstance(rule, str):
        return rule, ""
    if isinstance(rule, Mapping):
        if "value" in rule:
            return None, "fixed to %s" % (_value_text(rule["value"]),)
        op = rule.get("op", "identity")
        return rule.get("from"), ("" if op == "identity" else "%s of it" % ("negation" if op == "neg" else op))
    return None, str(rule)


def _max(values: List[float], finite_only: bool = False) -> Optional[float]:
    keep = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)
            and not (finite_only and math.isinf(v))]
    return max(keep) if keep else None


_TAKES = {"parameters": "parameters", "grads": "gradients"}
def api_kind(api: Mapping) -> str:
    """An API's kind (``kind``; ``oracle.module`` in snapshots that predate it)."""
    return api.get("kind") or (api.get("oracle") or {}).get("module") or "clipping"


def _grad_api(apis: Mapping, framework: str) -> str:
    """The framework's gradient API in the registry (a derivation API of the ``autograd`` style
    or, failing that, any of its derivation APIs)."""
    mine = [(a.get("style") != "autograd", name) for name, a in apis.items()
            if _framework(name) == framework and api_kind(a) == "derivation"]
    return min(mine)[1] if mine else "the framework's gradient API"


def _takes_row(source: str, target: str, grad_api: str) -> Dict[str, str]:
    if source == target:
        text = "Consistent."
    elif source == "parameters":
        text = ("The gradient mechanism differs: the source clips the parameters' .grad in place, the target "
                "takes the gradient tensors (get them first, e.g. with %s) and returns them clipped."
                % grad_api)
    else:
        text = ("The gradient mechanism differs: the source takes the gradient tensors and returns them "
                "clipped, the target clips the parameters' gradients (.grad) in place.")
    return {"source": _TAKES.get(source, source), "target": _TAKES.get(target, target), "text": text}


def _upper_first(text: str) -> str:
    # not str.capitalize(), which lowercases the rest ("fixed to None" -> "Fixed to none")
    return text[:1].upper() + text[1:]


def _param_rows(mapping: Mapping, apis: Mapping) -> List[Dict[str, str]]:
    src_api = apis.get(mapping.get("source")) or {}
    tgt_api = apis.get(mapping.get("target")) or {}
    src_params = list((src_api.get("params") or {}).keys())
    tgt_params = (tgt_api.get("params") or {})
    rules = mapping.get("args")
    rows = []
    used_targets = set()
    # Derivation calls are not translated by the registry's per-argument rules but as a whole
    # (conformance/kinds/derivation/args.py: mindspore.grad's grad_position comes from torch's `inputs`),
    # so an argument without a same-named counterpart is translated, not dropped, and a
    # target-only one is set from the source call, not left at its default.
    derived = rules is None and api_kind(src_api) == "derivation"
    if rules is None:  # same names
        rules = {p: p for p in src_params if p in tgt_params}
    # what a clipping API takes first (the seed's "Parameter 1: parameters | x"): the registry
    # lists only the other arguments, so the row is made from the APIs' `takes`
    if api_kind(src_api) == "clipping" and tgt_api.get("takes"):
        rows.append(_takes_row(src_api.get("takes"), tgt_api.get("takes"),
                               _grad_api(apis, _framework(mapping.get("target") or ""))))
    by_source: Dict[Optional[str], list] = defaultdict(list)
    for target_param, rule in rules.items():
        source_param, how = _rule_text(rule)
        by_source[source_param].append((target_param, how))
        used_targets.add(target_param)
    for p in src_params:
        targets = by_source.get(p)
        if not targets:
            rows.append({"source": p, "target": "-", "text": (
                "No one-to-one counterpart: translated together with the other arguments "
                "(see the notes above)." if derived else "No counterpart: dropped by this mapping.")})
            continue
        for target_param, how in targets:
            if how:
                text = "Passed as %s." % how
            elif target_param == p:
                text = "Consistent."
            else:
                text = "Only the name differs."
            rows.append({"source": p, "target": target_param, "text": text})
    for target_param, how in by_source.get(None, []):
        rows.append({"source": "-", "target": target_param, "text": _upper_first(how) + "."})
    for name, param in tgt_params.items():
        if name not in used_targets:
            default = (param or {}).get("default")
            rows.append({"source": "-", "target": name, "text": (
                "Set from the source call's arguments (see the notes above)." if derived
                else "Only on the target side (default %s)." % (_value_text(default),))})
    return rows


def build_mapping_context(doc: Mapping, cells: List[Dict[str, Any]], case_href: Callable[[str], str]) -> Dict[str, Any]:
    """``cells`` are the raw result records; ``case_href(case_id)`` links a case page."""
    registry = doc.get("registry") if isinstance(doc.get("registry"), Mapping) else None
    if not registry:
        return {"available": False, "sources": [], "frameworks": [], "unexplained_total": 0,
                "unshown_total": 0, "misleading_total": 0}
    apis = registry.get("apis") or {}
    mappings = [m for m in (registry.get("mappings") or []) if isinstance(m, Mapping)]

    by_pair: Dict[tuple, list] = defaultdict(list)
    for c in cells:
        by_pair[(c.get("source_api"), c.get("api"))].append(c)

    titles = registry.get("frameworks") if isinstance(registry.get("frameworks"), Mapping) else LEGACY_FRAMEWORKS
    used = {_framework(m.get(k)) for m in mappings for k in ("source", "target")}
    frameworks = [f for f in titles if f in used] + sorted(used - set(titles))

    sources: Dict[str, dict] = {}
    totals = {"unexplained": 0, "unshown": 0, "misleading": 0}
    for m in mappings:
        src, tgt = m.get("source") or "?", m.get("target") or "?"
        group = sources.setdefault(src, {"api": src, "framework": _framework(src),
                                         "summary": (apis.get(src) or {}).get("summary", ""),
                                         "signature": (apis.get(src) or {}).get("signature", ""),
                                         "mappings": []})
        mcells = by_pair.get((src, tgt), [])
        counts: Dict[str, int] = defaultdict(int)
        for c in mcells:
            counts[c.get("status") or "?"] += 1
        declared_ids = set()
        diffs = []
        # a target's declared arithmetic (`numerics`: its summation order) is a difference too
        for d in (m.get("differences") or []) + (m.get("numerics") or []):
            declared_ids.add(d.get("id"))
            shown = [c for c in mcells if c.get("status") == "known" and c.get("difference") == d.get("id")]
            cases = sorted({c.get("case") or "?" for c in shown})
            diff = {"id": d.get("id") or "", "text": d.get("text") or "",
                    "when": d.get("when") or {}, "unless": d.get("unless") or {},
                    "variant": d.get("variant") or {}, "docs_contradict": d.get("docs_contradict") or "",
                    "n_cells": len(shown),
                    "cases": [{"id": cid, "href": case_href(cid)} for cid in cases[:CASES_LINKED]],
                    "more_cases": max(0, len(cases) - CASES_LINKED),
                    "max_rel_err": _max([c.get("max_rel_err") for c in shown]),
                    "max_abs_err": _max([c.get("max_abs_err") for c in shown]),
                    # NaN on one side of a cell makes its error inf: say how large the rest is
                    "max_finite_rel_err": _max([c.get("max_rel_err") for c in shown], finite_only=True),
                    "unshown": not shown}
            if diff["unshown"]:
                totals["unshown"] += 1
            diffs.append(diff)
        unexplained = [c for c in mcells if c.get("status") == "mismatch"]
        totals["unexplained"] += len(unexplained)
        misleading = m.get("misleading") or ""
        if misleading:
            totals["misleading"] += 1
        # A cell names its gap by the reason in its message, not by which entry matched, so
        # entries sharing one reason (the same gap under several conditions) are one row, its
        # conditions joined by "or": one count per row, never the same cells counted twice.
        unsupported: List[Dict[str, Any]] = []
        by_reason: Dict[str, Dict[str, Any]] = {}
        for u in m.get("unsupported") or []:
            reason = u.get("reason") or ""
            row = by_reason.get(reason)
            if row is None:
                hits = [c for c in mcells if c.get("status") == "unsupported"
                        and (reason or "\0") in (c.get("message") or "")]
                row = by_reason[reason] = {"reason": reason, "conditions": [], "n_cells": len(hits)}
                unsupported.append(row)
            row["conditions"].append({"when": u.get("when") or {}, "unless": u.get("unless") or {}})
        group["mappings"].append({
            "source": src, "target": tgt, "source_fw": _framework(src), "target_fw": _framework(tgt),
            "target_signature": (apis.get(tgt) or {}).get("signature", ""),
            "target_doc": (apis.get(tgt) or {}).get("doc", ""),
            "category": m.get("category") or "", "notes": m.get("notes") or "", "misleading": misleading,
            "params": _param_rows(m, apis) if m.get("category") != "missing" else [],
            "differences": diffs, "unsupported": unsupported,
            "unexplained": [{"id": c.get("id") or "", "case": c.get("case") or "", "href": case_href(c.get("case") or ""),
                             "message": c.get("message") or "", "max_rel_err": c.get("max_rel_err")}
                            for c in unexplained],
            "counts": dict(counts), "n_cells": len(mcells),
        })
    return {"available": True, "sources": list(sources.values()), "frameworks": frameworks,
            "framework_titles": {f: titles.get(f, f) for f in frameworks},
            "unexplained_total": totals["unexplained"], "unshown_total": totals["unshown"],
            "misleading_total": totals["misleading"]}
