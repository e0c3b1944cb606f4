"""Regressions for classification and planning holes found in review: each test fails on the
code before the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks, compare, registry
from conformance.plan import keyword_matcher, plan
from conformance.spec.load import parse_text

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_returned_norm_is_a_problem():
    c = compare.compare_outputs({"w": [0.6, 0.8]}, {"w": np.array([0.6, 0.8])}, 1e-7, 1e-7, None, 5.0)
    assert not c.ok and "returned no norm; expected 5.0" in c.summary()


def test_an_unexpected_output_name_is_a_problem():
    c = compare.compare_outputs({"w": [1.0], "extra": [9.0]}, {"w": np.array([1.0])}, 1e-7, 1e-7)
    assert not c.ok and "extra: in the framework's output but not expected" in c.summary()


def _plan(text):
    loaded = parse_text(text, "c.yaml")
    assert not loaded.errors
    return plan(loaded.cases, registry.load(), backends={"torch"}, device="cpu")


CASE = """id: c
title: t
grads: {w: [3.0, 4.0]}
clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}
"""


def test_a_string_where_a_number_belongs_is_a_case_error():
    p = _plan(CASE + 'sweep: {clip.args.norm_type: [2.0, "2.0"]}\n')
    assert any("takes a number for 'norm_type', got '2.0'" in e.problem for e in p.errors)


def test_sweep_values_that_give_the_same_cell_are_an_error():
    p = _plan(CASE + "sweep: {clip.args.norm_type: [2.0, 2.0]}\n")
    assert [e.line for e in p.errors] == [5]
    assert "two sweep combinations give the same cell" in p.errors[0].problem
    assert len({c.id for c in p.cells}) == len(p.cells)


def test_keyword_usage_error_and_tags():
    try:
        keyword_matcher("norm_type=2.0")
        raise AssertionError("a bad -k expression must be a ValueError")
    except ValueError as e:
        assert "-k 'norm_type=2.0'" in str(e)
    m = keyword_matcher("seed and not float16")
    assert m("x[torch-float32-cpu]", ("seed",)) and not m("x[torch-float16-cpu]", ("seed",))


def test_unsupported_match_restricts_to_the_declared_error():
    u = registry.Unsupported(when={"dtype": ["float64"]}, reason="r", match="For 'SGD'")
    assert u.applies({"dtype": "float64"}, "TypeError: For 'SGD', the element ...")
    assert not u.applies({"dtype": "float64"}, "ZeroDivisionError: float division by zero")


@pytest.mark.framework
@pytest.mark.skipif(not frameworks.installed_here("torch"), reason="torch is not installed here")
def test_pytest_reports_a_case_id_used_in_two_files(tmp_path):
    d = tmp_path / "cases"
    d.mkdir()
    (d / "a.case.yaml").write_text(CASE)  # `.case.yaml`: a case file wherever it lies
    (d / "b.case.yaml").write_text(CASE.replace("[3.0, 4.0]", "[30.0, 40.0]"))
    r = subprocess.run([sys.executable, "-m", "pytest", str(d), "-q", "-p", "no:cacheprovider",
                        "--backend", "torch", "--device", "cpu"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 1
    assert "duplicate case id 'c'" in r.stdout
    assert "1 failed, 1 passed" in r.stdout
