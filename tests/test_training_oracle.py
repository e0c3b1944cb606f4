"""conformance.oracle.training against hand-computed numbers and central finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.kinds.training import oracle as training
from conformance.oracle import network

LINEAR = [{"type": "linear", "name": "0", "in": 2, "out": 1,
           "weight": np.array([[1.0, 2.0]]), "bias": np.array([0.0])}]
MSE = {"type": "mse", "reduction": "mean"}


# --- dynamic scale update rules --------------------------------------------------------------

def _run_rule(flags, scale, **kw):
    good = bad = 0
    out = []
    for inf in flags:
        scale, good, bad = training.update_scale(scale, good, bad, inf, **kw)
        out.append(scale)
    return out


def test_torch_rule_backs_off_and_grows_after_interval():
    # torch.amp.GradScaler.update: x0.5 on inf (tracker reset), x2 after 2 consecutive finite steps
    got = _run_rule([False, True, False, False, False, True], 1024.0,
                    growth_factor=2.0, backoff_factor=0.5, growth_interval=2)
    assert got == [1024.0, 512.0, 512.0, 1024.0, 1024.0, 512.0]


def test_mindspore_rule_divides_by_growth_factor_with_floor_one():
    # measured: DynamicLossScaler(2., scale_factor=4, scale_window=2) gives 1.0 after each overflow
    got = _run_rule([True, True], 2.0, growth_factor=4.0, backoff_factor=0.5, growth_interval=2,
                    backoff="divide_growth", min_scale=1.0)
    assert got == [1.0, 1.0]
    got = _run_rule([True], 1024.0, growth_factor=4.0, backoff_factor=0.5, growth_interval=2,
                    backoff="divide_growth", min_scale=1.0)
    assert got == [256.0]  # torch would give 512


def test_backoff_every_n_overflows():
    # Paddle's decr_every_n_nan_or_inf=2: the first overflow keeps the scale, the second halves it
    got = _run_rule([True, True, False, True], 64.0, growth_factor=2.0, backoff_factor=0.5,
                    growth_interval=10, backoff_every=2)
    assert got == [64.0, 32.0, 32.0, 32.0]


# --- optimizer, accumulation, finiteness -----------------------------------------------------

def test_sgd_coupled_weight_decay_and_groups():
    params = {"a": np.array([1.0]), "b": np.array([2.0])}
    grads = {"a": np.array([0.5]), "b": np.array([-1.0])}
    groups = [{"params": ["a"], "lr": 0.5, "weight_decay": 0.1}, {"params": ["b"]}]
    out = training.sgd_update(params, grads, groups, lr=0.1, weight_decay=0.01)
    assert out["a"][0] == pytest.approx(1.0 - 0.5 * (0.5 + 0.1 * 1.0))
    assert out["b"][0] == pytest.approx(2.0 - 0.1 * (-1.0 + 0.01 * 2.0))
    mult = training.sgd_update(params, grads, groups, lr=0.1, weight_decay=0.01, group_lr="multiply")
    assert mult["a"][0] == pytest.approx(1.0 - 0.05 * (0.5 + 0.1 * 1.0))  # Paddle: 0.5 * 0.1


def test_overflows_uses_the_dtype_range():
    g = {"w": np.array([1.0e4])}
    assert not training.overflows(g, 1.0e30, "float32")   # 1e34 < 3.4e38
    assert training.overflows(g, 1.0e35, "float32")       # 1e39 > 3.4e38
    assert training.overflows({"w": np.array([2.0])}, 65536.0, "float16")  # 131072 > 65504
    assert not training.overflows(g, 1.0e35, "float64")
    assert training.overflows({"w": np.array([np.nan])}, 1.0, "float64")
    # 65536 is not a float16: the loss is multiplied by inf, whatever the gradients
    assert training.overflows({"w": np.array([1e-3])}, 65536.0, "float16")
    assert not training.overflows({"w": np.array([1e-3])}, 32768.0, "float16")


def test_split_batches_rejects_unequal_micro_batches():
    with pytest.raises(ValueError, match="cannot be split into 3 equal micro-batches"):
        training.split_batches(np.zeros((8, 2)), None, 3)


def _loss(layers, x, t):
    return network.forward_backward(layers, MSE, x, t).loss


def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    return [{"type": "linear", "name": "0", "in": 3, "out": 4, "weight": rng.normal(size=(4, 3)),
             "bias": rng.normal(size=4)},
            {"type": "tanh", "name": "1"},
            {"type": "linear", "name": "2", "in": 4, "out": 2, "weight": rng.normal(size=(2, 4)),
             "bias": rng.normal(size=2)}]


@pytest.mark.parametrize("n", [2, 4])
def test_accumulated_micro_batch_gradient_is_the_finite_difference_of_the_mean_loss(n):
    layers = _mlp()
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    micro = [network.forward_backward(layers, MSE, xb, tb).grads
             for xb, tb in training.split_batches(x, t, n)]
    acc = training.accumulate(micro)

    def mean_loss(ls):
        return sum(_loss(ls, xb, tb) for xb, tb in training.split_batches(x, t, n)) / n

    h = 1e-6
    for li in (0, 2):
        for part in ("weight", "bias"):
            a = layers[li][part]
            fd = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                old = a[idx]
                a[idx] = old + h
                up = mean_loss(layers)
                a[idx] = old - h
                down = mean_loss(layers)
                a[idx] = old
                fd[idx] = (up - down) / (2 * h)
            np.testing.assert_allclose(acc[f"{li}.{part}"], fd, rtol=1e-6, atol=1e-8)
    summed = training.accumulate(micro, micro_loss="sum")
    np.testing.assert_allclose(summed["0.weight"], n * acc["0.weight"])


# --- whole steps, worked by hand --------------------------------------------------------------

def test_one_clipped_sgd_step_by_hand():
    # Linear(2, 1) w = [1, 2], b = 0, x = [1, 1], target 0, MSE: out 3, loss 9,
    # dL/dw = 2 * 3 * x = [6, 6], dL/db = 6; total L2 norm sqrt(108); clip to 1; SGD lr 0.1
    x, t = np.array([[1.0, 1.0]]), np.array([[0.0]])
    res = training.train_steps(LINEAR, MSE, x, t, max_norm=1.0, lr=0.1)
    coef = 1.0 / (math.sqrt(108.0) + 1e-6)
    np.testing.assert_allclose(res.outputs["grad:0.weight"], [[6 * coef, 6 * coef]], rtol=1e-12)
    np.testing.assert_allclose(res.outputs["param:0.weight"], [[1 - 0.6 * coef, 2 - 0.6 * coef]], rtol=1e-12)
    np.testing.assert_allclose(res.outputs["param:0.bias"], [-0.6 * coef], rtol=1e-12)
    assert res.outputs["skipped"].tolist() == [0.0]
    assert "scale" not in res.outputs


def test_clip_params_leave_the_others_unclipped_and_weight_decay_is_after_the_clip():
    x, t = np.array([[1.0, 1.0]]), np.array([[0.0]])
    res = training.train_steps(LINEAR, MSE, x, t, max_norm=1.0, lr=0.1, weight_decay=0.5,
                               clip_params=["0.weight"])
    coef = 1.0 / (math.sqrt(72.0) + 1e-6)  # only the weight's [6, 6] enters the norm
    np.testing.assert_allclose(res.outputs["grad:0.weight"], [[6 * coef, 6 * coef]], rtol=1e-12)
    np.testing.assert_allclose(res.outputs["grad:0.bias"], [6.0])
    w = np.array([1.0, 2.0])
    np.testing.assert_allclose(res.outputs["param:0.weight"][0], w - 0.1 * (6 * coef + 0.5 * w), rtol=1e-12)
    np.testing.assert_allclose(res.outputs["param:0.bias"], [0.0 - 0.1 * (6.0 + 0.0)])


def test_overflowing_step_is_skipped_and_scale_backs_off():
    # scaled gradients 6 * 2**126 = 5.1e38 > float32 max on step 0: skipped, scale halves;
    # step 1 at 2**125 (3.2e38 < 3.4e38... 6 * 2**125 = 2.55e38) is applied
    x, t = np.array([[1.0, 1.0]]), np.array([[0.0]])
    res = training.train_steps(LINEAR, MSE, x, t, steps=2, lr=0.1, scaler="dynamic",
                               init_scale=2.0 ** 126, growth_interval=100)
    assert res.outputs["skipped"].tolist() == [1.0, 0.0]
    assert res.outputs["scale"].tolist() == [2.0 ** 125, 2.0 ** 125]
    np.testing.assert_allclose(res.outputs["param:0.weight"], [[1 - 0.6, 2 - 0.6]], rtol=1e-12)
    # a static scaler skips the same step but keeps its scale, so it skips every step
    st = training.train_steps(LINEAR, MSE, x, t, steps=2, lr=0.1, scaler="static", init_scale=2.0 ** 126)
    assert st.outputs["skipped"].tolist() == [1.0, 1.0]
    assert st.outputs["scale"].tolist() == [2.0 ** 126] * 2
    np.testing.assert_allclose(st.outputs["param:0.weight"], [[1.0, 2.0]])
    assert "grad:0.weight" not in st.outputs  # a skipped last step has no comparable gradients
    # a disabled scaler (Paddle off-GPU) checks nothing: both steps applied, scale 1
    off = training.train_steps(LINEAR, MSE, x, t, steps=1, lr=0.1, scaler="disabled", init_scale=2.0 ** 126)
    assert off.outputs["skipped"].tolist() == [0.0]
    assert off.outputs["scale"].tolist() == [1.0]


def test_input_scales_make_one_step_overflow():
    x, t = np.array([[1.0, 1.0]]), np.array([[0.0]])
    res = training.train_steps(LINEAR, MSE, x, t, steps=3, lr=0.01, scaler="dynamic",
                               init_scale=2.0 ** 100, input_scales=[1.0, 1e10, 1.0],
                               growth_interval=100)
    assert res.outputs["skipped"].tolist() == [0.0, 1.0, 0.0]
    assert res.outputs["scale"].tolist() == [2.0 ** 100, 2.0 ** 99, 2.0 ** 99]


def test_unknown_scaler_knob_is_rejected():
    with pytest.raises(ValueError, match="scaler must be one of"):
        training.train_steps(LINEAR, MSE, np.ones((1, 2)), np.zeros((1, 1)), scaler="amp")


def test_clip_per_group_uses_each_groups_own_norm():
    # the measured Paddle example: gradients [3, 4] and [6, 8], clip to 1, lr 1
    grads = {"a": np.array([3.0, 4.0]), "b": np.array([6.0, 8.0])}
    per = training.clip_subsets(grads, training._clip_sets(["a", "b"], [{"params": ["a"]}, {"params": ["b"]}],
                                                           "per_group"), 1.0, eps=0.0)
    np.testing.assert_allclose(per["a"], [0.6, 0.8])
    np.testing.assert_allclose(per["b"], [0.6, 0.8])
    glob = training.clip_subsets(grads, training._clip_sets(["a", "b"], [], "all"), 1.0, eps=0.0)
    np.testing.assert_allclose(glob["a"], np.array([3.0, 4.0]) / math.sqrt(125.0))
    # a parameter excluded from clipping stays as it is in either scope
    only_a = training.clip_subsets(grads, training._clip_sets(["a"], [{"params": ["a", "b"]}], "per_group"), 1.0)
    np.testing.assert_allclose(only_a["b"], [6.0, 8.0])
