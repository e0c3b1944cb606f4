"""The derivation oracle: the hand-written backward of the op vocabulary against central finite
differences, each API semantic against seed 003's published numbers, and the variant knobs.
numpy only: the oracle must not lean on any framework."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.kinds.derivation import oracle as d


def op(kind, args, out):
    return {"op": kind, "args": list(args), "out": out}


def seed_net(x=((1, 2, 3),), y=19.0, w=((2, 3, 4),)):
    """Seed 003's Net(3, 1): Dense without bias, MSELoss; returns (loss, logits)."""
    return {"inputs": [["x", np.array(x, float)], ["y", np.array(y, float)]],
            "weights": [["fc.weight", np.array(w, float)]],
            "ops": [op("linear", ["x", "fc.weight"], "fc"), op("squeeze", ["fc"], "logits"),
                    op("mse", ["logits", "y"], "loss")],
            "outputs": ["loss", "logits"]}


def every_op(rng):
    """A function using every op of the vocabulary (broadcasting, constants, bias), two outputs."""
    return {"inputs": [["x", rng.normal(size=(2, 3))], ["s", rng.normal(size=(1, 3))],
                       ["t", rng.normal(size=(2,))]],
            "weights": [["W", rng.normal(size=(4, 3))], ["b", rng.normal(size=(4,))],
                        ["M", rng.normal(size=(4, 2))]],
            "ops": [op("add", ["x", "s"], "xs"),            # broadcast [2,3] + [1,3]
                    op("mul", ["xs", 0.5], "xh"),
                    op("sub", [1.0, "xh"], "xm"),
                    op("linear", ["xm", "W", "b"], "pre"),
                    op("tanh", ["pre"], "h"),
                    op("matmul", ["h", "M"], "hm"),          # [2,4] @ [4,2]
                    op("pow", ["hm", 3], "cube"),
                    op("squeeze", ["cube"], "sq"),
                    op("mse", ["sq", "t"], "loss"),          # [2,2] against [2] (broadcast)
                    op("mul", ["h", "h"], "h2"),
                    op("mean", ["h2"], "m"),
                    op("sum", ["s"], "ssum"),
                    op("add", ["m", "ssum"], "aux")],
            "outputs": ["loss", "aux"]}


def assert_close_fd(fn, outputs, names, grads=None):
    """``grads`` (default: ``d.gradients``) against central differences of ``outputs``' sum."""
    if grads is None:
        grads, _, err = d.gradients(fn, outputs, names)
        assert err is None
    for n in names:
        fd = d.finite_difference(fn, outputs, n)
        scale = max(np.abs(fd).max(), 1e-3)
        assert grads[n].shape == fd.shape
        assert np.abs(grads[n] - fd).max() / scale < 1e-7, n


@pytest.mark.parametrize("outputs", [["loss"], ["aux"], ["loss", "aux"]])
def test_every_op_matches_finite_differences(outputs):
    fn = every_op(np.random.default_rng(0))
    assert_close_fd(fn, outputs, ["x", "s", "t", "W", "b", "M"])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), k=st.integers(1, 4))
def test_linear_tanh_mse_matches_finite_differences_for_any_shape(seed, n, k):
    rng = np.random.default_rng(seed)
    fn = {"inputs": [["x", rng.normal(size=(n, k))], ["y", rng.normal(size=(n, 2))]],
          "weights": [["W", rng.normal(size=(2, k)) * 0.5], ["b", rng.normal(size=(2,))]],
          "ops": [op("linear", ["x", "W", "b"], "z"), op("tanh", ["z"], "h"),
                  op("mse", ["h", "y"], "loss")],
          "outputs": ["loss"]}
    assert_close_fd(fn, ["loss"], ["x", "y", "W", "b"])


def test_a_nonscalar_output_is_differentiated_through_its_sum():
    fn = every_op(np.random.default_rng(1))
    fn["outputs"] = ["h"]  # [2, 4]
    assert_close_fd(fn, ["h"], ["x", "W", "b"])


# --------------------------------------------------------------------------- seed 003's numbers

@pytest.mark.parametrize("gp, weights, want", [
    (0, None, {"x": [[4, 6, 8]]}),                                       # grads 1
    (1, None, {"y": -2.0}),                                              # grads 2
    ((0, 1), None, {"x": [[4, 6, 8]], "y": -2.0}),                       # grads 3
    (None, True, {"fc.weight": [[2, 4, 6]]}),                            # grads 4
    (0, True, {"x": [[4, 6, 8]], "fc.weight": [[2, 4, 6]]}),             # grads 5
    ((0, 1), True, {"x": [[4, 6, 8]], "y": -2.0, "fc.weight": [[2, 4, 6]]}),  # grads 6
])
def test_mindspore_grad_table_with_has_aux_reproduces_the_seed(gp, weights, want):
    r = d.mindspore_grad(seed_net(), gp, weights, has_aux=True)
    assert r.raises is None
    assert list(r.grads) == list(want)
    for n, v in want.items():
        np.testing.assert_array_equal(r.grads[n], np.array(v, float))
    assert list(r.values) == ["logits"] and float(r.values["logits"]) == 20.0  # the aux output


def test_mindspore_grad_without_aux_differentiates_the_sum_of_outputs():
    r = d.mindspore_grad(seed_net(), 0, None, has_aux=False)  # seed 003 "grads 7"
    np.testing.assert_array_equal(r.grads["x"], [[6, 9, 12]])
    assert r.values is None


def test_mindspore_grad_both_none_and_aux_on_one_output_raise_valueerror():
    assert d.mindspore_grad(seed_net(), None, None, has_aux=True).raises == "ValueError"  # grads 8
    fn = seed_net()
    fn["outputs"] = ["loss"]
    assert d.mindspore_grad(fn, 0, None, has_aux=True).raises == "ValueError"



def test_jax_grad_argnums_over_inputs_then_weights_and_has_aux():
    # jax.grad(f, argnums=(0, 2), has_aux=True)(x, y, w) of seed 003's net: positions 0 and 2 are
    # x and the weight; loss differentiated, logits returned as aux (the numbers of seed 003's
    # "=== value and grad ===", which a jax port of the net prints too)
    r = d.jax_grad(seed_net(), (0, 2), has_aux=True)
    assert r.raises is None and list(r.grads) == ["x", "fc.weight"]
    np.testing.assert_array_equal(r.grads["x"], [[4, 6, 8]])
    np.testing.assert_array_equal(r.grads["fc.weight"], [[2, 4, 6]])
    assert list(r.values) == ["logits"] and float(r.values["logits"]) == 20.0
    assert_close_fd(seed_net(), ["loss"], ["x", "fc.weight"], grads=r.grads)


def test_jax_grad_raises_typeerror_for_several_or_nonscalar_outputs_valueerror_for_no_argnums():
    assert d.jax_grad(seed_net(), 0).raises == "TypeError"  # (loss, logits) without has_aux
    fn = seed_net()
    fn["ops"].append(op("mul", ["x", 2.0], "x2"))  # a [1, 3] output
    fn["outputs"] = ["x2"]
    assert d.jax_grad(fn, 0).raises == "TypeError"
    assert d.jax_grad(seed_net(), (), has_aux=True).raises == "ValueError"  # max(()) in jax
    # an argument the output does not depend on: zeros (jax has no allow_unused)
    fn = seed_net()
    fn["inputs"].append(["z", np.array([5.0, 6.0])])
    r = d.jax_grad(fn, (0, 2), has_aux=True)
    np.testing.assert_array_equal(r.grads["z"], [0.0, 0.0])


def test_jax_value_and_grad_returns_every_output():
    r = d.jax_value_and_grad(seed_net(), (0, 1, 2), has_aux=True)
    assert {k: float(v) for k, v in r.values.items()} == {"loss": 1.0, "logits": 20.0}
    np.testing.assert_array_equal(r.grads["y"], -2.0)

def test_value_and_grad_returns_every_output_and_the_gradients():
    r = d.value_and_grad(seed_net(), (0, 1), True, has_aux=True)  # "=== value and grad ==="
    assert {k: float(v) for k, v in r.values.items()} == {"loss": 1.0, "logits": 20.0}
    np.testing.assert_array_equal(r.grads["fc.weight"], [[2, 4, 6]])
    np.testing.assert_array_equal(r.grads["y"], -2.0)


def _scalar_fn():
    """Seed 003's torch examples: z = x**2 + y at x = 1, y = 2."""
    return {"inputs": [["x", np.array(1.0)], ["y", np.array(2.0)]], "weights": [],
            "ops": [op("pow", ["x", 2], "x2"), op("add", ["x2", "y"], "z")], "outputs": ["z"]}


def test_torch_examples_of_the_seed():
    r = d.autograd_grad(_scalar_fn(), ["z"], ["x"])
    assert float(r.grads["x"]) == 2.0  # out (tensor(2.),)
    r = d.autograd_grad(_scalar_fn(), None, ["y"])  # outputs default: the first output
    assert float(r.grads["y"]) == 1.0  # out1 (tensor(1.),)
    r = d.tensor_backward(_scalar_fn())
    assert {k: float(v) for k, v in r.grads.items()} == {"x": 2.0, "y": 1.0}
    assert d.mindspore_grad(_scalar_fn(), 0).grads["x"] == 2.0  # "=== mindspore.grad ===" out 2.0


def test_mindspore_multiple_outputs_example_of_the_seed():
    fn = _scalar_fn()
    fn["outputs"] = ["z", "x"]  # net returns (x**2 + y, x): out 3.0 for grad_position 0
    assert float(d.mindspore_grad(fn, 0).grads["x"]) == 3.0
    assert float(d.mindspore_grad(fn, 0, has_aux=True).grads["x"]) == 2.0  # has_aux: out 2.0
    assert float(d.mindspore_grad(fn, 1, has_aux=True).grads["y"]) == 1.0


# --------------------------------------------------------------------------- knobs

def _unused_fn():
    return {"inputs": [["x", np.array([1.0, -2.0])], ["z", np.array([3.0])]], "weights": [],
            "ops": [op("mul", ["x", 0.0], "x0"), op("sum", ["x0"], "loss")], "outputs": ["loss"]}


def test_unused_is_structural_and_follows_the_knob():
    fn = _unused_fn()
    r = d.autograd_grad(fn, ["loss"], ["x", "z"])
    assert r.raises == "RuntimeError"  # torch without allow_unused
    r = d.autograd_grad(fn, ["loss"], ["x", "z"], allow_unused=True)
    np.testing.assert_array_equal(r.grads["x"], [0.0, 0.0])  # x * 0 still depends on x
    assert r.grads["z"] is None
    r = d.autograd_grad(fn, ["loss"], ["x", "z"], unused="zeros")
    np.testing.assert_array_equal(r.grads["z"], [0.0])
    np.testing.assert_array_equal(d.mindspore_grad(fn, (0, 1)).grads["z"], [0.0])


def test_nonscalar_and_empty_inputs():
    fn = _unused_fn()
    fn["outputs"] = ["x0"]
    assert d.autograd_grad(fn, None, ["x"]).raises == "RuntimeError"
    np.testing.assert_array_equal(d.autograd_grad(fn, None, ["x"], nonscalar="ones").grads["x"], [0.0, 0.0])
    assert d.autograd_grad(_unused_fn(), None, []).raises == "RuntimeError"
    assert d.tensor_backward(fn).raises == "RuntimeError"


def test_backward_accumulates_unless_the_variant_says_last():
    r = d.tensor_backward(seed_net(), "loss", repeat=3)
    np.testing.assert_array_equal(r.grads["fc.weight"], [[6, 12, 18]])
    r = d.tensor_backward(seed_net(), "loss", repeat=3, accumulation="last")
    np.testing.assert_array_equal(r.grads["fc.weight"], [[2, 4, 6]])


def test_raises_knob_short_circuits_every_api():
    for fn in (d.autograd_grad, d.mindspore_grad, d.value_and_grad, d.tensor_backward):
        assert fn(seed_net(), raises="AssertionError").raises == "AssertionError"


def test_empty_grads_knob_returns_no_gradients_instead_of_raising():
    # TensorFlow: tape.gradient(target, []) is [] (measured, TF 2.21), where torch, Paddle and
    # MindSpore (both grad_position and weights None) raise
    r = d.autograd_grad(_unused_fn(), None, [], empty="grads")
    assert r.raises is None and r.grads == {}
    assert d.paddle_grad(_unused_fn(), None, [], empty="grads").grads == {}
    r = d.mindspore_grad(seed_net(), None, None, has_aux=True, empty="grads")
    assert r.raises is None and r.grads == {}
    assert d.mindspore_grad(seed_net(), None, None, has_aux=True).raises == "ValueError"
    with pytest.raises(ValueError):
        d.autograd_grad(_unused_fn(), None, ["x"], empty="maybe")
