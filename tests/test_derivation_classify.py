"""Classification of derivation cells, without a framework: the worker's answer is written by
hand and the one rule (``conformance.classify``, with the derivation kind's hooks) must call it match, known (naming the difference),
mismatch or error exactly as the rules say."""

import copy

import numpy as np
import pytest

from conformance import registry
from conformance.classify import classify as judge
from conformance.kinds.derivation.cell import Derivation, materialise, oracle_call
from conformance.plan import plan
from conformance.runner import Runner
from conformance.spec.load import parse_text

CASE = """\
id: c
title: t
dtypes: [float64]
function:
  inputs: {x: [[1, 2, 3]], y: 19, z: [5.0]}
  weights: {fc.weight: [[2, 3, 4]]}
  ops:
    - {op: linear, args: [x, fc.weight], out: fc}
    - {op: squeeze, args: [fc], out: logits}
    - {op: mse, args: [logits, y], out: loss}
  outputs: [loss, logits]
call:
  api: torch.autograd.grad
  args: {outputs: [loss], inputs: [INPUTS], allow_unused: false}
"""


def cell_for(target, inputs="x, fc.weight"):
    res = parse_text(CASE.replace("INPUTS", inputs), "c.yaml")
    assert not res.errors
    p = plan(res.cases, registry.load(), device="cpu")
    assert not p.errors
    return next(c for c in p.cells if c.api == target)


def classify(cell, got):
    prepared = cell.kind.prepare(Runner(registry.load(), pool=None), cell)
    rec = {}
    judge(cell, prepared.want, got, rec, prepared.hooks)
    return rec, prepared.want


def answer(grads=None, values=None, raised=None):
    return {"grads": grads, "values": values, "raised": raised}


def test_the_oracles_own_numbers_match_and_a_perturbed_gradient_is_a_mismatch():
    cell = cell_for("mindspore.grad")
    rec, want = classify(cell, answer({"x": np.array([[4.0, 6, 8]]), "fc.weight": np.array([[2.0, 4, 6]])}))
    assert rec["status"] == "match" and rec["mismatched"] == 0
    grads = copy.deepcopy(want.grads)
    grads["fc.weight"][0, 1] += 1e-3
    rec, _ = classify(cell, answer(grads))
    assert rec["status"] == "mismatch"
    assert rec["message"].startswith("fc.weight: 1/3 elements differ")


def test_a_missing_gradient_or_an_extra_one_is_a_mismatch():
    cell = cell_for("paddle.grad")
    rec, _ = classify(cell, answer({"x": np.array([[4.0, 6, 8]])}))
    assert rec["status"] == "mismatch" and "fc.weight: missing" in rec["message"]


def test_aux_values_are_compared_where_the_target_returns_them():
    cell = cell_for("mindspore.grad")  # has_aux: the target returns logits as aux
    reg = registry.load()
    fn = materialise(cell.case, cell.dtype)
    src = reg.apis["mindspore.grad"]
    # a mindspore.grad source: its oracle returns the aux output, so the value is compared
    want = oracle_call(src, {"grad_position": 0, "weights": None, "has_aux": True}, fn)
    assert set(want.values) == {"logits"}
    cell.mapping = next(m for m in reg.targets("mindspore.grad") if m.target == "mindspore.grad")
    good = answer(dict(want.grads), {"logits": np.array(20.0)})
    assert Derivation._compare(cell, reg.apis[cell.api], want, good).ok
    bad = answer(dict(want.grads), {"logits": np.array(21.0)})
    c = Derivation._compare(cell, reg.apis[cell.api], want, bad)
    assert not c.ok and c.problems[0].startswith("value logits:")
    c = Derivation._compare(cell, reg.apis[cell.api], want, answer(dict(want.grads), None))
    assert c.problems == ["value logits: missing from the framework's output"]


def test_unused_input_zeros_are_known_and_a_raise_needs_its_declared_message():
    cell = cell_for("mindspore.grad", "x, z")  # the source raises RuntimeError (z unused)
    rec, want = classify(cell, answer({"x": np.array([[4.0, 6, 8]]), "z": np.array([0.0])}))
    assert want.raises == "RuntimeError"
    assert (rec["status"], rec["difference"]) == ("known", "ms-grad-unused-zeros")
    rec, _ = classify(cell, answer({"x": np.array([[4.0, 6, 8]]), "z": np.array([1.0])}))
    assert rec["status"] == "mismatch"  # neither the source (raises) nor any variant (zeros)

    cell = cell_for("paddle.grad", "x, z")
    text = "(InvalidArgument) The 1-th input does not appear in the backward graph."
    rec, _ = classify(cell, answer(raised={"type": "ValueError", "message": text}))
    assert (rec["status"], rec["difference"]) == ("known", "paddle-grad-unused-valueerror")
    rec, _ = classify(cell, answer(raised={"type": "ValueError", "message": "something else"}))
    assert rec["status"] == "mismatch"  # a ValueError, but not the declared one
    assert rec["message"].startswith("raised ValueError: something else; the source raises RuntimeError")


def test_a_raise_where_the_source_returns_is_an_error():
    cell = cell_for("mindspore.grad")
    rec, _ = classify(cell, answer(raised={"type": "TypeError", "message": "bad dtype"}))
    assert rec["status"] == "error"
    assert rec["message"] == "raised where the source API returns: TypeError: bad dtype"


@pytest.mark.parametrize("inputs", ["x", "x, y, fc.weight"])
def test_identity_cells_of_every_source_match_their_own_oracle(inputs):
    cell = cell_for("torch.autograd.grad", inputs)
    fn = materialise(cell.case, cell.dtype)
    want = oracle_call(registry.load().apis[cell.source_api], cell.args, fn)
    rec, _ = classify(cell, answer(dict(want.grads)))
    assert rec["status"] == "match"
