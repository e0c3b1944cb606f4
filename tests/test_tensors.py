"""Tensor values and dtype rounding: float16 range, bfloat16 round-half-to-even (checked against
torch where it is installed), NaN/inf, and the generators (deterministic by seed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conformance.tensors import CARRIER, finfo, generate, materialize, round_to, to_carrier
from conformance.spec.load import parse_text
from conformance.spec.values import tensor_data

NAN, INF = math.nan, math.inf


# --------------------------------------------------------------------------- float16


def test_float16_overflows_to_inf_at_65520():
    got = round_to([65504.0, 65519.99, 65520.0, -65520.0, 1e6, -1e6], "float16")
    assert got.dtype == np.float64
    assert got.tolist() == [65504.0, 65504.0, INF, -INF, INF, -INF]


def test_float16_rounds_half_to_even_and_to_subnormals():
    # spacing at 1 is 2**-10: 1 + 2**-11 is a tie -> 1.0, 1 + 3*2**-11 -> 1 + 2**-9
    assert round_to([1 + 2 ** -11, 1 + 3 * 2 ** -11], "float16").tolist() == [1.0, 1 + 2 ** -9]
    # smallest subnormal 2**-24: half of it ties to 0, 1.5 of it ties up to 2**-23
    assert round_to([2 ** -25, 1.5 * 2 ** -24, 1e-8], "float16").tolist() == [0.0, 2 ** -23, 0.0]
    assert round_to([0.1], "float16").tolist() == [0.0999755859375]


def test_float32_and_float64():
    assert round_to([0.1], "float32").tolist() == [0.10000000149011612]
    assert round_to([1e39, -1e39], "float32").tolist() == [INF, -INF]
    x = np.array([0.1, 1e300])
    y = round_to(x, "float64")
    assert y.tolist() == [0.1, 1e300] and y is not x


# --------------------------------------------------------------------------- bfloat16


def test_bfloat16_round_half_to_even_on_exact_ties():
    # bfloat16 has 7 stored mantissa bits: spacing 2**-7 at 1
    got = round_to([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20], "bfloat16")
    assert got.tolist() == [1.0, 1 + 2 ** -6, -1.0, 1 + 2 ** -7]


def test_bfloat16_known_values_and_range():
    got = round_to([0.1, 3.0, 256.0, 257.0, 3.4e38, 3.3895313892515355e38, 2 ** -133, 2 ** -134], "bfloat16")
    assert got.tolist() == [0.10009765625, 3.0, 256.0, 256.0, INF, 3.3895313892515355e38, 2 ** -133, 0.0]
    assert finfo("bfloat16") == {"eps": 2 ** -7, "max": 3.3895313892515355e38, "tiny": 2 ** -126}
    assert round_to([finfo("bfloat16")["max"]], "bfloat16").tolist() == [finfo("bfloat16")["max"]]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_nan_and_inf_are_preserved(dtype):
    got = round_to([NAN, INF, -INF, -0.0], dtype)
    assert math.isnan(got[0])
    assert got[1:3].tolist() == [INF, -INF]
    assert got[3] == 0.0 and math.copysign(1.0, got[3]) == -1.0


def test_to_carrier_dtypes():
    assert to_carrier([1 + 2 ** -8], "bfloat16").dtype == np.float32
    assert to_carrier([1 + 2 ** -8], "bfloat16").tolist() == [1.0]
    assert to_carrier([70000.0], "float16").dtype == np.float16
    assert to_carrier([70000.0], "float16").tolist() == [INF]
    assert {k: np.dtype(v).name for k, v in CARRIER.items()} == {
        "float64": "float64", "float32": "float32", "float16": "float16", "bfloat16": "float32"}


def _many_magnitudes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mant = rng.uniform(1.0, 2.0, size=n)
    exp = rng.integers(-140, 128, size=n)  # bfloat16 subnormals up to past its max
    sign = rng.choice([-1.0, 1.0], size=n)
    return sign * np.ldexp(mant, exp)


@pytest.mark.framework
def test_bfloat16_matches_torch_on_random_values():
    torch = pytest.importorskip("torch")
    x = _many_magnitudes(10_000, seed=1234)
    # plus exact ties, values a hair off the ties, double-rounding traps, and special values
    extra = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -30, 1 + 2 ** -8 - 2 ** -30,
                      3.3961e38, 3.4e38, -3.4e38, 2 ** -133, 2 ** -134, 1e-45, 0.0, -0.0, INF, -INF, NAN])
    x = np.concatenate([x, extra])
    want = torch.from_numpy(x).to(torch.bfloat16).to(torch.float64).numpy()
    got = round_to(x, "bfloat16")
    np.testing.assert_array_equal(got, want)  # bit-exact, NaN in the same places
    assert np.array_equal(np.signbit(got), np.signbit(want))
    # and the float32 carrier torch receives for a bfloat16 job is already representable
    carrier = torch.from_numpy(to_carrier(x, "bfloat16"))
    finite = torch.isfinite(carrier)
    assert torch.equal(carrier[finite].to(torch.bfloat16).to(torch.float32), carrier[finite])


@pytest.mark.framework
def test_float16_matches_torch_on_random_values():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(99)
    x = rng.uniform(1.0, 2.0, 10_000) * np.ldexp(1.0, rng.integers(-26, 18, 10_000))
    want = torch.from_numpy(x).to(torch.float16).to(torch.float64).numpy()
    np.testing.assert_array_equal(round_to(x, "float16"), want)


# --------------------------------------------------------------------------- generators


def test_normal_generator_is_deterministic_by_seed_with_pinned_values():
    a = generate({"random": "normal", "shape": [2, 3], "seed": 0})
    assert a.shape == (2, 3) and a.dtype == np.float64
    # numpy's PCG64 stream: the same numbers on every machine and numpy version
    np.testing.assert_allclose(a.ravel()[:3], [0.1257302210933933, -0.1321048632913019, 0.6404226504432821],
                               rtol=0, atol=1e-15)
    np.testing.assert_array_equal(a, generate({"random": "normal", "shape": [2, 3], "seed": 0}))
    assert not np.array_equal(a, generate({"random": "normal", "shape": [2, 3], "seed": 1}))
    b = generate({"random": "normal", "shape": [2, 3], "seed": 0, "mean": 10.0, "std": 2.0})
    np.testing.assert_allclose(b, 10.0 + 2.0 * a, rtol=0, atol=1e-14)


def test_uniform_generator():
    a = generate({"random": "uniform", "shape": [3], "seed": 7, "low": -1.0, "high": 1.0})
    np.testing.assert_allclose(a, [0.25019093320933394, 0.794427601939151, 0.551371380490387], rtol=0, atol=1e-15)
    big = generate({"random": "uniform", "shape": [50, 40], "seed": 3, "low": 2.0, "high": 3.0})
    assert big.shape == (50, 40)
    assert big.min() >= 2.0 and big.max() < 3.0


def test_randint_generator_is_int64_high_exclusive():
    a = generate({"random": "randint", "shape": [6], "seed": 3, "low": 0, "high": 5})
    assert a.dtype == np.int64
    assert a.tolist() == [4, 0, 0, 1, 0, 4]
    many = generate({"random": "randint", "shape": [1000], "seed": 0, "low": 2, "high": 4})
    assert set(many.tolist()) == {2, 3}


def test_fill_and_scale():
    a = generate({"fill": 0.2, "shape": [10, 2]})
    assert a.shape == (10, 2) and (a == 0.2).all()
    s = generate({"fill": 3.0, "shape": [2], "scale": 1e-3})
    assert s.tolist() == [3.0 * 1e-3, 3.0 * 1e-3]
    n = generate({"random": "normal", "shape": [4], "seed": 5, "scale": 0.5})
    np.testing.assert_array_equal(n, 0.5 * generate({"random": "normal", "shape": [4], "seed": 5}))
    assert generate({"fill": 1.0}).shape == ()


def test_arange_reshape():
    a = generate({"arange": [1, 101], "shape": [10, 10]})
    assert a.shape == (10, 10) and a.dtype == np.float64
    assert a[0].tolist() == [float(i) for i in range(1, 11)]
    assert a[9, 9] == 100.0 and a.sum() == 5050.0
    assert generate({"arange": [0, 4]}).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert generate({"arange": [1, 4], "scale": 0.5}).tolist() == [0.5, 1.0, 1.5]
    with pytest.raises(ValueError, match="cannot reshape array of size 3 into shape"):
        generate({"arange": [0, 3], "shape": [2, 2]})


def test_shape_hint_stands_in_for_a_missing_shape():
    assert generate({"fill": 0.0}, shape_hint=(2, 3)).shape == (2, 3)
    assert generate({"fill": 0.0, "shape": [4]}, shape_hint=(2, 3)).shape == (4,)
    assert materialize({"random": "normal", "seed": 0}, shape_hint=[3, 1]).shape == (3, 1)


def test_materialize_lists_scalars_and_integers():
    a = materialize([[1, 2], [3, 4]])
    assert a.dtype == np.float64 and a.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert materialize(2.5).shape == () and float(materialize(2.5)) == 2.5
    i = materialize([0, 2, 1], integer=True)
    assert i.dtype == np.int64 and i.tolist() == [0, 2, 1]
    assert materialize({"arange": [0, 3]}, integer=True).tolist() == [0, 1, 2]


def test_a_parsed_generator_materialises_to_the_same_numbers():
    res = parse_text("id: c\ntitle: t\ngrads:\n  w: {random: normal, shape: [2, 3], seed: 0, scale: 2}\n"
                          "  b: {fill: 0.5, shape: [3]}\nclip: {api: a.b}\n", "g.yaml")
    assert res.errors == []
    g = res.cases[0].case.grads
    w = materialize(tensor_data(g["w"]))
    np.testing.assert_array_equal(w, 2.0 * generate({"random": "normal", "shape": [2, 3], "seed": 0}))
    assert materialize(tensor_data(g["b"])).tolist() == [0.5, 0.5, 0.5]


def test_bfloat16_rounds_0d_and_empty_arrays_under_numpy_1_and_2():
    # numpy 1 treats a 0-d array as a scalar in promotion: uint64 >> int went to float64 and raised
    # (found by the MindSpore env, which runs numpy 1.26); the tox env `mindspore` runs this file
    assert round_to(np.array(1 + 3 * 2 ** -8), "bfloat16").shape == ()
    assert float(round_to(np.array(1 + 3 * 2 ** -8), "bfloat16")) == 1 + 2 ** -6
    assert round_to(np.zeros((0, 3)), "bfloat16").shape == (0, 3)
