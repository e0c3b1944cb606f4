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


def render(d: Diff, summary: str, old_label: str = "", new_label: str = "") -> str:
    """The page of ``d``; the sides are named by their versions unless labels are given."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    groups = []
    for what in ORDER:
        rows = sorted((c for c in d.changes if c.what == what), key=lambda c: (not c.regression, c.id))
        if rows:
            groups.append((what, [{"id": c.id, "backend": c.backend, "regression": c.regression,
                                   "old_text": _side(c.old), "new_text": _side(c.new)} for c in rows]))

    def label(v: dict) -> str:
        return ", ".join(f"{k} {ver}" for k, ver in sorted(v.items())) or "?"

    return env.get_template("diff.html").render(old_label=old_label or label(d.old_versions),
                                                new_label=new_label or label(d.new_versions),
                                                summary=summary, groups=groups)
