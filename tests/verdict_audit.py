"""Checks of a results document's ``unsupported`` verdicts against the declarations of the cells
that produced them.

Every ``unsupported`` cell must name a declared gap of its mapping (its message is
``"<reason> (<what happened>)"``), and that gap must fit what happened:

- a cell that returned is unsupported only by a gap that declares its numbers undefined;
- a cell that raised names a gap that applies to its facts, whose ``match:`` (if any) is in the
  raised message, and no other declaration of the mapping that applies names the error more
  closely (a longer ``match:`` in the message): a generic "no float16 kernel" must not claim
  "norm_type only support [inf, 0, 1, 2]".

The facts are the planned cells' own (``Cell.facts()``), so the audit sees what the rule saw.
The bundled run is checked with it (tests/test_browser.py), and documents made wrong on purpose
show that it can fail (tests/test_truth.py).
"""

from __future__ import annotations


def unsupported_problems(doc: dict, cells: dict) -> list[str]:
    """``cells``: cell id -> the planned ``Cell`` (``conformance.plan``)."""
    problems = []
    for rec in doc["results"]:
        if rec.get("status") != "unsupported":
            continue
        cell = cells.get(rec["id"])
        if cell is None:
            problems.append(f"{rec['id']}: not a cell of the plan")
            continue
        message = rec.get("message") or ""
        facts = cell.facts()
        gaps = [u for u in cell.mapping.unsupported if message.startswith(u.reason + " (")]
        if not gaps:
            problems.append(f"{rec['id']}: unsupported by no declared gap: {message[:200]}")
            continue
        gap = max(gaps, key=lambda u: len(u.reason))
        happened = message[len(gap.reason) + 2:-1]
        if gap.undefined:
            if not gap.applies(facts):
                problems.append(f"{rec['id']}: its `undefined` gap does not apply to {facts}")
            continue
        if happened.startswith("agreed with the oracle"):
            problems.append(f"{rec['id']}: returned, but its gap is not `undefined`: {message[:200]}")
            continue
        if not gap.applies(facts, happened):
            problems.append(f"{rec['id']}: the gap {gap.reason[:80]!r} does not fit the raised {happened[:200]!r}")
            continue
        shown = len(gap.match or "")
        closer = [u.reason for u in cell.mapping.unsupported
                  if not u.undefined and u.match and len(u.match) > shown and u.applies(facts, happened)]
        closer += [d.id for d in cell.mapping.differences
                   if d.match and len(d.match) > shown and d.match in happened and d.applies(facts)]
        for name in closer:
            problems.append(f"{rec['id']}: says {gap.reason[:80]!r}, but {name[:80]!r} names the raised "
                            f"error more closely ({happened[:160]!r})")
    return problems


def planned_cells(paths) -> dict:
    """Cell id -> Cell for the case files under ``paths`` (every backend, every device)."""
    from conformance import registry
    from conformance.plan import plan
    from conformance.spec import load

    loaded = load.load_paths([str(p) for p in paths])
    return {c.id: c for c in plan(loaded.cases, registry.load()).cells}
