"""The oracle's hand-written backward pass against central finite differences and the seeds'
worked examples. numpy only: the oracle must not lean on any framework."""

import math

import numpy as np
import pytest

from conformance.oracle.network import finite_difference_grads, forward_backward

LOSSES = ["cross_entropy", "mse", "l1", "sum"]
REDUCTIONS = ["mean", "sum"]


def linear(name, n_in, n_out, rng, bias=True):
    return {"type": "linear", "name": name, "in": n_in, "out": n_out,
            "weight": rng.normal(size=(n_out, n_in)), "bias": rng.normal(size=n_out) if bias else None}


def conv2d(name, c, o, kernel, stride, padding, rng, bias=True):
    return {"type": "conv2d", "name": name, "in": c, "out": o, "kernel": list(kernel),
            "stride": list(stride), "padding": list(padding),
            "weight": rng.normal(size=(o, c, *kernel)), "bias": rng.normal(size=o) if bias else None}


def act(kind, name):
    return {"type": kind, "name": name}


def assert_matches_fd(layers, loss, inputs, targets):
    """The analytic gradients agree with central differences to a relative error < 1e-7."""
    res = forward_backward(layers, loss, inputs, targets)
    fd = finite_difference_grads(layers, loss, inputs, targets)
    assert list(res.grads) == list(fd)
    for name, g in res.grads.items():
        assert g.shape == fd[name].shape and g.dtype == np.float64
        scale = max(np.abs(fd[name]).max(), 1e-3)
        assert np.abs(g - fd[name]).max() / scale < 1e-7, name
    return res


def targets_for(loss_type, out, rng):
    if loss_type == "cross_entropy":
        return rng.integers(0, out.shape[1], size=out.shape[0])
    t = rng.normal(size=out.shape)
    assert np.abs(out - t).min() > 1e-3  # away from the l1 kink
    return t


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss_type", LOSSES)
def test_each_loss_and_reduction_matches_finite_differences(loss_type, reduction):
    rng = np.random.default_rng(1)
    layers = [linear("0", 4, 3, rng)]
    x = rng.normal(size=(5, 4))
    loss = {"type": loss_type, "reduction": reduction}
    out = forward_backward(layers, {"type": "sum"}, x, None).output
    assert_matches_fd(layers, loss, x, targets_for(loss_type, out, rng))


def test_loss_values_by_hand():
    layers = [{"type": "flatten", "name": "0"}]  # identity on [N, C]: the loss sees the input
    out = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    t = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -1.0]])
    assert forward_backward(layers, {"type": "mse"}, out, t).loss == pytest.approx(10 / 6)
    assert forward_backward(layers, {"type": "mse", "reduction": "sum"}, out, t).loss == pytest.approx(10)
    assert forward_backward(layers, {"type": "l1"}, out, t).loss == pytest.approx(6 / 6)
    assert forward_backward(layers, {"type": "sum"}, out, None).loss == pytest.approx(1.0)
    ce = forward_backward(layers, {"type": "cross_entropy", "reduction": "sum"}, out, np.array([2, 0]))
    assert ce.loss == pytest.approx(math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3 + math.log(3))


def test_l1_gradient_at_zero_is_zero():
    layers = [linear("0", 2, 1, np.random.default_rng(0), bias=False)]
    layers[0]["weight"] = np.array([[1.0, 1.0]])
    res = forward_backward(layers, {"type": "l1", "reduction": "sum"}, np.array([[1.0, 2.0]]), np.array([[3.0]]))
    np.testing.assert_array_equal(res.grads["0.weight"], [[0.0, 0.0]])


def test_cross_entropy_is_stable_for_huge_logits():
    layers = [{"type": "flatten", "name": "0"}]
    logits = np.array([[1000.0, 0.0], [-1000.0, 1000.0]])
    res = forward_backward(layers, {"type": "cross_entropy"}, logits, np.array([0, 0]))
    assert res.loss == pytest.approx(1000.0)
    assert np.isfinite(res.loss)


def test_targets_of_another_shape_are_rejected():
    layers = [linear("0", 3, 1, np.random.default_rng(0))]
    with pytest.raises(ValueError, match="shape"):
        forward_backward(layers, {"type": "mse"}, np.ones((4, 3)), np.ones(4))


# --------------------------------------------------------------------------- layers


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_finite_differences(bias):
    rng = np.random.default_rng(2)
    layers = [linear("fc", 3, 4, rng, bias=bias)]
    res = assert_matches_fd(layers, {"type": "mse"}, rng.normal(size=(6, 3)), rng.normal(size=(6, 4)))
    assert list(res.grads) == (["fc.weight", "fc.bias"] if bias else ["fc.weight"])


def test_linear_on_three_dimensional_input():
    rng = np.random.default_rng(3)
    layers = [linear("0", 3, 2, rng)]
    assert_matches_fd(layers, {"type": "sum"}, rng.normal(size=(2, 5, 3)), None)


@pytest.mark.parametrize("kind", ["tanh", "sigmoid", "relu"])
def test_activation_matches_finite_differences(kind):
    rng = np.random.default_rng(4)
    layers = [linear("0", 3, 4, rng), act(kind, "1"), linear("2", 4, 2, rng)]
    x = rng.normal(size=(5, 3))
    pre = x @ layers[0]["weight"].T + layers[0]["bias"]
    assert np.abs(pre).min() > 1e-3  # away from the relu kink
    assert_matches_fd(layers, {"type": "mse"}, x, rng.normal(size=(5, 2)))


def test_relu_gradient_at_zero_is_zero():
    layers = [act("relu", "0"), linear("1", 3, 1, np.random.default_rng(0), bias=False)]
    layers[1]["weight"] = np.array([[1.0, 1.0, 1.0]])
    res = forward_backward(layers, {"type": "sum"}, np.array([[0.0, 2.0, -1.0]]), None)
    np.testing.assert_array_equal(res.output, [[2.0]])
    # a layer before relu would see d/dx = [0, 1, 0]: check through a linear in front
    layers = [linear("0", 3, 3, np.random.default_rng(0), bias=True), act("relu", "1")]
    layers[0]["weight"] = np.eye(3)
    layers[0]["bias"] = np.zeros(3)
    res = forward_backward(layers, {"type": "sum", "reduction": "sum"}, np.array([[0.0, 2.0, -1.0]]), None)
    np.testing.assert_array_equal(res.grads["0.bias"], [0.0, 1.0, 0.0])


def test_sigmoid_does_not_overflow():
    layers = [act("sigmoid", "0")]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        res = forward_backward(layers, {"type": "sum", "reduction": "sum"}, np.array([[-1000.0, 0.0, 1000.0]]), None)
    np.testing.assert_array_equal(res.output, [[0.0, 0.5, 1.0]])


def test_flatten_matches_finite_differences():
    rng = np.random.default_rng(5)
    layers = [act("flatten", "0"), linear("1", 12, 2, rng)]
    res = assert_matches_fd(layers, {"type": "cross_entropy"}, rng.normal(size=(3, 2, 3, 2)), np.array([0, 1, 1]))
    assert res.output.shape == (3, 2)


@pytest.mark.parametrize("kernel,stride,padding", [
    ((3, 3), (1, 1), (0, 0)),
    ((3, 2), (2, 1), (1, 2)),
    ((2, 2), (2, 2), (1, 0)),
    ((1, 1), (1, 1), (0, 0)),
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_finite_differences(kernel, stride, padding, bias):
    rng = np.random.default_rng(6)
    layers = [conv2d("c", 2, 3, kernel, stride, padding, rng, bias=bias)]
    x = rng.normal(size=(2, 2, 5, 6))
    out = forward_backward(layers, {"type": "sum"}, x, None).output
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    assert out.shape == (2, 3, (5 + 2 * ph - kh) // sh + 1, (6 + 2 * pw - kw) // sw + 1)
    assert_matches_fd(layers, {"type": "mse"}, x, rng.normal(size=out.shape))


def test_conv2d_input_gradient_matches_finite_differences():
    """The input gradient (scatter of each window) is checked through a layer in front of it."""
    rng = np.random.default_rng(7)
    front = conv2d("0", 1, 2, (2, 2), (1, 1), (1, 1), rng)
    back = conv2d("1", 2, 2, (3, 2), (2, 1), (1, 1), rng)
    assert_matches_fd([front, act("tanh", "t"), back], {"type": "sum"}, rng.normal(size=(2, 1, 4, 5)), None)


def test_conv2d_by_hand():
    """One 2x2 kernel over a 3x3 image, stride 1, no padding: four dot products."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    layer = {"type": "conv2d", "name": "0", "in": 1, "out": 1, "kernel": [2, 2], "stride": [1, 1],
             "padding": [0, 0], "weight": np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), "bias": np.array([0.5])}
    res = forward_backward([layer], {"type": "sum", "reduction": "sum"}, x, None)
    np.testing.assert_array_equal(res.output, [[[[27.5, 37.5], [57.5, 67.5]]]])
    np.testing.assert_array_equal(res.grads["0.weight"], [[[[8.0, 12.0], [20.0, 24.0]]]])
    np.testing.assert_array_equal(res.grads["0.bias"], [4.0])


def test_embedding_accumulates_repeated_indices():
    rng = np.random.default_rng(8)
    layers = [{"type": "embedding", "name": "emb", "num": 5, "dim": 3, "weight": rng.normal(size=(5, 3))},
              linear("1", 3, 2, rng)]
    idx = np.array([[0, 1, 1], [4, 1, 0]], dtype=np.int64)
    res = assert_matches_fd(layers, {"type": "sum"}, idx, None)
    assert res.output.shape == (2, 3, 2)
    g = res.grads["emb.weight"]
    np.testing.assert_array_equal(g[[2, 3]], 0.0)  # unused rows
    np.testing.assert_allclose(g[1], 3 * g[4])  # index 1 used three times, index 4 once
    res = forward_backward(layers[:1], {"type": "sum", "reduction": "sum"}, idx, None)
    np.testing.assert_array_equal(res.grads["emb.weight"][:, 0], [2.0, 3.0, 0.0, 0.0, 1.0])


def test_embedding_after_a_layer_is_rejected():
    rng = np.random.default_rng(0)
    layers = [linear("0", 2, 2, rng), {"type": "embedding", "name": "1", "num": 3, "dim": 2,
                                        "weight": rng.normal(size=(3, 2))}]
    with pytest.raises(ValueError):
        forward_backward(layers, {"type": "sum"}, np.array([[0.0, 1.0]]), None)


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("loss_type", LOSSES)
def test_mlp_end_to_end(loss_type):
    rng = np.random.default_rng(9)
    layers = [linear("0", 4, 6, rng), act("tanh", "1"), linear("2", 6, 5, rng), act("relu", "3"),
              linear("4", 5, 3, rng)]
    x = rng.normal(size=(8, 4))
    h = np.tanh(x @ layers[0]["weight"].T + layers[0]["bias"]) @ layers[2]["weight"].T + layers[2]["bias"]
    assert np.abs(h).min() > 1e-3  # away from the relu kink
    out = forward_backward(layers, {"type": "sum"}, x, None).output
    res = assert_matches_fd(layers, {"type": loss_type}, x, targets_for(loss_type, out, rng))
    assert list(res.grads) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]


def test_conv_net_end_to_end():
    rng = np.random.default_rng(11)
    conv = conv2d("0", 2, 3, (3, 3), (1, 1), (1, 1), rng)
    layers = [conv, act("relu", "1"), act("flatten", "2"), linear("3", 3 * 4 * 4, 3, rng)]
    x = rng.normal(size=(2, 2, 4, 4))
    pre = forward_backward([conv], {"type": "sum"}, x, None).output
    assert np.abs(pre).min() > 1e-3  # away from the relu kink
    res = assert_matches_fd(layers, {"type": "cross_entropy"}, x, np.array([2, 0]))
    assert list(res.grads) == ["0.weight", "0.bias", "3.weight", "3.bias"]


# --------------------------------------------------------------------------- seeds' examples


def test_seed_000_linear_zero_init_cross_entropy():
    """MindSpore's clip_by_norm mapping page: Linear(3,2) zero-initialised, CE to class 0."""
    layers = [{"type": "linear", "name": "0", "in": 3, "out": 2, "weight": np.zeros((2, 3)), "bias": np.zeros(2)}]
    res = forward_backward(layers, {"type": "cross_entropy", "reduction": "mean"},
                           np.array([[0.2, 0.5, 0.2]]), np.array([0], dtype=np.int64))
    np.testing.assert_allclose(res.grads["0.weight"], [[-0.1, -0.25, -0.1], [0.1, 0.25, 0.1]], rtol=1e-15)
    np.testing.assert_allclose(res.grads["0.bias"], [-0.5, 0.5], rtol=1e-15)
    assert res.loss == pytest.approx(math.log(2), rel=1e-15)
    assert list(res.grads) == ["0.weight", "0.bias"]


def test_seed_003_linear_mse():
    """MindSpore's gradient-derivation page: weight [[2, 3, 4]], x [[1, 2, 3]], target 19."""
    layers = [{"type": "linear", "name": "0", "in": 3, "out": 1, "weight": np.array([[2.0, 3.0, 4.0]]), "bias": None}]
    res = forward_backward(layers, {"type": "mse"}, np.array([[1.0, 2.0, 3.0]]), np.array([[19.0]]))
    assert res.loss == 1.0
    np.testing.assert_array_equal(res.output, [[20.0]])
    np.testing.assert_array_equal(res.grads["0.weight"], [[2.0, 4.0, 6.0]])
    assert list(res.grads) == ["0.weight"]
