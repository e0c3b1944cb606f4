"""The oracle's clipping semantics: hand-computed numbers, numpy.linalg.norm and the seeds'
worked examples. numpy only: the oracle must not lean on any framework."""

import math

import numpy as np
import pytest

from conformance.kinds.clipping.oracle import (
    OracleResult,
    clip_grad_norm,
    clip_grad_value,
    clip_grads_with_norm,
    get_total_norm,
    total_norm,
    vector_norm,
)
from conformance.tensors import round_to

INF, NAN = math.inf, math.nan
SEED_W = np.array([[-0.1, -0.25, -0.1], [0.1, 0.25, 0.1]])
SEED_B = np.array([-0.5, 0.5])


def grads345():
    """One tensor of L2 norm exactly 5."""
    return [np.array([3.0, 4.0])]


# --------------------------------------------------------------------------- seeds' examples


def test_seed_000_clip_grad_norm():
    """MindSpore's clip_by_norm mapping page: total norm 0.8154753, clipped to 0.5."""
    res = clip_grad_norm([SEED_W, SEED_B], max_norm=0.5)
    assert res.raises is None
    assert res.total_norm == pytest.approx(0.8154753, abs=1e-7)
    assert res.total_norm == pytest.approx(math.sqrt(0.665), rel=1e-15)
    w, b = res.grads
    np.testing.assert_allclose(w, [[-0.0613, -0.1533, -0.0613], [0.0613, 0.1533, 0.0613]], atol=1e-4)
    np.testing.assert_allclose(b, [-0.3066, 0.3066], atol=1e-4)
    # the float32 numbers MindSpore printed
    np.testing.assert_allclose(w[0], [-6.13138638e-02, -1.53284654e-01, -6.13138638e-02], atol=1e-6)
    np.testing.assert_allclose(b, [-3.06569308e-01, 3.06569308e-01], atol=1e-6)
    # exactly g * max_norm / (norm + 1e-6)
    np.testing.assert_allclose(b, SEED_B * 0.5 / (math.sqrt(0.665) + 1e-6), rtol=1e-15)


def test_seed_001_clip_grad_value():
    res = clip_grad_value([SEED_W, SEED_B], 0.1)
    assert res.total_norm is None and res.raises is None
    np.testing.assert_array_equal(res.grads[0], [[-0.1] * 3, [0.1] * 3])
    np.testing.assert_array_equal(res.grads[1], [-0.1, 0.1])


# --------------------------------------------------------------------------- norms


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.0, INF])
def test_norms_match_numpy_linalg_norm(p):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(4, 5)), rng.normal(size=7), rng.normal(size=(2, 3, 2))]
    flat = np.concatenate([g.ravel() for g in grads])
    expected = np.linalg.norm(flat, ord=p)
    assert vector_norm(flat, p) == pytest.approx(expected, rel=1e-13)
    assert total_norm(grads, p, nesting="flat") == pytest.approx(expected, rel=1e-13)
    assert total_norm(grads, p) == pytest.approx(expected, rel=1e-13)
    assert get_total_norm(grads, p).total_norm == pytest.approx(expected, rel=1e-13)


def test_special_orders_by_hand():
    x = np.array([[-3.0, 0.0], [4.0, 0.5]])
    assert vector_norm(x, INF) == 4.0
    assert vector_norm(x, -INF) == 0.0
    assert vector_norm(np.array([-3.0, 2.0]), -INF) == 2.0
    assert vector_norm(x, 0) == 3.0
    assert vector_norm(x, 1) == 7.5
    assert vector_norm(np.array([1.0, 4.0]), 0.5) == 9.0  # (1 + 2)**2
    assert vector_norm(np.array([1.0, 2.0]), -1) == pytest.approx(2 / 3)  # 1 / (1 + 1/2)
    assert vector_norm(np.array([0.0, 2.0]), -1) == 0.0


def test_empty_array_norms():
    e = np.zeros((0, 3))
    for p in [0, 0.5, 1, 2, INF]:
        assert vector_norm(e, p) == 0.0
    assert vector_norm(e, -INF) == INF


def test_p0_nested_and_flat_differ():
    grads = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0]), np.array([[5.0]])]
    assert total_norm(grads, 0, nesting="flat") == 3.0  # nonzero elements
    assert total_norm(grads, 0, nesting="nested") == 2.0  # tensors having a nonzero element
    assert total_norm(grads, 0) == 2.0  # nested is the default (torch)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, INF])
def test_nested_and_flat_agree_for_nonzero_p(p):
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=(3, 3)), rng.normal(size=4)]
    assert total_norm(grads, p, nesting="nested") == pytest.approx(total_norm(grads, p, nesting="flat"), rel=1e-14)


def test_nan_in_norms():
    x = np.array([1.0, NAN, 0.0])
    for p in [0.5, 1, 2, INF, -INF]:
        assert math.isnan(vector_norm(x, p))
    assert vector_norm(x, 0) == 2.0  # NaN != 0, so it counts
    assert vector_norm(np.array([1.0, INF]), 2) == INF
    assert vector_norm(np.array([1.0, INF]), -INF) == 1.0


def test_scaled_float64_norm_has_no_spurious_overflow_or_underflow():
    assert vector_norm(np.array([2e200, 2e200]), 2) == 2e200 * math.sqrt(2)
    assert vector_norm(np.array([1e-200] * 4), 2) == 2e-200
    assert vector_norm(np.array([1e200, 1e200]), 3) == pytest.approx(1e200 * 2 ** (1 / 3), rel=1e-15)
    assert vector_norm(np.array([1e20] * 4), 2) == 2e20
    assert vector_norm(np.array([1e-200, 1.0]), -2) == pytest.approx(1e-200, rel=1e-15)
    assert total_norm([np.array([1e20]), np.array([1e20])], 2) == pytest.approx(1e20 * math.sqrt(2), rel=1e-15)


def test_float32_accumulation_overflows():
    x = np.array([1e20, 1e20])
    assert vector_norm(x, 2, accumulate="float32") == INF  # 1e40 > float32 max
    assert vector_norm(x, 1, accumulate="float32") == float(np.float32(2e20))
    assert total_norm([x], 2, accumulate="float32") == INF
    res = clip_grad_norm([x], 1.0, accumulate="float32")
    assert res.total_norm == INF
    np.testing.assert_array_equal(res.grads[0], [0.0, 0.0])  # coefficient 1 / inf = 0


def test_accumulation_in_low_precision_by_hand():
    # float16: 300**2 = 90000 > 65504 overflows; float32 does not
    x = np.array([300.0, 300.0])
    assert vector_norm(x, 2, accumulate="float16") == INF
    assert vector_norm(x, 2, accumulate="float32") == float(np.float32(300 * math.sqrt(2)))
    # the result is rounded to the dtype
    assert vector_norm(np.ones(2), 2, accumulate="float32") == float(np.float32(math.sqrt(2)))
    assert vector_norm(np.ones(2), 2, accumulate="bfloat16") == 1.4140625
    assert vector_norm(np.ones(2), 2, accumulate="float16") == float(np.float16(math.sqrt(2)))
    # each term is rounded: 0.1**2 in float16 is not 0.01
    t = float(np.float16(float(np.float16(0.1)) ** 2))
    assert vector_norm(np.array([0.1]), 2, accumulate="float16") == float(np.float16(math.sqrt(t)))
    assert vector_norm(np.array([1.0, -2.5, 0.0]), INF, accumulate="bfloat16") == 2.5
    assert vector_norm(np.array([1.0, -2.5, 0.0]), 0, accumulate="float16") == 2.0


def test_low_precision_clip_rounds_coefficient_and_outputs():
    g = round_to(np.array([0.3, -0.7, 1.9]), "float16")
    res = clip_grad_norm([g], 0.5, accumulate="float16")
    norm = float(np.float16(math.sqrt(float(np.float16(float(np.sum(round_to(g**2, "float16"))))))))
    assert res.total_norm == norm
    coef = float(np.float16(0.5 / float(np.float16(norm + 1e-6))))
    np.testing.assert_array_equal(res.grads[0], round_to(g * coef, "float16"))


# --------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize("threshold,max_norm,scaled", [
    ("clamp", 10.0, False), ("strict", 10.0, False), ("non_strict", 10.0, False),  # below
    ("clamp", 5.0, True), ("strict", 5.0, False), ("non_strict", 5.0, True),  # at
    ("clamp", 1.0, True), ("strict", 1.0, True), ("non_strict", 1.0, True),  # above
])
def test_threshold_rules(threshold, max_norm, scaled):
    res = clip_grad_norm(grads345(), max_norm, threshold=threshold)
    assert res.total_norm == 5.0
    expected = np.array([3.0, 4.0]) * (max_norm / (5.0 + 1e-6) if scaled else 1.0)
    np.testing.assert_allclose(res.grads[0], expected, rtol=1e-15)


def test_threshold_rules_with_eps_zero_at_the_norm():
    for threshold in ["clamp", "strict", "non_strict"]:
        res = clip_grad_norm(grads345(), 5.0, eps=0.0, threshold=threshold)
        np.testing.assert_array_equal(res.grads[0], [3.0, 4.0])
    res = clip_grad_norm(grads345(), 2.5, eps=0.0, threshold="strict")
    np.testing.assert_array_equal(res.grads[0], [1.5, 2.0])


def test_eps_enters_the_coefficient():
    res = clip_grad_norm(grads345(), 1.0, eps=1.0)
    np.testing.assert_allclose(res.grads[0], [0.5, 4.0 / 6.0], rtol=1e-15)


def test_negative_and_zero_max_norm_are_plain_arithmetic():
    res = clip_grad_norm(grads345(), -1.0)
    np.testing.assert_allclose(res.grads[0], [-3.0 / (5 + 1e-6), -4.0 / (5 + 1e-6)], rtol=1e-15)
    res = clip_grad_norm(grads345(), -1.0, threshold="strict")  # 5 > -1: scaled, sign flipped
    assert (res.grads[0] < 0).all()
    np.testing.assert_array_equal(clip_grad_norm(grads345(), 0.0).grads[0], [0.0, 0.0])
    res = clip_grad_norm([np.zeros(2)], 0.0, eps=0.0)  # 0 / 0
    assert res.total_norm == 0.0 and np.isnan(res.grads[0]).all()
    res = clip_grad_norm([np.zeros(2)], 1.0, eps=0.0)  # 1 / 0 = inf, min(1, inf) = 1
    np.testing.assert_array_equal(res.grads[0], [0.0, 0.0])


def test_clip_grads_with_norm_uses_the_given_norm():
    res = clip_grads_with_norm([np.array([3.0, 4.0]), None], 1.0, 10.0)
    assert res.total_norm is None and res.raises is None
    np.testing.assert_allclose(res.grads[0], [0.3 / (1 + 1e-7), 0.4 / (1 + 1e-7)], rtol=1e-15)
    assert res.grads[1] is None
    res = clip_grads_with_norm(grads345(), 1.0, 0.5, threshold="strict")
    np.testing.assert_array_equal(res.grads[0], [3.0, 4.0])


# --------------------------------------------------------------------------- non-finite norms


def test_inf_norm_propagate():
    res = clip_grad_norm([np.array([1.0, INF, -2.0]), np.array([0.5])], 1.0)
    assert res.total_norm == INF and res.raises is None
    np.testing.assert_array_equal(res.grads[0], [0.0, NAN, -0.0])  # inf * 0 = NaN
    np.testing.assert_array_equal(res.grads[1], [0.0])


def test_nan_norm_propagate():
    res = clip_grad_norm([np.array([1.0, NAN]), np.array([0.5])], 1.0)
    assert math.isnan(res.total_norm)
    assert all(np.isnan(g).all() for g in res.grads)  # NaN coefficient everywhere
    # only-if-above: NaN > max_norm is false, nothing is scaled
    res = clip_grad_norm([np.array([1.0, NAN]), np.array([0.5])], 1.0, threshold="strict")
    np.testing.assert_array_equal(res.grads[1], [0.5])


@pytest.mark.parametrize("bad", [INF, NAN])
def test_nonfinite_skip_leaves_grads_unchanged(bad):
    grads = [np.array([1.0, bad]), None, np.array([0.5])]
    res = clip_grad_norm(grads, 1.0, nonfinite="skip")
    assert res.raises is None and not math.isfinite(res.total_norm)
    np.testing.assert_array_equal(res.grads[0], grads[0])
    assert res.grads[1] is None
    np.testing.assert_array_equal(res.grads[2], [0.5])


@pytest.mark.parametrize("bad", [INF, -INF, NAN])
def test_nonfinite_raise(bad):
    grads = [np.array([1.0, bad])]
    for res in [clip_grad_norm(grads, 1.0, nonfinite="raise"), clip_grad_norm(grads, 1.0, error_if_nonfinite=True),
                clip_grad_norm(grads, 1.0, 2.0, True), get_total_norm(grads, 2.0, True),
                get_total_norm(grads, nonfinite="raise")]:
        assert res.raises == "RuntimeError" and res.grads is None
        assert not math.isfinite(res.total_norm)
    assert clip_grad_norm([np.array([1.0])], 1.0, error_if_nonfinite=True).raises is None


def test_get_total_norm_leaves_grads_alone():
    grads = [np.array([3.0, 4.0]), None]
    res = get_total_norm(grads)
    assert res == OracleResult(grads=res.grads, total_norm=5.0)
    np.testing.assert_array_equal(res.grads[0], [3.0, 4.0])
    assert res.grads[1] is None and res.grads[0] is not grads[0]
    assert get_total_norm([np.array([INF])]).total_norm == INF


# --------------------------------------------------------------------------- per-tensor scope


def test_per_tensor_scope():
    grads = [np.array([3.0, 4.0]), np.array([0.3, 0.4]), None]
    res = clip_grad_norm(grads, 1.0, scope="per_tensor")
    assert res.total_norm is None
    np.testing.assert_allclose(res.grads[0], [0.6 / (1 + 2e-7), 0.8 / (1 + 2e-7)], rtol=1e-15)
    np.testing.assert_array_equal(res.grads[1], [0.3, 0.4])  # norm 0.5 < 1: min(1, coef) = 1
    assert res.grads[2] is None
    glob = clip_grad_norm(grads, 1.0)  # the global norm (5.025) scales both
    assert glob.total_norm == pytest.approx(math.sqrt(25.25))
    assert glob.grads[1][0] < 0.3


def test_per_tensor_nonfinite_policies():
    grads = [np.array([INF, 1.0]), np.array([3.0, 4.0])]
    skip = clip_grad_norm(grads, 1.0, scope="per_tensor", nonfinite="skip")
    np.testing.assert_array_equal(skip.grads[0], [INF, 1.0])
    np.testing.assert_allclose(skip.grads[1], [0.6, 0.8], rtol=1e-6)
    prop = clip_grad_norm(grads, 1.0, scope="per_tensor")
    np.testing.assert_array_equal(prop.grads[0], [NAN, 0.0])
    raised = clip_grad_norm(grads, 1.0, scope="per_tensor", error_if_nonfinite=True)
    assert raised.raises == "RuntimeError" and raised.grads is None and raised.total_norm is None


# --------------------------------------------------------------------------- value clipping


def test_value_clip_negative_clip_value():
    """clip_value -0.5 gives lo = 0.5 > hi = -0.5: torch.clamp makes everything hi."""
    g = np.array([-2.0, 0.0, 2.0])
    np.testing.assert_array_equal(clip_grad_value([g], -0.5).grads[0], [-0.5, -0.5, -0.5])
    np.testing.assert_array_equal(clip_grad_value([g], -0.5, order="min_last").grads[0], [0.5, 0.5, 0.5])


def test_value_clip_min_above_max_both_orders():
    g = np.array([-2.0, 0.5, 2.0])
    np.testing.assert_array_equal(clip_grad_value([g], min=1.0, max=-1.0).grads[0], [-1.0, -1.0, -1.0])
    np.testing.assert_array_equal(clip_grad_value([g], min=1.0, max=-1.0, order="min_last").grads[0], [1.0] * 3)
    # with lo <= hi both orders agree
    for order in ["max_last", "min_last"]:
        np.testing.assert_array_equal(clip_grad_value([g], min=-1.0, max=1.0, order=order).grads[0], [-1.0, 0.5, 1.0])


def test_value_clip_one_sided_and_override():
    g = np.array([-2.0, 0.5, 2.0])
    np.testing.assert_array_equal(clip_grad_value([g], min=0.0).grads[0], [0.0, 0.5, 2.0])
    np.testing.assert_array_equal(clip_grad_value([g], max=0.0).grads[0], [-2.0, 0.0, 0.0])
    np.testing.assert_array_equal(clip_grad_value([g], 0.1, min=-1.0, max=1.5).grads[0], [-1.0, 0.5, 1.5])
    # no bound at all: the call raises (as a result the classification judges, never a crash)
    assert clip_grad_value([g]).raises == "TypeError"
    assert clip_grad_value([g], unbounded="ValueError").raises == "ValueError"


def test_value_clip_empty_range_clamps_or_raises():
    g = np.array([-2.0, 0.5, 2.0])
    np.testing.assert_array_equal(clip_grad_value([g], min=1.0, max=-1.0).grads[0], [-1.0, -1.0, -1.0])
    assert clip_grad_value([g], -1.0, empty_range="raise").raises == "ValueError"  # lo 1 > hi -1
    assert clip_grad_value([g], 1.0, empty_range="raise").grads is not None


@pytest.mark.parametrize("nan,expected", [("propagate", NAN), ("min", -0.5), ("max", 0.5)])
def test_value_clip_nan_policies(nan, expected):
    g = np.array([NAN, 1.0, -1.0, INF, -INF])
    out = clip_grad_value([g], 0.5, nan=nan).grads[0]
    np.testing.assert_array_equal(out, [expected, 0.5, -0.5, 0.5, -0.5])
    one_sided = clip_grad_value([g], max=0.5, nan="min").grads[0]  # no lower bound: NaN stays
    assert math.isnan(one_sided[0])


# --------------------------------------------------------------------------- None and empty


def test_none_gradients_are_ignored_and_returned_as_none():
    g = np.array([3.0, 4.0])
    for res in [clip_grad_norm([None, g, None], 1.0), clip_grad_norm([None, g], 1.0, scope="per_tensor"),
                clip_grad_value([None, g], 1.0), get_total_norm([None, g])]:
        assert res.grads[0] is None
    assert clip_grad_norm([None, g, None], 1.0).total_norm == 5.0
    np.testing.assert_allclose(clip_grad_norm([None, g, None], 1.0).grads[1], g / (5 + 1e-6), rtol=1e-15)


@pytest.mark.parametrize("grads", [[], [None, None]])
def test_no_gradients(grads):
    for p in [0, 1.0, 2.0, INF, -INF]:
        assert total_norm(grads, p) == 0.0
        assert total_norm(grads, p, nesting="flat") == 0.0
    res = clip_grad_norm(grads, 1.0)
    assert res == OracleResult(grads=list(grads), total_norm=0.0)
    assert clip_grad_norm(grads, 1.0, error_if_nonfinite=True).raises is None
    assert get_total_norm(grads).total_norm == 0.0
    assert clip_grad_value(grads, 1.0).grads == list(grads)
    assert clip_grad_norm(grads, 1.0, scope="per_tensor").grads == list(grads)


def test_inputs_are_not_modified_and_outputs_are_float64():
    g = np.array([3.0, 4.0], dtype=np.float32)
    for res in [clip_grad_norm([g], 1.0), clip_grad_value([g], 1.0), clip_grad_norm([g], 1.0, threshold="strict")]:
        assert res.grads[0].dtype == np.float64
        assert res.grads[0] is not g
    np.testing.assert_array_equal(g, [3.0, 4.0])


def test_unknown_knob_values_are_rejected():
    with pytest.raises(ValueError):
        clip_grad_norm(grads345(), 1.0, threshold="above")
    with pytest.raises(ValueError):
        clip_grad_norm(grads345(), 1.0, scope="layer")
    with pytest.raises(ValueError):
        total_norm(grads345(), nesting="deep")
    with pytest.raises(ValueError):
        clip_grad_value(grads345(), 1.0, order="sideways")


def test_clip_grad_value_bound_dtype_rounds_the_bounds():
    # measured on MindSpore 2.10 CPU (float16): NaN into [-1e5, 1e5] gives -inf, into
    # [-70000, 1] -inf, into [-65504, 65504] -65504; 2 and -3 stay, 35008 stays
    g = np.array([math.nan, 2.0, -3.0, 35008.0])
    got = clip_grad_value([g], min=-1e5, max=1e5, nan="bound", bound_dtype="float16").grads[0]
    np.testing.assert_array_equal(got, [-math.inf, 2.0, -3.0, 35008.0])
    got = clip_grad_value([g], min=-70000.0, max=1.0, nan="bound", bound_dtype="float16").grads[0]
    np.testing.assert_array_equal(got, [-math.inf, 1.0, -3.0, 1.0])
    got = clip_grad_value([g], max=1e5, nan="bound", bound_dtype="float16").grads[0]
    np.testing.assert_array_equal(got, [math.inf, 2.0, -3.0, 35008.0])
    got = clip_grad_value([g], min=-65504.0, max=65504.0, nan="bound", bound_dtype="float16").grads[0]
    np.testing.assert_array_equal(got, [-65504.0, 2.0, -3.0, 35008.0])
    # without the knob the bounds are exact: 1e5 clips nothing and NaN becomes -1e5
    got = clip_grad_value([g], min=-1e5, max=1e5, nan="bound").grads[0]
    np.testing.assert_array_equal(got, [-1e5, 2.0, -3.0, 35008.0])
    # a bound rounds to its nearest float16: 1.0001 is 1.0
    np.testing.assert_array_equal(clip_grad_value([np.array([3.0])], 1.0001, bound_dtype="float16").grads[0], [1.0])


def test_square_sum_floor_and_select_reproduce_mindspore_clipbynorm():
    # measured, MindSpore 2.10 CPU nn.ClipByNorm (float32): a NaN norm counts as sqrt(1e-6) = 1e-3
    knobs = dict(scope="per_tensor", eps=0.0, threshold="select", square_sum_floor=1e-6)
    for x, c, want in (([math.nan, 1.0], 1e-4, [math.nan, 0.1]), ([math.nan, 5.0], 5e-4, [math.nan, 2.5]),
                       ([math.nan, 1.0], 2e-3, [math.nan, 1.0]), ([math.inf, 1.0], 0.5, [math.nan, 0.0]),
                       ([1.0, 0.0, 2.0], math.inf, [1.0, math.nan, 2.0]),  # 0 * inf: NaN
                       ([3.0, 4.0], 1.0, [0.6, 0.8]), ([0.3, 0.4], 1.0, [0.3, 0.4]),
                       ([1e-5, 0.0], 1e-4, [1e-5 * 1e-4 / 1e-3, 0.0])):  # norm 1e-5 floored to 1e-3
        got = clip_grad_norm([np.array(x)], c, **knobs).grads[0]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
    # with the floor and select gone it is the ordinary per-tensor clamp without epsilon
    got = clip_grad_norm([np.array([math.nan, 1.0])], 1e-4, scope="per_tensor", eps=0.0).grads[0]
    assert np.isnan(got).all()
    with pytest.raises(ValueError, match="per_tensor L2"):
        clip_grad_norm([np.array([1.0])], 1.0, square_sum_floor=1e-6)


def test_root_sum_float32_casts_the_power_sum_before_the_root():
    # measured, MindSpore 2.10 CPU clip_by_global_norm on float64 [1e20]: the sum of squares 1e40
    # is cast to float32 (inf), so the norm is inf and the gradient 0; with the root taken in
    # float64 the norm would be 1e20, well inside float32
    kw = dict(sum_dtype="float64", accumulate="float64")
    assert vector_norm(np.array([1e20]), 2.0, root="sum_float32", **kw) == math.inf
    assert vector_norm(np.array([1e20]), 2.0, **kw) == 1e20
    # 1e-30: the float64 sum 1e-60 is 0 in float32
    assert vector_norm(np.array([1e-30]), 2.0, root="sum_float32", **kw) == 0.0
    # 1e-20: 1e-40 is a float32 subnormal, its root off by ~3e-6 relative
    got = vector_norm(np.array([1e-20]), 2.0, root="sum_float32", **kw)
    assert got == float(np.sqrt(np.float32(1e-40))) and abs(got / 1e-20 - 1) > 1e-6
    with pytest.raises(ValueError, match="needs sum_dtype"):
        vector_norm(np.array([1.0]), 2.0, root="sum_float32")



def test_root_sum_float32_ftz_flushes_a_subnormal_float32_sum():
    # measured, MindSpore 2.10 CPU clip_by_global_norm under mindspore.jit (graph mode) on float64
    # gradients of 1e-20 with clip_norm 1e-21: unclipped, because the float64 sum of squares
    # (about 1e-39) cast to float32 is subnormal and flushed, so the norm is 0 (PyNative keeps it)
    kw = dict(sum_dtype="float64", accumulate="float64")
    assert vector_norm(np.array([1e-20]), 2.0, root="sum_float32_ftz", **kw) == 0.0
    assert vector_norm(np.array([1e-20]), 2.0, root="sum_float32", **kw) > 0.0
    # a normal float32 sum is kept: 2e-19 squared is 4e-38, above float32's tiny 1.18e-38
    assert vector_norm(np.array([2e-19]), 2.0, root="sum_float32_ftz", **kw) == \
        vector_norm(np.array([2e-19]), 2.0, root="sum_float32", **kw) > 0.0
    r = clip_grad_norm([np.array([1e-20, -2e-20])], 1e-21, eps=0.0, threshold="max_div", **kw,
                       root="sum_float32_ftz")
    np.testing.assert_array_equal(r.grads[0], [1e-20, -2e-20])  # max(0, 1e-21) = 1e-21: factor 1

def test_min_reciprocal_and_nonfinite_nan_reproduce_tensorflow_clip_by_global_norm():
    # tf.clip_by_global_norm: scale = clip_norm * min(1 / norm, 1 / clip_norm) + (norm - norm)
    # (measured, TF 2.21: [3, 4] with clip_norm 2 -> [1.2, 1.6]; -1 -> unchanged; inf -> NaN;
    # [inf, 1] -> [NaN, NaN]; [0, 0] with clip_norm 0 -> NaN)
    knobs = dict(scope="global", nesting="flat", eps=0.0, threshold="min_reciprocal", nonfinite="nan")
    g = [np.array([3.0, 4.0])]
    np.testing.assert_allclose(clip_grad_norm(g, 2.0, **knobs).grads[0], [1.2, 1.6], rtol=1e-15)
    assert clip_grad_norm(g, 2.0, **knobs).total_norm == 5.0
    np.testing.assert_allclose(clip_grad_norm(g, 10.0, **knobs).grads[0], [3.0, 4.0], rtol=1e-15)
    np.testing.assert_allclose(clip_grad_norm(g, -1.0, **knobs).grads[0], [3.0, 4.0], rtol=1e-15)
    assert np.isnan(clip_grad_norm(g, math.inf, **knobs).grads[0]).all()
    assert np.isnan(clip_grad_norm([np.zeros(2)], 0.0, **knobs).grads[0]).all()
    np.testing.assert_array_equal(clip_grad_norm([np.zeros(2)], -1.0, **knobs).grads[0], [0.0, 0.0])
    r = clip_grad_norm([np.array([math.inf, 1.0]), None], 1.0, **knobs)
    assert np.isnan(r.grads[0]).all() and r.grads[1] is None and r.total_norm == math.inf
    # torch's clamp gives [NaN, 0] for the same infinite norm
    assert clip_grad_norm([np.array([math.inf, 1.0])], 1.0, eps=0.0).grads[0][1] == 0.0


def test_enabled_positive_reproduces_keras_optimizer_clip_options():
    # Keras 3 (measured 3.15.1): SGD(clipnorm=0 / global_clipnorm=-1 / clipvalue=0) clips nothing
    g = [np.array([3.0, 4.0]), None]
    for max_norm in (0.0, -1.0, math.nan):
        r = clip_grad_norm(g, max_norm, eps=0.0, enabled="positive")
        np.testing.assert_array_equal(r.grads[0], [3.0, 4.0])
        assert r.grads[1] is None
    np.testing.assert_allclose(clip_grad_norm(g, 2.5, eps=0.0, enabled="positive").grads[0], [1.5, 2.0], rtol=1e-15)
    np.testing.assert_array_equal(clip_grad_norm(g, 0.0, eps=0.0).grads[0], [0.0, 0.0])  # "always": zeroed
    np.testing.assert_array_equal(clip_grad_value(g, 0.0, enabled="positive").grads[0], [3.0, 4.0])
    np.testing.assert_array_equal(clip_grad_value(g, 3.5, enabled="positive").grads[0], [3.0, 3.5])
    np.testing.assert_array_equal(clip_grad_value(g, 0.0).grads[0], [0.0, 0.0])
    # bounds given as min/max (a tf.clip_by_value source): the upper bound decides
    np.testing.assert_array_equal(clip_grad_value(g, min=1.0, max=-1.0, enabled="positive").grads[0], [3.0, 4.0])
    np.testing.assert_array_equal(clip_grad_value(g, min=-1.0, max=1.0, enabled="positive").grads[0], [1.0, 1.0])


def test_rms_reproduces_optax_clip_by_block_rms():
    # optax 0.2.8 clip_by_block_rms(1.0) of ([500, 5], [300, 3]): each leaf / max(1, rms / 1.0),
    # rms = sqrt(mean(x**2)) = 355.5327 and 213.3196: both leaves end with rms exactly 1
    g = [np.array([500.0, 5.0]), np.array([300.0, 3.0]), None]
    r = clip_grad_norm(g, 1.0, scope="per_tensor", eps=0.0, threshold="clamp", rms=True)
    np.testing.assert_allclose(r.grads[0], [1.4141428569978354, 0.014141428569978354], rtol=1e-15)
    np.testing.assert_allclose(r.grads[1], [1.4141428569978354, 0.014141428569978354], rtol=1e-15)
    assert r.grads[2] is None and r.total_norm is None
    # a block already under the threshold stays, whatever its L2 norm (here 2.0 > 1.5)
    np.testing.assert_array_equal(clip_grad_norm([np.array([1.0, -1.0, 1.0, -1.0])], 1.5, scope="per_tensor",
                                                 eps=0.0, rms=True).grads[0], [1.0, -1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="rms is for per_tensor"):
        clip_grad_norm(g, 1.0, rms=True)


def test_root_l2_loss_halves_each_square_before_the_sum():
    # tf.linalg.global_norm = sqrt(2 * sum(l2_loss(t))), l2_loss summing square(x) * 0.5 in the
    # input dtype (measured, TF 2.21 float16: [0.0002] gives 0.0, where its square 6e-8 is kept)
    g = [np.array([0.0002, 0.0002])]
    assert total_norm(g, 2.0, nesting="flat", accumulate="float16", sum_dtype="float16", root="l2_loss") == 0.0
    assert total_norm(g, 2.0, nesting="flat", accumulate="float16", sum_dtype="float16") > 0.0
    # normal numbers: the same norm as the plain sum of squares
    h = [np.array([3.0, 4.0])]
    assert total_norm(h, 2.0, nesting="flat", accumulate="float16", sum_dtype="float16", root="l2_loss") == 5.0
    # a float16 sum of squares above 65504 is inf either way
    assert total_norm([np.array([200.0] * 4)], 2.0, nesting="flat", accumulate="float16", sum_dtype="float16",
                      root="l2_loss") == math.inf


def test_empty_max_reproduces_optax_tree_norm_inf_of_nothing():
    # optax 0.2.8: optax.tree.norm({'p0': jnp.zeros((0,))}, ord=jnp.inf) is -inf (tree_max's
    # initializer); the oracle's inf-norm of no elements is 0
    empty = [np.zeros((0,)), None]
    assert get_total_norm(empty, math.inf).total_norm == 0.0
    assert get_total_norm(empty, math.inf, empty_max=-math.inf).total_norm == -math.inf
    assert get_total_norm([], math.inf, empty_max=-math.inf).total_norm == -math.inf
    # any element at all: the max of |x| as before, whatever empty_max says
    assert get_total_norm([np.array([3.0, -4.0]), np.zeros((0,))], math.inf, empty_max=-math.inf).total_norm == 4.0
    assert get_total_norm(empty, 2.0, empty_max=-math.inf).total_norm == 0.0


def test_product_first_reproduces_tensorflow_clip_by_norm_overflow_in_float16():
    """tf.clip_by_norm is (t * clip_norm) / max(l2norm, clip_norm), the product first: in
    float16 [100] with clip_norm 1000 is inf (1e5 > 65504), [1000] NaN (inf / inf), [300] with
    clip_norm 200 is 0 (the square sum 9e4 is inf, the product 6e4 is finite); measured on
    tensorflow-cpu 2.21 (cases/tensorflow/tf-float16-product.yaml)."""
    knobs = dict(scope="per_tensor", eps=0.0, threshold="max_div", accumulate="float16", sum_dtype="float16",
                 max_norm_dtype="float16")
    tf = clip_grad_norm([np.array([100.0]), np.array(1000.0)], 1000.0, divide="product_first", **knobs)
    assert tf.grads[0].tolist() == [np.inf] and np.isnan(tf.grads[1])
    assert clip_grad_norm([np.array([300.0])], 200.0, divide="product_first", **knobs).grads[0].tolist() == [0.0]
    # the coefficient first: [100] is left alone, [1000] (square sum inf) is zeroed
    coef = clip_grad_norm([np.array([100.0]), np.array(1000.0)], 1000.0, **knobs)
    assert coef.grads[0].tolist() == [100.0] and float(coef.grads[1]) == 0.0
    exact = clip_grad_norm([np.array([3.0, 4.0])], 1.0, divide="product_first",
                                  scope="per_tensor", eps=0.0, threshold="max_div")
    np.testing.assert_allclose(exact.grads[0], [0.6, 0.8], rtol=1e-15)


def test_clip_grad_value_flush_reads_subnormals_as_signed_zeros():
    """flush=<dtype>: TensorFlow's CPU clip_by_value of float32 2.9e-39 (subnormal) is 0."""
    g = [np.array([2.938735877055719e-39, -3.0e-39, 0.25, 2.0])]
    out = clip_grad_value(g, min=-1.0, max=1.0, order="min_last", flush="float32").grads[0]
    assert out.tolist() == [0.0, 0.0, 0.25, 1.0] and np.signbit(out[1]) and not np.signbit(out[0])
    kept = clip_grad_value(g, min=-1.0, max=1.0, order="min_last").grads[0]
    assert kept.tolist() == [2.938735877055719e-39, -3.0e-39, 0.25, 1.0]
    f64 = clip_grad_value([np.array([1e-310, 1e-300])], clip_value=1.0, flush="float64").grads[0]
    assert f64.tolist() == [0.0, 1e-300]


def test_outer_ignore_reproduces_mindspore_graph_mode_inf_norm():
    """MindSpore's ops.clip_by_norm under mindspore.jit (measured, 2.10 CPU): [2, nan, -3] and
    [1, 0.5] have total inf-norm 1.0 (the NaN tensor's norm is skipped), [nan, 2] alone NaN."""
    two = [np.array([2.0, math.nan, -3.0]), np.array([1.0, 0.5])]
    assert total_norm(two, math.inf, max_nan="outer_ignore") == 1.0
    assert total_norm(two, math.inf, max_nan="compare") == 3.0  # PyNative
    assert math.isnan(total_norm(two, math.inf))  # torch
    assert math.isnan(total_norm([np.array([math.nan, 2.0])], math.inf, max_nan="outer_ignore"))
    assert total_norm(two, -math.inf, max_nan="outer_ignore") == 0.5
    got = clip_grad_norm(two, 1.0, math.inf, True, max_nan="outer_ignore").grads  # no raise
    # the oracle computes in float64: the same quotient, up to one rounding of the product
    np.testing.assert_allclose(got[1], np.array([1.0, 0.5]) / (1.0 + 1e-6), rtol=1e-15)


def test_clip_grads_with_norm_nonfinite_nan_reproduces_tensorflow_use_norm():
    # tf.clip_by_global_norm(t, clip_norm, use_norm=u): scale = clip_norm * min(1/u, 1/clip_norm)
    # + (u - u), so a non-finite u makes every gradient NaN (measured, TF 2.21: use_norm inf);
    # a float16 use_norm of 1e5 is inf in that dtype
    g = [np.array([3.0, -4.0])]
    r = clip_grads_with_norm(g, 1.0, math.inf, eps=0.0, threshold="min_reciprocal", nonfinite="nan")
    assert np.isnan(r.grads[0]).all()
    r = clip_grads_with_norm(g, 1.0, math.inf, eps=0.0, threshold="min_reciprocal")  # IEEE: 1/inf = 0
    np.testing.assert_array_equal(r.grads[0], [0.0, -0.0])
    r = clip_grads_with_norm(g, 10.0, 1e5, eps=0.0, threshold="min_reciprocal", nonfinite="nan", accumulate="float16")
    assert np.isnan(r.grads[0]).all()
    r = clip_grads_with_norm(g, 10.0, 1e5, eps=0.0, threshold="min_reciprocal", nonfinite="nan")
    np.testing.assert_allclose(r.grads[0], [3e-4, -4e-4])


def test_total_norm_remembers_answers_by_value_not_by_object():
    """A sweep asks for the same gradients' norm once per threshold: small gradients' norms are
    remembered by their bytes, so the answer is the computed one, and gradients changed in place
    (the same objects, other values) get their own."""
    from conformance.kinds.clipping import oracle as o

    rng = np.random.default_rng(3)
    grads = [rng.normal(size=(8, 8)), None, rng.normal(size=8)]
    gs = [g for g in grads if g is not None]
    for p in (2.0, 1.0, 3, math.inf, 0.0):
        for knobs in ({}, {"nesting": "flat"}, {"accumulate": "float32"}, {"sum_dtype": "float32"}):
            want = o._total_norm(gs, p, **{**dict(nesting="nested", accumulate="float64", power_sum="abs",
                                                  root="exact", sum_dtype=None, max_nan="propagate",
                                                  exponent="exact", summation="exact"), **knobs})
            assert o.total_norm(grads, p, **knobs) == want
            assert o.total_norm(grads, p, **knobs) == want  # remembered
    before = o.total_norm(grads)
    grads[0][0, 0] += 100.0
    assert o.total_norm(grads) != before
    assert o.total_norm(grads) == o._total_norm(gs, 2.0, nesting="nested", accumulate="float64", power_sum="abs",
                                                root="exact", sum_dtype=None, max_nan="propagate",
                                                exponent="exact", summation="exact")
    big = [np.ones(o.MEMO_BYTES // 8 + 1)]  # past the memo: computed each time
    assert o.total_norm(big) == math.sqrt(big[0].size)
    assert math.isnan(o.total_norm([np.array([1.0, math.nan])]))
