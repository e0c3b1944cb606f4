"""The clipping matrix's generator features (put:, per-parameter dtype:, 0-d, empty) and the
oracle knobs it needed (sum_dtype, max_nan, nonfinite=skip_nan, an error_if_nonfinite override),
each against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance import compare, registry, tensors
from conformance.kinds.clipping import oracle as clipping
from conformance.plan import plan
from conformance.kinds.clipping.cell import build_inputs, oracle_call
from conformance.spec.load import parse_text

NAN, INF = math.nan, math.inf


def _case(text: str):
    res = parse_text(text, "m.yaml")
    return res


# --------------------------------------------------------------------------- generators


def test_put_places_special_values_after_scaling():
    a = tensors.generate({"fill": 2.0, "shape": [2, 3], "scale": 10.0,
                          "put": [[0, 1, NAN], [1, -1, -INF], [1, 0, 0.5]]})
    assert a[0, 0] == 20.0 and math.isnan(a[0, 1]) and a[1, 2] == -INF and a[1, 0] == 0.5
    assert tensors.generate({"fill": 1.0, "shape": [], "put": [[INF]]}).tolist() == INF
    with pytest.raises(ValueError, match="2 indices for a tensor of shape"):
        tensors.generate({"fill": 1.0, "shape": [3], "put": [[0, 0, 1.0]]})


def test_zero_dim_and_empty_shapes():
    assert tensors.generate({"fill": 1.5, "shape": []}).shape == ()
    assert tensors.generate({"fill": 0.0, "shape": [0, 10]}).shape == (0, 10)
    assert tensors.generate({"random": "normal", "shape": [0], "seed": 1}).shape == (0,)


@pytest.mark.parametrize("put, problem", [
    ("[[0, 5, 1.0]]", "put[0]: index 5 out of range for axis 1 of size 3"),
    ("[[0, 1.0]]", "put[0]: 1 indices for a tensor of shape [2, 3]"),
    ("[[0.5, 1, 1.0]]", "put[0]: indices must be integers"),
])
def test_bad_put_is_a_file_line_error(put, problem):
    res = _case(f"id: c\ntitle: t\ngrads:\n  w: {{fill: 1.0, shape: [2, 3], put: {put}}}\nclip: {{api: a.b}}\n")
    assert not res.cases
    assert problem in str(res.errors[0]) and str(res.errors[0]).startswith("m.yaml:4: grads.w")


def test_parameter_dtype_reaches_the_job_and_rounds_to_its_own_dtype():
    res = _case("id: c\ntitle: t\ndtypes: [float32]\ngrads:\n"
                "  w: {fill: 0.1, shape: [2]}\n  h: {fill: 0.1, shape: [2], dtype: float16}\n"
                "clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}\n")
    assert not res.errors
    inp = build_inputs(res.cases[0].case, "float32")
    params = {p["name"]: p for p in inp.job["params"]}
    assert "dtype" not in params["w"] and params["w"]["grad"].dtype == np.float32
    assert params["h"]["dtype"] == "float16" and params["h"]["grad"].dtype == np.float16
    assert inp.grads["h"].tolist() == [0.0999755859375] * 2  # float16's 0.1
    assert inp.grads["w"].tolist() == [0.10000000149011612] * 2  # float32's 0.1
    cells = plan(res.cases, registry.load(), backends={"torch"}, device="cpu").cells
    assert cells and all(c.facts()["mixed_dtypes"] is True for c in cells)


def test_dtype_in_a_model_tensor_is_rejected():
    res = _case("id: c\ntitle: t\nmodel:\n  layers: [{type: linear, in: 2, out: 1, weight: {fill: 1, dtype: float16}}]\n"
                "  loss: {type: sum}\n  inputs: [[1.0, 2.0]]\nclip: {api: a.b}\n")
    assert not res.cases and "for injected `grads:` only" in str(res.errors[0])


def test_mixed_dtypes_take_the_loosest_tolerance():
    assert compare.tolerance("float32", None, ["float16"]) == (1e-3, 1e-5)
    assert compare.tolerance("float64", None, ["float32"]) == (1.3e-6, 1e-5)
    assert compare.tolerance("float32") == (1.3e-6, 1e-5)


# --------------------------------------------------------------------------- oracle knobs


def test_sum_dtype_float64_overflows_where_the_exact_norm_does_not():
    x = [2e200, 2e200]
    assert clipping.vector_norm(x, 2) == pytest.approx(2e200 * math.sqrt(2), rel=1e-15)
    assert clipping.vector_norm(x, 2, sum_dtype="float64") == INF
    assert clipping.vector_norm(x, 1, sum_dtype="float64") == 4e200  # no power overflow at p=1
    # torch float64: inf norm, coefficient 1 / inf = 0, gradients zeroed
    r = clipping.clip_grad_norm([np.array(x)], 1.0, sum_dtype="float64")
    assert r.total_norm == INF and r.grads[0].tolist() == [0.0, 0.0]


def test_sum_dtype_float32_and_half_opmath():
    # 1e20 in float32: squares 1e40 overflow float32
    assert clipping.vector_norm([1e20, 1e20], 2, accumulate="float32", sum_dtype="float32") == INF
    # 17 x 300 in float16: squares 90000 overflow float16, not float32; the norm is then
    # rounded to float16: sqrt(17) * 300 = 1236.93 -> 1237.0 (float16 spacing 1 there)
    h = [300.0] * 17
    assert clipping.vector_norm(h, 2, accumulate="float16") == INF
    assert clipping.vector_norm(h, 2, accumulate="float16", sum_dtype="float32") == 1237.0
    # a float16 norm above 65504 is inf even when the float32 sum is finite
    assert clipping.vector_norm([300.0] * 60, 2, accumulate="float16", sum_dtype="float32") == 2324.0
    assert clipping.vector_norm([6e4, 6e4], 2, accumulate="float16", sum_dtype="float32") == INF


def test_root_float32_with_sum_dtype():
    x = [1e20] * 12
    exact = clipping.vector_norm(x, 1.5)
    naive = clipping.vector_norm(x, 1.5, accumulate="float32", sum_dtype="float32", root="float32")
    # the float32 exponent of 1/1.5 is off by 2e-8 relative; ln(12e30) = 71.6 -> ~1.4e-6
    assert abs(naive / exact - 1) > 5e-7


def test_max_nan_ignore():
    x = [0.5, NAN, -2.0]
    assert math.isnan(clipping.vector_norm(x, INF))
    assert clipping.vector_norm(x, INF, max_nan="compare") == 2.0
    assert clipping.vector_norm(x, -INF, max_nan="compare") == 0.5
    assert math.isnan(clipping.vector_norm([NAN], INF, max_nan="compare"))
    assert math.isnan(clipping.vector_norm([NAN, 3.0], INF, max_nan="compare"))  # NaN first: kept
    assert math.isnan(clipping.vector_norm(x, 2, max_nan="compare"))  # finite p: unaffected
    r = clipping.clip_grad_norm([np.array(x)], 1.0, INF, True, max_nan="compare", eps=0.0)
    assert r.raises is None and r.total_norm == 2.0
    np.testing.assert_array_equal(r.grads[0], [0.25, NAN, -1.0])


def test_skip_nan_skips_nan_but_not_inf():
    nan_g, inf_g = [np.array([3.0, NAN])], [np.array([3.0, INF])]
    r = clipping.clip_grad_norm(nan_g, 1.0, nonfinite="skip_nan")
    np.testing.assert_array_equal(r.grads[0], [3.0, NAN])
    r = clipping.clip_grad_norm(inf_g, 1.0, nonfinite="skip_nan")
    np.testing.assert_array_equal(r.grads[0], [0.0, NAN])  # coef 1 / inf = 0; inf * 0 = NaN
    r = clipping.clip_grad_norm(inf_g, 1.0, nonfinite="skip")
    np.testing.assert_array_equal(r.grads[0], [3.0, INF])
    r = clipping.clip_grad_norm(inf_g + nan_g, 1.0, scope="per_tensor", nonfinite="skip_nan")
    np.testing.assert_array_equal(r.grads[1], [3.0, NAN])
    np.testing.assert_array_equal(r.grads[0], [0.0, NAN])


def test_a_variant_may_switch_error_if_nonfinite_off():
    reg = registry.load()
    api = reg.apis["torch.nn.utils.clip_grad_norm_"]
    args = {"max_norm": 1.0, "norm_type": 2.0, "error_if_nonfinite": True, "foreach": None}
    g = [np.array([3.0, NAN])]
    assert oracle_call(api, args, g, "float32").raises == "RuntimeError"
    alt = oracle_call(api, args, g, "float32", {"error_if_nonfinite": False, "eps": 0.0})
    assert alt.raises is None and math.isnan(alt.total_norm)
    # "input" resolves to the cell's dtype for sum_dtype as for accumulate
    big = [np.array([1e20, 1e20])]
    alt = oracle_call(api, dict(args, error_if_nonfinite=False), big, "float32",
                      {"sum_dtype": "input", "accumulate": "input"})
    assert alt.total_norm == INF and alt.grads[0].tolist() == [0.0, 0.0]


def test_max_norm_dtype_rounds_the_threshold():
    g = [np.array([1e-310, -1e-310])]
    # max_norm 1e-311 is a float64 subnormal and 0 in float32: 0 / 0 makes the gradients NaN
    r = clipping.clip_grad_norm(g, 1e-311, eps=0.0, sum_dtype="float64", max_norm_dtype="float32")
    assert r.total_norm == 0.0 and all(math.isnan(v) for v in r.grads[0])
    r = clipping.clip_grad_norm(g, 1e-311, eps=0.0)
    assert r.grads[0][0] == pytest.approx(1e-311 / math.sqrt(2), rel=1e-3)


def test_threshold_max_div_and_divide_reciprocal():
    g = [np.array([3.0, 4.0])]
    r = clipping.clip_grad_norm(g, INF, eps=0.0, threshold="max_div")
    assert all(math.isnan(v) for v in r.grads[0])  # inf / max(5, inf) = NaN
    assert clipping.clip_grad_norm(g, INF, eps=0.0).grads[0].tolist() == [3.0, 4.0]  # clamp: 1
    assert clipping.clip_grad_norm(g, 2.5, eps=0.0, threshold="max_div").grads[0].tolist() == [1.5, 2.0]
    # float16: 1 / (0 + 1e-6) overflows to inf, and 0 * inf = NaN (torch's max_norm / tensor)
    r = clipping.clip_grads_with_norm([np.array([0.5, -1.0])], 0.0, 0.0, accumulate="float16", divide="reciprocal")
    assert all(math.isnan(v) for v in r.grads[0])
    r = clipping.clip_grads_with_norm([np.array([0.5, -1.0])], 0.0, 0.0, accumulate="float16")
    assert r.grads[0].tolist() == [0.0, -0.0]


def test_nan_bound_and_rescale():
    g = [np.array([NAN, 0.3, -3.0])]
    assert clipping.clip_grad_value(g, min=0.5, max=0.1, nan="bound").grads[0].tolist() == [0.1, 0.1, 0.1]
    assert clipping.clip_grad_value(g, min=None, max=0.7, nan="bound").grads[0].tolist() == [0.7, 0.3, -3.0]
    assert clipping.clip_grad_value(g, min=-0.2, max=None, nan="bound").grads[0].tolist() == [-0.2, 0.3, -0.2]
    r = clipping.get_total_norm([np.array([3.0, NAN])], 1.0, rescale=INF)
    assert math.isnan(r.total_norm) and all(math.isnan(v) for v in r.grads[0])
    assert clipping.get_total_norm([np.array([3.0, 4.0])], rescale=INF).grads[0].tolist() == [3.0, 4.0]


def test_zero_dim_one():
    g = [np.array(3.0), np.array([4.0])]
    r = clipping.clip_grad_norm(g, 1.0, eps=0.0, zero_dim="one")
    assert r.grads[0].shape == (1,) and r.grads[0].tolist() == pytest.approx([0.6]) and r.grads[1].tolist() == pytest.approx([0.8])
    assert clipping.clip_grad_norm(g, 1.0, eps=0.0).grads[0].shape == ()
