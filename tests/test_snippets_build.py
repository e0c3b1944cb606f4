"""Every bundled cell has a reproduction snippet that builds: ``conformance.snippets.snippet``
never raises (a writer's exception becomes a "# could not build a reproduction snippet" line in
the record instead), so a writer that fails on some case shape would go unnoticed in a run. Text
only: no framework is imported. One cell per (backend, case, API, mode); whether each snippet
reproduces its cell is tests/test_repro_snippets.py (a sample, run in each framework)."""

from __future__ import annotations

from pathlib import Path

from conformance import frameworks, registry
from conformance.plan import plan
from conformance.runner import Runner
from conformance.spec.load import load_paths

CASES = Path(__file__).resolve().parents[1] / "cases"


def test_every_bundled_cells_snippet_builds():
    reg = registry.load()
    loaded = load_paths([str(CASES)])
    assert not loaded.errors
    names = set(frameworks.discover())
    p = plan(loaded.cases, reg, backends=names, device="cpu", mode="all")
    runner = Runner(reg, None, {})
    seen, failed = set(), []
    for cell in p.cells:
        key = (cell.backend, cell.case.id, cell.api, cell.mode)
        if key in seen:
            continue
        seen.add(key)
        text = cell.kind.prepare(runner, cell).snippet()
        if "could not build a reproduction snippet" in text:
            failed.append(f"{cell.id}: {text.strip()}")
    assert len(seen) > 1000 and {b for b, *_ in seen} == names
    assert not failed, "\n".join(failed[:20])
