"""Compiled vs eager in the report: for every backend that ran both modes, each compiled cell is
paired with its eager twin (``conformance diff --between B:eager B:compiled``, the same code) and
the pairs whose status, explanation or numbers differ are counted on the overview and listed on
``modes/<backend>.html``. A compiled cell that differs from its eager twin is a finding about the
framework (docs/modes.md), shown even where both are explained."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

from ..diff import Diff, diff, one_side
from . import diffpage

WHAT = ("status", "explanation", "numbers")


def _backends_with_both(doc: Mapping[str, Any]) -> List[str]:
    modes: Dict[str, set] = {}
    for r in doc.get("results") or []:
        if isinstance(r, Mapping):
            modes.setdefault(str(r.get("backend")), set()).add(r.get("mode") or "eager")
    return sorted(b for b, m in modes.items() if {"eager", "compiled"} <= m)


def compare(doc: Mapping[str, Any]) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
    """(one row per backend for the overview, the pages: relative path -> HTML)."""
    rows, pages = [], {}
    for backend in _backends_with_both(doc):
        whole = diff(one_side(dict(doc), f"{backend}:eager"), one_side(dict(doc), f"{backend}:compiled"))
        # cells of kinds that have no compiled twin (derivation, training) are not pairs
        paired = Diff(whole.old_versions, whole.new_versions,
                      [c for c in whole.changes if c.what in WHAT], whole.unchanged)
        counts = paired.counts()
        path = f"modes/{backend}.html"
        summary = (f"{backend}: {whole.unchanged + len(paired.changes)} compiled cells paired with their eager "
                   f"twins; {whole.unchanged} the same, " +
                   ", ".join(f"{counts.get(w, 0)} {w}" for w in WHAT) + " changes.")
        pages[path] = diffpage.render(paired, summary, old_label=f"{backend} eager", new_label=f"{backend} compiled")
        rows.append({"backend": backend, "pairs": whole.unchanged + len(paired.changes), "same": whole.unchanged,
                     **{w: counts.get(w, 0) for w in WHAT}, "href": path})
    return rows, pages
