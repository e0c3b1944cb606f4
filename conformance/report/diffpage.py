"""The HTML page of ``conformance diff`` (``--html``): the changed cells grouped by what changed,
regressions first. Jinja2 with autoescape: every text from the results documents is escaped."""

from __future__ import annotations

from pathlib import Path

import jinja2

from ..diff import Diff

TEMPLATES = Path(__file__).resolve().parent / "templates"
ORDER = ("status", "explanation", "numbers", "only in old", "only in new")


def _side(r) -> str:
    if r is None:
        return "-"
    text = r.get("status") or "?"
    if r.get("difference"):
        text += f" ({r['difference']})"
    if r.get("max_rel_err") is not None:
        text += f"; max rel err {r['max_rel_err']:.3g}"
    if r.get("message"):
        text += f"; {r['message'][:300]}"
    return text


#: cell ids listed per kind of change; the rest are counted (8,393 changed cells listed one by one
#: made a 6.4 MB page)
IDS_SHOWN = 12


def _brief(r) -> str:
    if r is None:
        return "-"
    return (r.get("status") or "?") + (f" ({r['difference']})" if r.get("difference") else "")


def render(d: Diff, summary: str, old_label: str = "", new_label: str = "") -> str:
    """The page of ``d``; the sides are named by their versions unless labels are given.

    Changes are grouped by what changed, then by kind: (regression, backend, API, old status
    and difference, new status and difference), regressions and larger kinds first; each kind
    shows one cell's old and new side in full and the ids of its first ``IDS_SHOWN`` cells."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    groups = []
    for what in ORDER:
        kinds: dict = {}
        for c in sorted((c for c in d.changes if c.what == what), key=lambda c: c.id):
            api = (c.new or c.old or {}).get("api") or ""
            kinds.setdefault((c.regression, c.backend, api, _brief(c.old), _brief(c.new)), []).append(c)
        rows = []
        for (regression, backend, api, old, new), cells in sorted(
                kinds.items(), key=lambda kv: (not kv[0][0], -len(kv[1]), kv[0][1:])):
            first = cells[0]
            rows.append({"regression": regression, "backend": backend, "api": api, "n": len(cells),
                         "old": old, "new": new, "id": first.id,
                         "old_text": _side(first.old), "new_text": _side(first.new),
                         "ids": [c.id for c in cells[:IDS_SHOWN]], "more": max(0, len(cells) - IDS_SHOWN)})
        if rows:
            groups.append((what, sum(r["n"] for r in rows), rows))

    def label(v: dict) -> str:
        return ", ".join(f"{k} {ver}" for k, ver in sorted(v.items())) or "?"

    return env.get_template("diff.html").render(old_label=old_label or label(d.old_versions),
                                                new_label=new_label or label(d.new_versions),
                                                summary=summary, groups=groups)
