"""Tolerances, error metrics and the NaN-aware comparison, on hand-computed arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.compare import (
    DEFAULT_TOLERANCE,
    Metrics,
    check_expect,
    compare_arrays,
    compare_many,
    compare_factors,
    compare_outputs,
    squares,
    tolerance,
    ulp,
)
from conformance.spec.case import Expect, Tolerance
from conformance.tensors import round_to

NAN, INF = math.nan, math.inf


# --------------------------------------------------------------------------- tolerances


def test_default_tolerances_are_assert_close_documented_values():
    # https://pytorch.org/docs/stable/testing.html#torch.testing.assert_close (the table there)
    assert DEFAULT_TOLERANCE == {
        "float64": (1e-7, 1e-7),
        "float32": (1.3e-6, 1e-5),
        "float16": (1e-3, 1e-5),
        "bfloat16": (1.6e-2, 1e-5),
    }


@pytest.mark.framework
def test_default_tolerances_agree_with_torch_itself():
    torch = pytest.importorskip("torch")
    from torch.testing._comparison import default_tolerances

    for name, (rtol, atol) in DEFAULT_TOLERANCE.items():
        t = torch.zeros(1, dtype=getattr(torch, name))
        assert default_tolerances(t) == (rtol, atol), name


def test_tolerance_uses_the_case_override_only_for_its_dtype():
    over = {"float16": Tolerance(rtol=1e-2, atol=1e-3, reason="half accumulates")}
    assert tolerance("float16", over) == (1e-2, 1e-3)
    assert tolerance("float32", over) == (1.3e-6, 1e-5)
    assert tolerance("bfloat16") == (1.6e-2, 1e-5)
    assert tolerance("float64", {}) == (1e-7, 1e-7)


# --------------------------------------------------------------------------- compare_arrays


def test_metrics_on_hand_computed_arrays():
    got = [1.0, 2.5, -3.0, 4.0]
    want = [1.0, 2.0, -3.5, 4.0]
    # diffs 0, 0.5, 0.5, 0; bounds atol + rtol*|w| = 0.11, 0.12, 0.135, 0.14
    m = compare_arrays(got, want, rtol=0.01, atol=0.1)
    assert m.size == 4
    assert m.mismatched == 2
    assert m.max_abs_err == 0.5
    assert m.max_rel_err == 0.25            # 0.5 / 2.0 (0.5 / 3.5 is smaller)
    # the worst is the one furthest past its bound: 0.5 - 0.01*2 > 0.5 - 0.01*3.5
    assert m.worst == "[1]: got 2.5 want 2.0"
    assert m.as_dict() == {"size": 4, "shape": [4], "mismatched": 2, "max_abs_err": 0.5, "max_rel_err": 0.25,
                           "worst": "[1]: got 2.5 want 2.0"}  # recorded where elements differ


def test_worst_index_is_the_full_multi_index():
    got = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 7.0]])
    want = np.zeros((2, 3))
    m = compare_arrays(got, want, rtol=0.0, atol=1.0)
    assert (m.size, m.mismatched, m.max_abs_err, m.max_rel_err) == (6, 1, 7.0, INF)
    assert m.worst == "[1, 2]: got 7.0 want 0.0"


def test_metrics_are_recorded_when_everything_passes():
    m = compare_arrays([1.0, 2.0], [1.0, 2.0 + 2 ** -20], rtol=1e-5, atol=0.0)
    assert m.mismatched == 0 and m.worst == ""
    assert m.max_abs_err == 2 ** -20
    assert m.max_rel_err == pytest.approx(2 ** -20 / (2.0 + 2 ** -20), rel=1e-15)


def test_nan_equals_nan_in_the_same_place():
    m = compare_arrays([[1.0, NAN], [INF, -INF]], [[1.0, NAN], [INF, -INF]], rtol=0.0, atol=0.0)
    assert (m.size, m.mismatched, m.max_abs_err, m.max_rel_err, m.worst) == (4, 0, 0.0, 0.0, "")


def test_nan_against_a_number_fails_both_ways():
    m = compare_arrays([NAN, 1.0], [1.0, NAN], rtol=0.1, atol=0.1)
    assert (m.mismatched, m.max_abs_err, m.max_rel_err) == (2, INF, INF)
    assert m.worst == "[0]: got nan want 1.0"


def test_infinities():
    assert compare_arrays([INF], [INF], 0.0, 0.0).mismatched == 0
    assert compare_arrays([-INF], [-INF], 0.0, 0.0).mismatched == 0
    m = compare_arrays([INF], [-INF], 0.1, 0.1)
    assert (m.mismatched, m.max_abs_err, m.worst) == (1, INF, "[0]: got inf want -inf")
    # a huge finite number is not infinity, whatever the relative tolerance
    assert compare_arrays([INF], [1e308], 1.0, 1.0).mismatched == 1
    assert compare_arrays([1e308], [INF], 1.0, 1.0).mismatched == 1
    assert compare_arrays([NAN], [INF], 1.0, 1.0).mismatched == 1


def test_shape_mismatch():
    m = compare_arrays([1.0, 2.0, 3.0], [[1.0, 2.0, 3.0]], rtol=1.0, atol=1.0)
    assert (m.size, m.mismatched, m.max_abs_err, m.max_rel_err) == (3, 3, INF, INF)
    assert m.worst == "shape [3] != expected [1, 3]"
    m = compare_arrays(np.zeros((2, 3)), np.zeros(0), rtol=1.0, atol=1.0)
    assert (m.size, m.mismatched, m.worst) == (0, 6, "shape [2, 3] != expected [0]")


def test_empty_and_zero_dimensional():
    assert compare_arrays(np.zeros((0, 3)), np.zeros((0, 3)), 0.0, 0.0) == Metrics(size=0, shape=(0, 3))
    m = compare_arrays(np.float64(3.0), np.float64(4.0), rtol=0.0, atol=0.5)
    assert (m.size, m.mismatched, m.max_abs_err, m.max_rel_err) == (1, 1, 1.0, 0.25)
    assert m.worst == "[]: got 3.0 want 4.0"


def test_tolerance_boundary_is_inclusive():
    # want 4, rtol 0.25, atol 0.5: the bound atol + rtol*|want| is exactly 1.5 (all exact binary)
    want = np.array([4.0, -4.0])
    at = np.array([5.5, -2.5])
    assert compare_arrays(at, want, rtol=0.25, atol=0.5).mismatched == 0
    # one ulp further from the wanted value, on either side
    above = np.array([np.nextafter(5.5, INF), np.nextafter(-2.5, INF)])
    m = compare_arrays(above, want, rtol=0.25, atol=0.5)
    assert m.mismatched == 2
    assert m.max_abs_err == np.nextafter(5.5, INF) - 4.0
    # the rule scales with |want|, not |got|
    assert compare_arrays([0.0], [1.0], rtol=1.0, atol=0.0).mismatched == 0
    assert compare_arrays([1.0], [0.0], rtol=1.0, atol=0.0).mismatched == 1


def test_zero_tolerance_is_exact():
    assert compare_arrays([0.1 + 0.2], [0.3], 0.0, 0.0).mismatched == 1
    assert compare_arrays([0.5], [0.5], 0.0, 0.0).mismatched == 0


_VALUES = [0.0, -0.0, 1.0, -1.0, 4.0, 5.5, -2.5, float(np.nextafter(5.5, INF)), 1e-300, 5e-324, 1e308, -1e308,
           0.1 + 0.2, 0.3, NAN, INF, -INF]


@pytest.mark.parametrize("rtol,atol", [(0.0, 0.0), (0.25, 0.5), (1.3e-6, 1e-5), (1.0, 0.0)])
def test_zero_dimensional_values_follow_the_rule_of_arrays(rtol, atol):
    """Two 0-d values (a returned norm) are compared in Python floats: the metrics of the same
    two values as one-element arrays, for every pair of ordinary and non-finite values."""
    for g in _VALUES:
        for w in _VALUES:
            scalar = compare_arrays(np.float64(g), np.float64(w), rtol, atol)
            array = compare_arrays(np.array([g]), np.array([w]), rtol, atol)
            assert (scalar.size, scalar.shape) == (1, ())
            assert (scalar.mismatched, scalar.max_abs_err, scalar.max_rel_err) == \
                (array.mismatched, array.max_abs_err, array.max_rel_err), (g, w)
            assert scalar.worst == array.worst.replace("[0]", "[]", 1), (g, w)


def test_compare_many_gives_each_pair_s_own_metrics():
    """One pass over a cell's gradients gives the metrics that each pair alone gives: agreeing,
    off by a little, mismatched (with the worst element), and any pair list the one pass does not
    take (a non-finite difference, an empty or 0-d gradient, a shape that differs)."""
    rng = np.random.default_rng(7)
    shapes = [(8, 8), (8,), (3, 16), (1,)]
    for trial in range(40):
        want = [rng.normal(size=s) for s in shapes]
        got = [w.copy() for w in want]
        for g in got[: trial % 5]:
            g += rng.normal(scale=10.0 ** -rng.integers(4, 9), size=g.shape)
        if trial % 7 == 3:
            got[1][2] = NAN
        if trial % 11 == 5:
            got[2] = got[2][:1]
        if trial % 13 == 6:
            want[3] = np.float64(2.0)
            got[3] = np.float64(2.5)
        pairs = list(zip(got, want))
        for rtol, atol in [(1e-7, 1e-7), (1.3e-6, 1e-5), (0.0, 0.0)]:
            assert compare_many(pairs, rtol, atol) == [compare_arrays(g, w, rtol, atol) for g, w in pairs]
    assert compare_many([(np.zeros(0), np.zeros(0)), (np.ones(2), np.ones(2))], 0.0, 0.0) == \
        [Metrics(size=0, shape=(0,)), Metrics(size=2, shape=(2,))]
    assert compare_many([], 0.0, 0.0) == []


# --------------------------------------------------------------------------- compare_outputs


def test_compare_outputs_with_none_gradients_and_the_returned_norm():
    got = {"a": np.array([1.0, 2.0]), "b": None, "c": np.array([1.0]), "d": None}
    want = {"a": np.array([1.0, 2.2]), "b": None, "c": None, "d": np.array([0.0]), "e": np.array([1.0])}
    c = compare_outputs(got, want, rtol=0.0, atol=0.1, got_norm=3.0, want_norm=3.5, label="x/")
    assert not c.ok
    assert c.problems == [
        "x/a: 1/2 elements differ (max abs 0.2, max rel 0.0909; worst [1]: got 2.0 want 2.2)",
        "x/c: gradient is set, expected None",
        "x/d: gradient is None, expected a tensor",
        "x/e: missing from the framework's output",
        "x/returned norm 3.0 != expected 3.5",
    ]
    assert c.summary() == "; ".join(c.problems)
    assert sorted(c.params) == ["x/(returned norm)", "x/a"]
    norm = c.params["x/(returned norm)"]
    assert (norm.size, norm.mismatched, norm.max_abs_err, norm.max_rel_err) == (1, 1, 0.5, 0.5 / 3.5)
    assert c.totals() == {"max_abs_err": 0.5, "max_rel_err": 0.5 / 3.5, "mismatched": 2,
                          "tolerance": {"rtol": 0.0, "atol": 0.1}}
    assert (c.norm_got, c.norm_want) == (3.0, 3.5)


def test_compare_outputs_that_agree():
    got = {"w": np.array([[1.0, 2.0]]), "b": None}
    want = {"w": np.array([[1.0, 2.0000001]]), "b": None}
    c = compare_outputs(got, want, *DEFAULT_TOLERANCE["float32"], got_norm=NAN, want_norm=NAN)
    assert c.ok and c.problems == [] and c.summary() == ""
    assert c.params["(returned norm)"].mismatched == 0
    assert c.totals()["mismatched"] == 0


def test_compare_outputs_norm_only_when_both_sides_have_one():
    c = compare_outputs({}, {}, 0.0, 0.0, got_norm=1.0, want_norm=None)
    assert c.ok and c.params == {}
    assert c.totals() == {"max_abs_err": None, "max_rel_err": None, "mismatched": None,
                          "tolerance": {"rtol": 0.0, "atol": 0.0}}


def test_compare_outputs_norm_nan_against_number():
    c = compare_outputs({}, {}, 1e-3, 1e-5, got_norm=NAN, want_norm=2.0)
    assert c.problems == ["returned norm nan != expected 2.0"]


# --------------------------------------------------------------------------- check_expect


def test_check_expect_passes():
    e = Expect(total_norm=0.8154753, grads={"w": [1.0, 2.0], "b": None}, atol=1e-4)
    assert check_expect([e], {"w": np.array([1.00005, 2.0]), "b": None}, 0.81546, False) == []
    assert check_expect([], {}, None, True) == []


def test_check_expect_failure_messages():
    e = Expect(total_norm=0.8154753, grads={"w": [1.0, 2.0], "b": None}, atol=1e-4)
    assert check_expect([e], {"w": np.array([1.001, 2.0]), "b": np.array([1.0])}, 0.8156, False) == [
        "expect.total_norm: got 0.8156, expected 0.8154753 (atol 0.0001)",
        "expect.grads.w: 1 elements off by more than atol 0.0001 (worst [0]: got 1.001 want 1.0)",
        "expect.grads.b: got a tensor",
    ]
    e = Expect(grads={"w": [1.0]})
    assert check_expect([e], {"w": None}, None, False) == ["expect.grads.w: got None"]


def test_check_expect_raises():
    assert check_expect([Expect(raises=True)], {}, None, True) == []
    assert check_expect([Expect(raises=True)], {}, None, False) == ["expect.raises is True but the call returned"]
    e = Expect(total_norm=1.0)
    assert check_expect([e], {}, None, True) == ["expect.raises is False but the call raised"]


def test_check_expect_uses_atol_only_by_default():
    # rtol is 0 unless given: a large number off by more than atol fails even if relatively tiny
    e = Expect(total_norm=1e6, grads={"w": [1e6]}, atol=1e-3)
    fails = check_expect([e], {"w": np.array([1e6 + 0.01])}, 1e6 + 0.01, False)
    assert fails == [
        "expect.total_norm: got 1000000.01, expected 1000000.0 (atol 0.001)",
        "expect.grads.w: 1 elements off by more than atol 0.001 (worst [0]: got 1000000.01 want 1000000.0)",
    ]


def test_check_expect_with_rtol():
    e = Expect(total_norm=1e6, grads={"w": [1e6]}, atol=0.0, rtol=1e-7)
    assert check_expect([e], {"w": np.array([1e6 + 0.01])}, 1e6 + 0.01, False) == []
    fails = check_expect([e], {"w": np.array([1e6 + 1.0])}, 1e6 + 1.0, False)
    assert fails == [
        "expect.total_norm: got 1000001.0, expected 1000000.0 (atol 0.0, rtol 1e-07)",
        "expect.grads.w: 1 elements off by more than atol 0.0, rtol 1e-07 (worst [0]: got 1000001.0 want 1000000.0)",
    ]


def test_check_expect_gradients_after_a_raise():
    """torch's clip_grad_norm_(error_if_nonfinite=True) raises and leaves the gradients as they
    were: `raises: true` with `grads: unchanged` (or literals) states it."""
    before = {"w": np.array([1.0, np.inf])}
    e = Expect(raises=True, grads="unchanged")
    assert check_expect([e], {"w": np.array([1.0, np.inf])}, None, True, before=before) == []
    assert check_expect([e], {"w": np.array([0.0, np.nan])}, None, True, before=before) == [
        "expect.grads.w after the raise: 2 elements off by more than atol 1e-06 (worst [1]: got nan want inf)"]
    e = Expect(raises=True, grads={"w": [1.0, 2.0]})
    assert check_expect([e], {"w": np.array([1.0, 2.0])}, None, True) == []


def test_check_expect_entries_per_target_api():
    entries = [Expect(api="a.clip", total_norm=1.0), Expect(api=["b.clip", "c.clip"], raises=True), Expect(atol=0.1)]
    assert [e.holds_for("a.clip") for e in entries] == [True, False, True]
    assert [e.holds_for("c.clip") for e in entries] == [False, True, True]
    fails = check_expect([entries[0], entries[2]], {}, 2.0, False)
    assert fails == ["expect[a.clip].total_norm: got 2.0, expected 1.0 (atol 1e-06)"]


def test_factors_from_sums_of_squares_worked_out_once_are_the_same():
    """``compare_factors`` and ``summaries.clip_factors`` take the gradients' sums of squares
    from ``squares`` where the caller has them (a sweep's inputs: once per case): the same
    problems and factors as working them out, and those numbers are what they use."""
    from conformance.summaries import clip_factors

    rng = np.random.default_rng(5)
    before = {"w": rng.normal(size=(8, 8)), "b": rng.normal(size=8), "none": None}
    want = {n: None if a is None else a * 0.25 for n, a in before.items()}
    got = {"w": (want["w"] * (1 + 1e-5)).astype(np.float32), "b": want["b"].astype(np.float32), "none": None}
    dtypes = dict.fromkeys(before, "float32")
    sb, sg = squares(before), squares(got)
    assert sb["none"] is None and sb["w"] == float(np.dot(before["w"].ravel(), before["w"].ravel()))
    plain = compare_factors(before, got, want, dtypes, 1.3e-6)
    assert plain and plain[0].startswith("w: clipping factor")  # 1e-5 off: a different factor
    assert compare_factors(before, got, want, dtypes, 1.3e-6, sq_before=sb, sq_got=sg) == plain
    assert compare_factors(before, got, want, dtypes, 1.3e-6, sq_got=dict(sg, w=sg["w"] / (1 + 1e-5) ** 2)) == []
    p1, p2 = {"w": {}, "b": {}}, {"w": {}, "b": {}}
    assert clip_factors(before, got, want, p1) == clip_factors(before, got, want, p2, sq_before=sb, sq_got=sg)
    assert p1 == p2 and p1["b"]["factor"]["want"] == pytest.approx(0.25)
    assert clip_factors(before, got, want, {}, sq_before=dict(sb, w=4 * sb["w"], b=4 * sb["b"]))["want"] == \
        pytest.approx(0.125)


def test_clipping_factor_allows_one_ulp_of_each_output_and_no_more():
    """Float16 outputs in the subnormal range: one unit in the last place of every element moves
    the factor by 2.9 % (far past rtol 1e-3); that is rounding (no problem), two units are not.
    The slack is worked out only for factors apart by more than rtol: the same verdicts."""
    before = {"g": np.array([3e-6, -5e-6, 4e-6])}
    want = {"g": before["g"] * 0.5}
    rw = round_to(want["g"], "float16")
    u = ulp(rw, "float16")
    assert np.all(u == 2.0 ** -24)  # float16's subnormal spacing
    one, two = {"g": rw + u * np.sign(rw)}, {"g": rw + 2 * u * np.sign(rw)}
    assert compare_factors(before, one, want, {"g": "float16"}, 1e-3) == []
    assert compare_factors(before, two, want, {"g": "float16"}, 1e-3) == \
        ["g: clipping factor 0.5305148, oracle 0.5018839 (rtol 0.001; the elements agree within atol only)"]
    assert compare_factors(before, {"g": rw}, want, {"g": "float16"}, 1e-3) == []
