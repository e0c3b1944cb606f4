"""The CI selection (``--select ci``, conformance/selection.py): deterministic, and it covers
every (framework, target API, dtype, mode) and every mode-conditioned registry entry that the
whole plan shows, with a fraction of the cells."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conformance import registry, selection
from conformance.plan import plan
from conformance.spec.load import load_paths

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = {"torch", "mindspore", "paddle", "tensorflow", "jax"}


@pytest.fixture(scope="module")
def planned():
    reg = registry.load()
    # a part of the bundled cases that holds compiled gaps of several frameworks (the whole
    # plan takes ~40 s to select; `conformance run --select ci` does that once per run)
    loaded = load_paths([ROOT / "cases" / d for d in ("seeds", "mindspore", "tensorflow", "jax", "found")]
                        + [ROOT / "cases" / "matrix" / "norm-structure.yaml"])
    return reg, plan(loaded.cases, reg, backends=BACKENDS, device="cpu", mode="compiled").cells


def test_the_selection_covers_what_the_whole_plan_shows(planned):
    reg, cells = planned
    chosen = selection.select(cells, reg)
    whole = set().union(*(selection.needs(reg, c) for c in cells))
    covered = set().union(*(selection.needs(reg, c) for c in chosen))
    assert covered == whole
    assert any(k[0] != "api" for k in whole)  # mode-conditioned registry entries are among them
    assert {k[4] for k in whole if k[0] == "api"} == {"compiled"}
    assert len(chosen) < len(cells) / 5
    cases = {c.case.id for c in chosen}  # whole cases
    assert all(c.case.id not in cases for c in cells if c not in chosen)


def test_the_selection_is_the_same_whatever_the_order(planned):
    reg, cells = planned
    first = [c.id for c in selection.select(cells, reg)]
    shuffled = list(cells)
    random.Random(7).shuffle(shuffled)
    assert sorted(c.id for c in selection.select(shuffled, reg)) == sorted(first)


def test_an_unknown_selection_is_refused(planned):
    reg, cells = planned
    with pytest.raises(ValueError, match="choose one of ci"):
        selection.select(cells[:3], reg, "all")
