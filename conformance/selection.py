"""A deterministic selection of cells for CI (``--select ci``): what ``make test`` runs where the
whole matrix cannot fit (the compiled half: 300 ms per torch cell). Whole cases are chosen,
greedily, until every one of these is shown by at least one selected cell:

- each (framework, target API, dtype, mode) of the planned cells;
- each registry entry conditioned on the mode (a compiled gap or difference, ``when: {mode:
  [compiled]}``) that some planned cell's facts satisfy, per (framework, entry).

The case that covers the most of what is still missing goes first; ties go to the case with
fewer cells, then by case id, so the selection is the same on every machine and run, and a new
case or registry entry changes it only where it adds something to cover. Standard library only.
"""

from __future__ import annotations

from collections import defaultdict

CHOICES = ("ci",)


def _mode_entries(registry, cell) -> set:
    """The mode-conditioned registry entries of the cell's mapping that its facts satisfy."""
    out = set()
    facts = None
    for m in registry.targets(cell.source_api):
        if m.target != cell.api:
            continue
        for kind in ("differences", "unsupported", "numerics"):
            for i, entry in enumerate(getattr(m, kind, []) or []):
                if "mode" not in (entry.when or {}):
                    continue
                facts = facts if facts is not None else cell.facts()
                if entry.applies(facts):
                    out.add((cell.framework, m.source, m.target, kind, getattr(entry, "id", None) or i))
    return out


def needs(registry, cell) -> set:
    """What one cell shows, of what the selection must cover."""
    return {("api", cell.framework, cell.api, cell.dtype, cell.mode), *_mode_entries(registry, cell)}


def select(cells: list, registry, how: str = "ci") -> list:
    """The cells of the selected cases, in their planned order."""
    if how not in CHOICES:
        raise ValueError(f"--select {how!r}: choose one of {', '.join(CHOICES)}")
    by_case: dict = defaultdict(list)
    shows: dict = defaultdict(set)
    for c in cells:
        by_case[c.case.id].append(c)
        shows[c.case.id] |= needs(registry, c)
    missing = set().union(*shows.values()) if shows else set()
    chosen = set()
    while missing:
        best = min(shows, key=lambda k: (-len(shows[k] & missing), len(by_case[k]), k))
        if not shows[best] & missing:
            break
        chosen.add(best)
        missing -= shows[best]
    return [c for c in cells if c.case.id in chosen]
